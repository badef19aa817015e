"""Chapter 5: vocabulary, GloVe-format vectors, padding/packing and length bucketing."""
import pytest
import torch
from torch.nn.utils.rnn import pack_sequence, pad_sequence

from chapter05_sequence.snli import NLIExample, parse_binary
from chapter05_sequence.vocab import (
    BucketBatchSampler,
    NLIDataset,
    build_vocab,
    collate_nli,
    load_glove,
    save_glove_format,
)


def example(premise, hypothesis, label=0):
    p, pt = parse_binary(premise)
    h, ht = parse_binary(hypothesis)
    return NLIExample(p, h, pt, ht, label)


EXAMPLES = [example("( ( A man ) ( is sleeping ) )", "( A man )", 1),
            example("( ( A dog ) ( is ( running fast ) ) )", "sleeping", 2)]


def test_pad_and_pack_sequence_book_values():
    seqs = [torch.tensor([1, 2, 3]), torch.tensor([4, 5]), torch.tensor([6])]
    assert pad_sequence(seqs, batch_first=True).tolist() == [[1, 2, 3], [4, 5, 0], [6, 0, 0]]
    packed = pack_sequence(seqs)
    assert packed.data.tolist() == [1, 4, 6, 2, 5, 3] and packed.batch_sizes.tolist() == [3, 2, 1]


def test_vocab_specials_and_frequency_order():
    vocab = build_vocab(EXAMPLES)
    # "a" 3 times; "is", "man", "sleeping" twice each (ties alphabetically); then the words seen once
    assert vocab.itos[:6] == ["<pad>", "<unk>", "a", "is", "man", "sleeping"]
    assert vocab["A"] == vocab["a"] == 2 and vocab["zebra"] == 1
    assert vocab.decode(vocab.encode(["A", "zebra"])) == ["a", "<unk>"]
    assert len(build_vocab(EXAMPLES, min_freq=2)) == 2 + 4


def test_load_glove_copies_found_words_and_initialises_the_rest(tmp_path):
    vocab = build_vocab(EXAMPLES)
    path = tmp_path / "vectors.txt"
    path.write_text("man 1 2 3\nthe 9 9 9\nsleeping -1 0 1\n", encoding="utf-8")
    vectors, found = load_glove(path, vocab)
    assert vectors.shape == (len(vocab), 3) and vectors.dtype == torch.float32 and found == 2
    torch.testing.assert_close(vectors[vocab["man"]], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(vectors[vocab["sleeping"]], torch.tensor([-1.0, 0.0, 1.0]))
    assert vectors[0].abs().sum() == 0  # <pad>
    missing = vectors[vocab["dog"]]
    assert torch.isfinite(missing).all() and missing.abs().sum() > 0
    torch.testing.assert_close(load_glove(path, vocab)[0], vectors)  # seeded: same every time


def test_glove_round_trip_and_errors(tmp_path):
    vocab = build_vocab(EXAMPLES)
    vectors = torch.arange(len(vocab) * 2, dtype=torch.float32).view(-1, 2)
    save_glove_format(tmp_path / "v.txt", vocab.itos, vectors)
    loaded, found = load_glove(tmp_path / "v.txt", vocab)
    assert found == len(vocab) - 2
    torch.testing.assert_close(loaded[2:], vectors[2:])
    (tmp_path / "bad.txt").write_text("man 1 2\ndog 1 2 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:2: 3 values, expected 2"):
        load_glove(tmp_path / "bad.txt", vocab)
    with pytest.raises(FileNotFoundError, match="glove"):
        load_glove(tmp_path / "none.txt", vocab)


def test_collate_pads_time_first():
    vocab = build_vocab(EXAMPLES)
    dataset = NLIDataset(EXAMPLES, vocab)
    batch = collate_nli([dataset[0], dataset[1]])
    assert batch.premise.shape == (5, 2) and batch.premise_lengths.tolist() == [4, 5]
    assert batch.premise[4, 0] == 0 and batch.hypothesis.tolist() == [[2, vocab["sleeping"]], [vocab["man"], 0]]
    assert batch.premise_transitions.shape == (9, 2) and batch.premise_transitions[7:, 0].tolist() == [0, 0]
    assert batch.hypothesis_transitions[:, 1].tolist() == [1, 0, 0]
    assert batch.label.tolist() == [1, 2] and len(batch) == 2


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_covers_every_index_once(shuffle):
    lengths = [(i * 7) % 23 for i in range(101)]
    sampler = BucketBatchSampler(lengths, batch_size=8, shuffle=shuffle, pool_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 13
    assert sorted(i for b in batches for i in b) == list(range(101))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 8  # similar lengths in a batch (random batches would spread over about 20)
