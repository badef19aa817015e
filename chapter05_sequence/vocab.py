"""Vocabulary, GloVe-format word vectors, and padded/packed, length-bucketed NLI batches.

torchtext (the book's data library) is discontinued; this is the same pipeline in plain PyTorch:
``Vocab`` (with ``<pad>`` = 0 and ``<unk>`` = 1), ``load_glove`` (any GloVe-format text file), ``NLIDataset`` and
``make_loader`` (batches of similar lengths, padded to ``(seq_len, batch)``).

Book: chapter 5, sections "Data processing" (torchtext Field/BucketIterator) and "Word embeddings" (GloVe).
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from chapter03_workflow.text import write_glove
from chapter05_sequence.snli import PAD_TRANSITION, NLIExample

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """Token <-> index mapping; index 0 is ``<pad>``, 1 is ``<unk>`` (unknown words map to it).

    Chapter 3's ``chapter03_workflow.text.Vocab`` (same ids, same ``<pad>``/``<unk>``) except that lookups lower-case
    the word (SNLI's parses keep case; chapter 3's tokenizer lower-cases first) and duplicates are not checked.

    Args:
        tokens: the words, lower-case, most frequent first (``build_vocab`` makes them).
    """

    def __init__(self, tokens: Iterable[str]):
        self.itos = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token.lower(), 1)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Words -> indices (``<unk>`` = 1 for words not in the vocabulary)."""
        return [self[t] for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Indices -> words (padding included, shown as ``<pad>``)."""
        return [self.itos[int(i)] for i in indices]


def build_vocab(examples: Iterable[NLIExample], min_freq: int = 1) -> Vocab:
    """Vocabulary of the lower-cased premise and hypothesis words of ``examples`` (the training split only).

    Words seen fewer than ``min_freq`` times are left out (they become ``<unk>``). Most frequent first, ties broken
    alphabetically (as chapter 3's ``Vocab.build``), so the result does not depend on the order of the examples.
    """
    counts: Counter[str] = Counter()
    for ex in examples:
        for t in (*ex.premise, *ex.hypothesis):
            counts[t.lower()] += 1
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    return Vocab(words)


def load_glove(path: str | Path, vocab: Vocab, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Word vectors for ``vocab`` from a GloVe-format text file (``word v1 v2 ... vd`` per line).

    Real GloVe: https://nlp.stanford.edu/projects/glove/ (e.g. ``glove.840B.300d.zip``, the book's vectors).

    The vector size is the first line's. Words are lower-cased, like the vocabulary's; the first line of a word wins.
    Words of the vocabulary that the file lacks get random vectors drawn from a normal distribution with the mean and
    standard deviation of the vectors found (seeded by ``seed``), so they sit at the same scale; ``<pad>`` is all
    zeros. Lines whose word is not in the vocabulary are skipped.

    Returns:
        ``(vectors, found)``: a float32 tensor ``(len(vocab), dim)`` and how many vocabulary words the file had.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line has a different number of values than the first (the message names file and line).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: download GloVe from https://nlp.stanford.edu/projects/glove/ "
                                "and pass the unzipped .txt file")
    found: dict[int, list[float]] = {}
    dim = None
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}:{line_no}: {len(parts) - 1} values, expected {dim}")
            index = vocab.stoi.get(parts[0].lower())
            if index is not None and index not in found and index > 1:
                found[index] = [float(x) for x in parts[1:]]
    if dim is None:
        raise ValueError(f"{path}: no vectors in the file")
    generator = torch.Generator().manual_seed(seed)
    if found:
        known = torch.tensor(list(found.values()))
        mean, std = known.mean(0), known.std(0, unbiased=False).clamp_min(1e-3)
    else:
        mean, std = torch.zeros(dim), torch.full((dim,), 0.1)
    vectors = mean + std * torch.randn(len(vocab), dim, generator=generator)
    for index, values in found.items():
        vectors[index] = torch.tensor(values)
    vectors[0] = 0.0  # <pad>
    return vectors, len(found)


def save_glove_format(path: str | Path, words: Sequence[str], vectors: torch.Tensor) -> None:
    """Write ``vectors`` ``(len(words), dim)`` as a GloVe-format text file (6 decimals); ``words`` must be distinct.

    Chapter 3's ``write_glove`` with a word list and a tensor instead of a ``{word: vector}`` dict.
    """
    write_glove(path, dict(zip(words, vectors.detach().cpu().numpy())), decimals=6)


# ---- tensors and batches ------------------------------------------------------------------------------------------
@dataclass
class NLIBatch:
    """A padded batch.

    Token tensors are ``(seq_len, batch)`` int64 (time first, like the book's torchtext batches), lengths ``(batch,)``
    int64 on the CPU (what ``pack_padded_sequence`` wants), transitions ``(2 * seq_len - 1, batch)`` int64 padded with
    ``PAD_TRANSITION`` = 0, labels ``(batch,)`` int64; ``genres`` the rule/genre strings.
    """

    premise: torch.Tensor
    premise_lengths: torch.Tensor
    hypothesis: torch.Tensor
    hypothesis_lengths: torch.Tensor
    premise_transitions: torch.Tensor
    hypothesis_transitions: torch.Tensor
    label: torch.Tensor
    genres: list[str]

    def to(self, device: torch.device | str) -> NLIBatch:
        """Move the tensors (not the lengths, which stay on the CPU) to ``device``."""
        move = ("premise", "hypothesis", "premise_transitions", "hypothesis_transitions", "label")
        return NLIBatch(**{k: (v.to(device) if k in move else v) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return self.label.numel()


class NLIDataset(Dataset):
    """Examples encoded with ``vocab``; item ``i`` is a dict of 1-D int64 tensors plus ``genre``."""

    def __init__(self, examples: Sequence[NLIExample], vocab: Vocab):
        self.items = [{
            "premise": torch.tensor(vocab.encode(ex.premise)),
            "hypothesis": torch.tensor(vocab.encode(ex.hypothesis)),
            "premise_transitions": torch.tensor(ex.premise_transitions),
            "hypothesis_transitions": torch.tensor(ex.hypothesis_transitions),
            "label": ex.label,
            "genre": ex.genre,
        } for ex in examples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def lengths(self) -> list[int]:
        """Premise + hypothesis length of every item (what the bucketing sorts on)."""
        return [len(it["premise"]) + len(it["hypothesis"]) for it in self.items]


def collate_nli(items: Sequence[dict]) -> NLIBatch:
    """Pad a list of ``NLIDataset`` items into an ``NLIBatch`` (padding index 0 = ``<pad>`` / ``PAD_TRANSITION``)."""
    def pad(key: str) -> torch.Tensor:
        return pad_sequence([it[key] for it in items], padding_value=PAD_TRANSITION if "trans" in key else 0)

    return NLIBatch(
        premise=pad("premise"), premise_lengths=torch.tensor([len(it["premise"]) for it in items]),
        hypothesis=pad("hypothesis"), hypothesis_lengths=torch.tensor([len(it["hypothesis"]) for it in items]),
        premise_transitions=pad("premise_transitions"), hypothesis_transitions=pad("hypothesis_transitions"),
        label=torch.tensor([it["label"] for it in items]), genres=[it["genre"] for it in items])


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices with similar lengths (less padding), like torchtext's ``BucketIterator``.

    Chapter 3's ``chapter03_workflow.text.BucketBatchSampler`` re-seeds every epoch (``set_epoch``); this one draws
    every epoch from one generator seeded once, so kept separate (the same seed keeps giving the same trained numbers).

    Each epoch: shuffle the indices, cut them into pools of ``batch_size * pool_batches``, sort each pool by length,
    cut it into batches, and shuffle the batch order. ``shuffle=False`` sorts the whole set once (evaluation).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, pool_batches: int = 50,
                 seed: int = 0):
        self.lengths, self.batch_size, self.shuffle = list(lengths), batch_size, shuffle
        self.pool = batch_size * pool_batches
        self.rng = random.Random(seed)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            indices.sort(key=lambda i: self.lengths[i])
            yield from (indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size))
            return
        self.rng.shuffle(indices)
        batches = []
        for start in range(0, len(indices), self.pool):
            pool = sorted(indices[start:start + self.pool], key=lambda i: self.lengths[i])
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        self.rng.shuffle(batches)
        yield from batches

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def make_loader(dataset: NLIDataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` of ``NLIBatch`` with length bucketing (``shuffle`` for training)."""
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_nli)
