"""A text pipeline in plain PyTorch (torchtext is discontinued): TSV reader, tokenizer, vocabulary, vectors, batching.

Book: chapter 3, "torchtext" — the TREC question-type task. Each line of the data file is ``question<TAB>label`` with
one of the six coarse TREC labels ``ABBR DESC ENTY HUM LOC NUM``. Steps, each a small function or class here:

1. ``read_tsv``: lines -> ``(question, label)`` pairs; malformed lines raise ``ValueError`` naming file and line.
2. ``tokenize``: a question -> lower-case word and punctuation tokens.
3. ``Vocab``: tokens <-> integer ids, with ``<pad>`` (id 0) and ``<unk>`` (id 1).
4. ``load_glove_vectors``: optional pre-trained vectors from a GloVe-format text file into an ``nn.Embedding``.
5. ``QuestionDataset`` + ``PadCollate``: items of different lengths -> padded ``(batch, max_len)`` int64 batches.
6. ``BucketBatchSampler``: batches of questions of similar length, so that little of each batch is padding.

``make_ppmi_vectors`` + ``write_glove`` made the small vectors file shipped in ``data/trec/`` (see its README).
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, Sampler

import handson

LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
PAD, UNK = "<pad>", "<unk>"
TREC_DIR = handson.data_path("trec")
HOW_TO_GET = ("the repository ships data/trec/train.tsv and test.tsv; to use the real TREC data (Li & Roth 2002, "
              "https://cogcomp.seas.upenn.edu/Data/QA/QC/), convert train_5500.label / TREC_10.label with "
              "chapter03_workflow.text.trec_label_file_to_tsv(src, dst)")


def read_tsv(path: str | Path, labels: Sequence[str] | None = LABELS) -> list[tuple[str, str]]:
    """Read a ``question<TAB>label`` file (UTF-8) into ``(question, label)`` pairs, in file order.

    Blank lines are skipped; a first line ``question<TAB>label`` is taken as a header and skipped. With ``labels``
    given (the default: the six TREC labels), any other label is an error; pass ``None`` to accept any label.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says how to get the data).
        ValueError: a line without exactly one tab, with an empty question or label, or with an unknown label;
            the message starts with ``<path>:<line number>:``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no TSV file at {path}: {HOW_TO_GET}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or (lineno == 1 and line.lower() == "question\tlabel"):
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}:{lineno}: expected 2 tab-separated columns (question<TAB>label), "
                                 f"got {len(fields)}: {line[:60]!r}")
            question, label = fields[0].strip(), fields[1].strip()
            if not question or not label:
                raise ValueError(f"{path}:{lineno}: empty {'question' if not question else 'label'}: {line[:60]!r}")
            if labels is not None and label not in labels:
                raise ValueError(f"{path}:{lineno}: unknown label {label!r}; expected one of {', '.join(labels)}")
            rows.append((question, label))
    return rows


def load_trec(split: str = "train", root: str | Path | None = None) -> list[tuple[str, str]]:
    """``read_tsv`` of ``<root>/<split>.tsv`` (default root ``data/trec``); ``split`` is ``"train"`` or ``"test"``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return read_tsv(Path(root or TREC_DIR) / f"{split}.tsv")


def trec_label_file_to_tsv(src: str | Path, dst: str | Path) -> int:
    """Convert an original TREC file (lines ``DESC:manner How did serfdom develop ... ?``, Latin-1) to our TSV.

    Keeps the coarse label; returns the number of questions written. Raises ``ValueError`` naming file and line for a
    line that does not start with ``LABEL:fine``.
    """
    count = 0
    with open(src, encoding="latin-1") as fin, open(dst, "w", encoding="utf-8") as fout:
        for lineno, line in enumerate(fin, 1):
            if not line.strip():
                continue
            head, _, question = line.strip().partition(" ")
            coarse = head.split(":")[0]
            if ":" not in head or coarse not in LABELS or not question:
                raise ValueError(f"{src}:{lineno}: expected 'LABEL:fine question', got {line.strip()[:60]!r}")
            fout.write(f"{question}\t{coarse}\n")
            count += 1
    return count


_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens and single punctuation marks: ``"What's NASA?"`` -> ``["what's", "nasa", "?"]``.

    Close to torchtext's old ``basic_english`` tokenizer; abbreviations with inner dots stay whole (``"e.g"``).
    """
    return _TOKEN_RE.findall(text.lower())


class Vocab:
    """Token <-> id mapping. Ids ``0`` and ``1`` are ``<pad>`` and ``<unk>``; unknown tokens map to ``<unk>``.

    Build it with ``Vocab.build(token_lists, min_freq, max_size)``: tokens ordered by decreasing count, ties broken
    alphabetically, so the same corpus always gives the same ids.
    """

    pad_index = 0
    unk_index = 1

    def __init__(self, tokens: Iterable[str]):
        self.itos: list[str] = [PAD, UNK]
        for tok in tokens:
            if tok not in (PAD, UNK):
                self.itos.append(tok)
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in the vocabulary")

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        """Vocabulary of the tokens seen at least ``min_freq`` times (at most ``max_size`` of them, specials apart)."""
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(kept[:max_size] if max_size is not None else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_index)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; unknown tokens become ``unk_index``."""
        return [self[tok] for tok in tokens]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        """Tokens of ``ids`` (a list or 1-D tensor), ``<pad>`` included."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return [self.itos[i] for i in values]

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {', '.join(self.itos[:6])}, ...)"


def load_glove_vectors(path: str | Path, vocab: Vocab, freeze: bool = False,
                       seed: int = 0) -> tuple[nn.Embedding, int]:
    """An ``nn.Embedding(len(vocab), dim)`` initialised from a GloVe-format text file: ``word v1 v2 ... v_dim``.

    Only the vocabulary's words are kept (the file is streamed, so the real 400,000-word GloVe files work too). A
    first line ``<count> <dim>`` (word2vec text format) is skipped. Words missing from the file get small random
    vectors (normal, std 0.1, seeded); ``<pad>`` gets zeros and is the embedding's ``padding_idx``.

    Returns:
        ``(embedding, found)``: weight ``(len(vocab), dim)`` float32, ``found`` = vocabulary words read from the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a line whose number of values differs from the first line's, or a non-numeric value; the message
            starts with ``<path>:<line number>:``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no vectors file at {path}: pass a GloVe-format text file (e.g. glove.6B.50d.txt "
                                "from https://nlp.stanford.edu/projects/glove/) or use data/trec/vectors-ppmi-32d.txt")
    weights, found, dim = None, 0, None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header "<count> <dim>"
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'word v1 v2 ...', got {line.strip()[:60]!r}")
            if dim is None:
                dim = len(parts) - 1
                gen = torch.Generator().manual_seed(seed)
                weights = torch.randn(len(vocab), dim, generator=gen) * 0.1
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}:{lineno}: expected {dim} values after the word (as on the first line), "
                                 f"got {len(parts) - 1}")
            word = parts[0]
            if word in vocab.stoi:
                try:
                    weights[vocab.stoi[word]] = torch.tensor([float(v) for v in parts[1:]])
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: non-numeric value in the vector of {word!r}") from None
                found += 1
    if weights is None:
        raise ValueError(f"{path}: no vectors in the file")
    weights[vocab.pad_index] = 0.0
    return nn.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=vocab.pad_index), found


@dataclass
class QuestionDataset(Dataset):
    """``(question, label)`` pairs encoded once: item ``i`` is ``(token_ids, label_id)``.

    ``token_ids`` is a ``(length_i,)`` int64 tensor (length differs per question), ``label_id`` a 0-d int64 tensor
    indexing ``labels``.
    """

    rows: Sequence[tuple[str, str]]
    vocab: Vocab
    labels: Sequence[str] = LABELS

    def __post_init__(self) -> None:
        label_index = {label: i for i, label in enumerate(self.labels)}
        self.token_ids = [torch.tensor(self.vocab.encode(tokenize(q)), dtype=torch.int64) for q, _ in self.rows]
        self.label_ids = torch.tensor([label_index[label] for _, label in self.rows], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.token_ids[idx], self.label_ids[idx]

    def lengths(self) -> list[int]:
        """Number of tokens of every question (what ``BucketBatchSampler`` sorts by)."""
        return [len(t) for t in self.token_ids]


@dataclass
class PadCollate:
    """Collate function: a list of ``(token_ids, label)`` items -> ``(tokens, lengths, labels)``.

    ``tokens`` ``(batch, max_len)`` int64 padded with ``pad_index`` at the end (``pad_sequence``, ``batch_first``);
    ``lengths`` ``(batch,)`` int64 true lengths; ``labels`` ``(batch,)`` int64. A dataclass rather than a lambda so that
    ``DataLoader`` worker processes can pickle it.
    """

    pad_index: int = 0

    def __call__(self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        sequences = [ids for ids, _ in batch]
        tokens = pad_sequence(sequences, batch_first=True, padding_value=self.pad_index)
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        labels = torch.stack([torch.as_tensor(label) for _, label in batch])
        return tokens, lengths, labels


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose items have similar lengths (less padding than random batches).

    With ``shuffle=True``: shuffle all indices, cut them into pools of ``batch_size * pool_batches``, sort each pool
    by length, cut pools into batches and shuffle the order of the batches; a different (seeded) order every epoch
    (``set_epoch``). With ``shuffle=False``: sort everything by length once (deterministic, best padding).
    Pass it to ``DataLoader(dataset, batch_sampler=sampler, collate_fn=...)``.

    Raises:
        ValueError: ``batch_size`` or ``pool_batches`` below 1.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, pool_batches: int = 50,
                 drop_last: bool = False, seed: int = 0):
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size and pool_batches must be >= 1, got {batch_size} and {pool_batches}")
        self.lengths, self.batch_size, self.shuffle = list(lengths), batch_size, shuffle
        self.pool_batches, self.drop_last, self.seed, self.epoch = pool_batches, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffled order ``__iter__`` yields (like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            pools = [sorted(indices, key=lambda i: (self.lengths[i], i))]
        else:
            rng = random.Random(self.seed + self.epoch)
            rng.shuffle(indices)
            size = self.batch_size * self.pool_batches
            pools = [sorted(indices[s:s + size], key=lambda i: self.lengths[i]) for s in range(0, len(indices), size)]
        batches = [pool[s:s + self.batch_size] for pool in pools for s in range(0, len(pool), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            return n // bs if self.drop_last else -(-n // bs)
        full_pools, rest = divmod(n, bs * self.pool_batches)
        return full_pools * self.pool_batches + (rest // bs if self.drop_last else -(-rest // bs))


def padding_fraction(batches: Iterable[Sequence[int]], lengths: Sequence[int]) -> float:
    """Fraction of the padded ``(batch, max_len)`` token slots that are padding, over all ``batches`` of indices."""
    padded = real = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        padded += len(sizes) * max(sizes)
        real += sum(sizes)
    return 1 - real / padded


def make_ppmi_vectors(token_lists: Iterable[Sequence[str]], dim: int = 32, window: int = 3,
                      min_count: int = 2) -> dict[str, np.ndarray]:
    """Small word vectors from a corpus: positive PMI of co-occurrences (``window`` words apart, weighted 1/distance),
    then a rank-``dim`` SVD (``U * sqrt(S)``). Count-based like GloVe, tiny and deterministic.

    Returns:
        ``{word: (dim,) float32 array}`` for the words seen ``min_count``+ times, most frequent first.

    Raises:
        ValueError: fewer than ``dim + 1`` words occur ``min_count`` times.
    """
    token_lists = [list(t) for t in token_lists]
    counts = Counter(tok for tokens in token_lists for tok in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if len(words) <= dim:
        raise ValueError(f"only {len(words)} words occur {min_count}+ times; need more than dim={dim}")
    index = {w: i for i, w in enumerate(words)}
    cooc = np.zeros((len(words), len(words)), dtype=np.float64)
    for tokens in token_lists:
        ids = [index.get(t) for t in tokens]
        for i, a in enumerate(ids):
            for j in range(i + 1, min(i + 1 + window, len(ids))):
                b = ids[j]
                if a is not None and b is not None:
                    cooc[a, b] += 1.0 / (j - i)
                    cooc[b, a] += 1.0 / (j - i)
    total = cooc.sum()
    row = cooc.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(cooc * total / (row @ row.T))
    ppmi = np.nan_to_num(np.maximum(pmi, 0.0), nan=0.0, posinf=0.0, neginf=0.0)
    u, s, _ = np.linalg.svd(ppmi)
    vectors = u[:, :dim] * np.sqrt(s[:dim])
    vectors *= np.sign(vectors[0:1, :] + 1e-12)  # fix the sign of each component: deterministic across LAPACKs
    return {w: vectors[i].astype(np.float32) for i, w in enumerate(words)}


def write_glove(path: str | Path, vectors: dict[str, np.ndarray], decimals: int = 4) -> Path:
    """Write ``{word: vector}`` as a GloVe text file: one line ``word v1 ... v_dim`` per word, in dict order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for word, vec in vectors.items():
            f.write(word + " " + " ".join(f"{v:.{decimals}f}" for v in vec) + "\n")
    return path


def make_trec_vectors(dst: str | Path | None = None, dim: int = 32) -> Path:
    """Regenerate ``data/trec/vectors-ppmi-32d.txt``: ``make_ppmi_vectors`` of the training questions, GloVe format."""
    tokens = [tokenize(q) for q, _ in load_trec("train")]
    return write_glove(dst or TREC_DIR / f"vectors-ppmi-{dim}d.txt", make_ppmi_vectors(tokens, dim=dim))
