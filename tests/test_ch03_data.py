"""Chapter 3, data half: FizBuzDataset, the Fashion-MNIST finder, the plain-PyTorch text pipeline and the audio data."""
import pickle
import shutil

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import transforms

import handson
from chapter02_simple_nn.fizbuz import decoder, fizbuz_label
from chapter03_workflow import audio, datasets, text
from chapter03_workflow.fizbuz_dataset import FizBuzDataset, FizBuzListDataset, SlowDataset, collate_with_worker_id

# ---------------------------------------------------------------- FizBuzDataset


def test_fizbuz_dataset_items_are_tensors():
    ds = FizBuzDataset(input_size=10, start=0, end=1000)
    assert len(ds) == 1000
    x, y = ds[3]
    assert x.shape == (10,) and x.dtype == torch.float32 and y.shape == () and y.dtype == torch.int64
    assert x.tolist() == [0] * 8 + [1, 1] and y.item() == 2  # 3 -> Fizz
    assert ds[-1][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]  # 999


@pytest.mark.parametrize("start,end", [(0, 1000), (101, 1024), (7, 8)])
def test_fizbuz_dataset_labels_follow_fizbuz(start, end):
    ds = FizBuzDataset(10, start, end)
    numbers = [decoder(ds[i][0]) for i in range(len(ds))]
    assert numbers == list(range(start, end))
    assert [ds[i][1].item() for i in range(len(ds))] == [fizbuz_label(n) for n in numbers]


@pytest.mark.parametrize("kwargs,match", [(dict(start=5, end=5), "empty range"), (dict(end=1025), "more than 10 bits"),
                                          (dict(start=-1, end=3), "negative")])
def test_fizbuz_dataset_rejects_bad_ranges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FizBuzDataset(**kwargs)


def test_fizbuz_dataset_index_errors():
    ds = FizBuzDataset(end=10)
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    with pytest.raises(IndexError):
        ds[-11]


def test_default_collate_stacks_tensors_but_not_lists():
    x, y = next(iter(DataLoader(FizBuzDataset(), batch_size=10, shuffle=True)))
    assert x.shape == (10, 10) and x.dtype == torch.float32 and y.shape == (10,) and y.dtype == torch.int64
    bits, labels = next(iter(DataLoader(FizBuzListDataset(), batch_size=4)))
    assert isinstance(bits, list) and len(bits) == 10 and bits[0].shape == (4,)  # the book's pitfall
    assert torch.equal(torch.stack(bits, dim=1).float(), next(iter(DataLoader(FizBuzDataset(), batch_size=4)))[0])


def test_fizbuz_dataset_pickles_for_spawned_workers():
    ds = pickle.loads(pickle.dumps(FizBuzDataset(10, 101, 1024)))
    assert ds == FizBuzDataset(10, 101, 1024) and torch.equal(ds[5][0], FizBuzDataset(10, 101, 1024)[5][0])


def test_workers_build_alternate_batches():
    loader = DataLoader(FizBuzDataset(end=60), batch_size=10, num_workers=2, collate_fn=collate_with_worker_id)
    batches = list(loader)
    assert [w for _, w in batches] == [0, 1, 0, 1, 0, 1]
    assert torch.cat([y for (_, y), _ in batches]).tolist() == [fizbuz_label(n) for n in range(60)]
    assert next(iter(DataLoader(FizBuzDataset(end=5), batch_size=5, collate_fn=collate_with_worker_id)))[1] == -1


def test_slow_dataset_wraps_items():
    ds = SlowDataset(FizBuzDataset(end=4), delay_s=0.0)
    assert len(ds) == 4 and torch.equal(ds[2][0], FizBuzDataset(end=4)[2][0])

# ---------------------------------------------------------------- Fashion-MNIST finder


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """No Debian package, data/ in a temporary folder: only what a test puts there exists."""
    monkeypatch.setattr(datasets, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(handson, "DATA_DIR", tmp_path / "data")
    return tmp_path


@pytest.mark.parametrize("kind,name", [("fashion", "FashionMNIST"), ("mnist", "MNIST")])
def test_missing_data_error_says_how_to_get_it(isolated_data, kind, name):
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_fashion_mnist(kind=kind, root=isolated_data, download=False, allow_subset=False)
    message = str(err.value)
    assert f"{name} not found" in message and str(isolated_data / name / "raw") in message
    assert "train-images-idx3-ubyte" in message and f"datasets.{name}(root='data', download=True)" in message
    assert ("apt install dataset-fashion-mnist" in message) == (kind == "fashion")


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="'fashion' or 'mnist'"):
        datasets.find_fashion_mnist(kind="cifar")


def test_committed_subset_is_the_last_resort(isolated_data):
    train = datasets.load_fashion_mnist(train=True, root=isolated_data, transform=transforms.ToTensor())
    test = datasets.load_fashion_mnist(train=False, root=isolated_data)
    assert train.source == test.source == "committed subset"
    assert len(train) == 2000 and len(test) == 1000
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and y == 9
    assert torch.bincount(train.targets, minlength=10).min() >= 150  # every class present


@pytest.mark.parametrize("where", ["data folder", "debian package"])
def test_gzip_files_are_unpacked_for_torchvision(isolated_data, monkeypatch, where):
    src = isolated_data / "data" / "FashionMNIST" / "raw" if where == "data folder" else isolated_data / "deb"
    src.mkdir(parents=True)
    for path in datasets.SUBSET_DIR.glob("*.gz"):
        shutil.copy(path, src / path.name)
    if where == "debian package":
        monkeypatch.setattr(datasets, "DEBIAN_DIR", src)
    ds = datasets.load_fashion_mnist(train=False, download=False, allow_subset=False)
    assert ds.source == where and len(ds) == 1000
    raw = isolated_data / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.endswith(".gz")) == sorted(datasets.FILES)


def test_real_fashion_mnist_when_available():
    try:
        ds = datasets.load_fashion_mnist(train=True, allow_subset=False)
    except FileNotFoundError:
        pytest.skip("full Fashion-MNIST not installed (apt install dataset-fashion-mnist)")
    assert len(ds) == 60000 and ds.classes[9] == "Ankle boot" and ds[0][0].size == (28, 28)

# ---------------------------------------------------------------- text pipeline


def write(tmp_path, content, name="data.tsv"):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_read_tsv_parses_rows_and_skips_header_and_blank_lines(tmp_path):
    path = write(tmp_path, "question\tlabel\nWho wrote Hamlet?\tHUM\n\nWhere is Lima? \t LOC\r\n")
    assert text.read_tsv(path) == [("Who wrote Hamlet?", "HUM"), ("Where is Lima?", "LOC")]


@pytest.mark.parametrize("bad_line,line_no,match", [
    ("What does NASA stand for? ABBR", 2, "expected 2 tab-separated columns .* got 1"),
    ("Who?\tHUM\textra", 2, "got 3"),
    ("\tHUM", 2, "empty question"),
    ("Who?\t", 2, "empty label"),
    ("Who wrote it?\tPERSON", 2, "unknown label 'PERSON'"),
])
def test_malformed_tsv_lines_name_file_and_line(tmp_path, bad_line, line_no, match):
    path = write(tmp_path, f"Who wrote Hamlet?\tHUM\n{bad_line}\nWhere is Lima?\tLOC\n")
    with pytest.raises(ValueError, match=match) as err:
        text.read_tsv(path)
    assert str(err.value).startswith(f"{path}:{line_no}:")


def test_read_tsv_accepts_any_label_when_asked(tmp_path):
    assert text.read_tsv(write(tmp_path, "Who?\tPERSON\n"), labels=None) == [("Who?", "PERSON")]


def test_missing_tsv_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="trec_label_file_to_tsv"):
        text.load_trec("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        text.load_trec("dev")


def test_shipped_trec_files():
    train, test = text.load_trec("train"), text.load_trec("test")
    assert len(train) >= 300 and len(test) >= 50
    assert {label for _, label in train} == {label for _, label in test} == set(text.LABELS)
    assert not {q for q, _ in train} & {q for q, _ in test}


def test_trec_label_file_conversion(tmp_path):
    src = write(tmp_path, "DESC:manner How did serfdom develop ?\nHUM:ind Who killed Gandhi ?\n", "train.label")
    assert text.trec_label_file_to_tsv(src, tmp_path / "train.tsv") == 2
    assert text.read_tsv(tmp_path / "train.tsv") == [("How did serfdom develop ?", "DESC"),
                                                     ("Who killed Gandhi ?", "HUM")]
    bad = write(tmp_path, "DESC:manner How ?\nno label here\n", "bad.label")
    with pytest.raises(ValueError, match=f"{bad}:2:"):
        text.trec_label_file_to_tsv(bad, tmp_path / "bad.tsv")


@pytest.mark.parametrize("sentence,tokens", [
    ("What's NASA?", ["what's", "nasa", "?"]),
    ("What does e.g. mean?", ["what", "does", "e.g", ".", "mean", "?"]),
    ("How far is it, in 1,000 km?", ["how", "far", "is", "it", ",", "in", "1", ",", "000", "km", "?"]),
])
def test_tokenize(sentence, tokens):
    assert text.tokenize(sentence) == tokens


def test_vocab_specials_order_and_round_trip():
    corpus = [["b", "a", "b"], ["c", "b", "a"], ["d"]]
    vocab = text.Vocab.build(corpus)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a", "c", "d"]  # by count, ties alphabetical
    assert (vocab.pad_index, vocab.unk_index) == (0, 1) and vocab["<pad>"] == 0
    for tokens in corpus:
        assert vocab.decode(vocab.encode(tokens)) == tokens
    assert vocab.encode(["a", "zzz"]) == [3, 1] and vocab.decode(torch.tensor([3, 1, 0])) == ["a", "<unk>", "<pad>"]
    assert text.Vocab.build(corpus, min_freq=2).itos == ["<pad>", "<unk>", "b", "a"]
    assert text.Vocab.build(corpus, max_size=1).itos == ["<pad>", "<unk>", "b"]


def test_glove_vectors_load_into_embedding(tmp_path):
    vocab = text.Vocab(["cat", "dog", "emu"])
    path = write(tmp_path, "3 2\ncat 1.0 2.0\nfish 5 5\ndog -1 0.5\n", "vec.txt")  # word2vec header is skipped
    emb, found = text.load_glove_vectors(path, vocab, freeze=True)
    assert found == 2 and emb.weight.shape == (5, 2) and emb.padding_idx == 0 and not emb.weight.requires_grad
    torch.testing.assert_close(emb.weight[vocab["cat"]], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(emb.weight[vocab["dog"]], torch.tensor([-1.0, 0.5]))
    assert torch.all(emb.weight[0] == 0) and emb.weight[vocab["emu"]].abs().max() < 1  # pad zeros, emu random


@pytest.mark.parametrize("content,line_no,match", [("cat 1 2\ndog 1\n", 2, "expected 2 values .* got 1"),
                                                   ("cat 1 2\ndog 1 x\n", 2, "non-numeric"),
                                                   ("cat 1 2\nlonely\n", 2, "expected 'word v1 v2")])
def test_malformed_glove_lines_name_file_and_line(tmp_path, content, line_no, match):
    path = write(tmp_path, content, "vec.txt")
    with pytest.raises(ValueError, match=match) as err:
        text.load_glove_vectors(path, text.Vocab(["cat", "dog"]))
    assert str(err.value).startswith(f"{path}:{line_no}:")


def test_shipped_vectors_file_matches_vocabulary():
    vocab = text.Vocab.build([text.tokenize(q) for q, _ in text.load_trec("train")])
    emb, found = text.load_glove_vectors(text.TREC_DIR / "vectors-ppmi-32d.txt", vocab)
    assert emb.embedding_dim == 32 and found > 200


def test_ppmi_vectors_are_deterministic():
    corpus = [text.tokenize(q) for q, _ in text.load_trec("train")][:200]
    a, b = text.make_ppmi_vectors(corpus, dim=8), text.make_ppmi_vectors(corpus, dim=8)
    assert list(a) == list(b) and all(v.shape == (8,) for v in a.values())
    torch.testing.assert_close(torch.tensor(a["?"]), torch.tensor(b["?"]))
    with pytest.raises(ValueError, match="need more than dim"):
        text.make_ppmi_vectors([["a", "b"], ["a", "b"]], dim=8)


def test_question_dataset_and_pad_collate():
    rows = [("Who wrote Hamlet?", "HUM"), ("Where is Lima?", "LOC"), ("What does NASA stand for?", "ABBR")]
    vocab = text.Vocab.build(text.tokenize(q) for q, _ in rows)
    ds = text.QuestionDataset(rows, vocab)
    assert ds.lengths() == [4, 4, 6] and ds[2][1].item() == text.LABELS.index("ABBR") and ds[0][0].dtype == torch.int64
    tokens, lengths, labels = text.PadCollate(vocab.pad_index)([ds[i] for i in range(3)])
    assert tokens.shape == (3, 6) and tokens.dtype == torch.int64 and lengths.tolist() == [4, 4, 6]
    assert labels.tolist() == [3, 4, 0] and (tokens[:2, 4:] == vocab.pad_index).all() and (tokens[2] != 0).all()
    assert vocab.decode(tokens[0, :4]) == ["who", "wrote", "hamlet", "?"]
    loader = DataLoader(ds, batch_size=2, collate_fn=text.PadCollate())
    assert [b[0].shape for b in loader] == [(2, 4), (1, 6)]


LENGTHS = [5, 1, 9, 3, 3, 7, 2, 8, 4, 6, 10, 2, 5, 1, 9, 3, 7]


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize("batch_size,pool_batches", [(4, 1), (4, 2), (3, 50), (1, 1)])
def test_bucket_sampler_covers_every_index_once(shuffle, drop_last, batch_size, pool_batches):
    sampler = text.BucketBatchSampler(LENGTHS, batch_size, shuffle=shuffle, pool_batches=pool_batches,
                                      drop_last=drop_last, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    if drop_last:
        assert all(len(b) == batch_size for b in batches)
    else:
        assert sorted(flat) == list(range(len(LENGTHS)))


def test_bucket_sampler_groups_lengths_and_reshuffles_per_epoch():
    sorted_batches = list(text.BucketBatchSampler(LENGTHS, 4, shuffle=False))
    assert [[LENGTHS[i] for i in b] for b in sorted_batches][:2] == [[1, 1, 2, 2], [3, 3, 3, 4]]
    sampler = text.BucketBatchSampler(LENGTHS, 4, shuffle=True, pool_batches=2, seed=0)
    first = list(sampler)
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    for batch in first:  # within a pool the batches are cut from a length-sorted list
        assert [LENGTHS[i] for i in batch] == sorted(LENGTHS[i] for i in batch)
    random_batches = [list(range(i, min(i + 4, len(LENGTHS)))) for i in range(0, len(LENGTHS), 4)]
    assert text.padding_fraction(sorted_batches, LENGTHS) < text.padding_fraction(random_batches, LENGTHS)


def test_padding_fraction_by_hand():
    assert text.padding_fraction([[0, 1], [2]], [3, 1, 2]) == pytest.approx(1 - 6 / 8)  # (3+3) + 2 slots, 6 real
    with pytest.raises(ValueError, match=">= 1"):
        text.BucketBatchSampler([1, 2], 0)

# ---------------------------------------------------------------- audio


def test_load_wav_shapes_and_errors(tmp_path):
    wave, sr = audio.load_wav(audio.SPEECH_DIR / "digits" / "0.wav")
    assert sr == 8000 and wave.dtype == torch.float32 and wave.shape[0] == 1 and 0.5 < wave.shape[1] / sr < 1.0
    assert wave.abs().max() <= 1.0
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-en-wav"):
        audio.load_wav(tmp_path / "missing.wav")
    with pytest.raises(FileNotFoundError, match="missing"):
        audio.digit_paths(tmp_path)


def test_speech_chunks_cut_files_into_equal_pieces():
    files = [audio.SPEECH_DIR / "demo-echotest.wav", audio.SPEECH_DIR / "digits" / "1.wav"]
    ds = audio.SpeechChunks(files, chunk_s=0.5, sample_rate_hz=16000)
    expected = [audio.load_wav(f)[0].shape[1] * 2 // 8000 for f in files]  # whole half-seconds at 16 kHz
    assert len(ds) == sum(expected) and [f for f, _ in ds.index].count(1) == expected[1]
    x, y = ds[len(ds) - 1]
    assert x.shape == (1, 8000) and x.dtype == torch.float32 and y.item() == 1


@pytest.mark.parametrize("sample_rate_hz", [8000, 16000])
def test_spoken_digits_are_seeded_per_index(sample_rate_hz):
    ds = audio.SpokenDigits(copies=2, seed=0, sample_rate_hz=sample_rate_hz)
    assert len(ds) == 20
    x, y = ds[13]
    assert x.shape == (1, round(1.2 * sample_rate_hz)) and x.dtype == torch.float32 and y.item() == 3
    assert torch.equal(ds[13][0], x) and not torch.equal(ds[3][0], x)
    assert not torch.equal(audio.SpokenDigits(copies=2, seed=1, sample_rate_hz=sample_rate_hz)[13][0], x)
    clean = audio.SpokenDigits(copies=1, augment=None, sample_rate_hz=sample_rate_hz)
    n = clean.clips[4].shape[1]
    torch.testing.assert_close(clean[4][0][:, :n], clean.clips[4])
    assert clean[4][0][:, n:].abs().max() == 0
    with pytest.raises(IndexError):
        ds[20]


def test_audio_pad_collate():
    batch = [(torch.ones(1, 5), torch.tensor(2)), (torch.ones(1, 3), torch.tensor(7))]
    waves, lengths, labels = audio.pad_collate(batch)
    assert waves.shape == (2, 1, 5) and lengths.tolist() == [5, 3] and labels.tolist() == [2, 7]
    assert waves[1, 0].tolist() == [1, 1, 1, 0, 0]
