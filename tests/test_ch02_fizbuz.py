"""Chapter 2: FizzBuzz encoders, data splits, the hand-written Linear, the model and its save/load helpers."""
import numpy as np
import pytest
import torch
from torch import nn

import handson
from chapter02_simple_nn import fizbuz
from chapter02_simple_nn.fizbuz import (
    FizBuzNet,
    Linear,
    binary_encoder,
    book_split,
    classic_split,
    decoder,
    fizbuz_label,
    fizbuz_text,
    make_tensors,
)


def test_labels_follow_the_book_order():
    assert [fizbuz_label(n) for n in (15, 30, 5, 10, 3, 9, 1, 7)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [fizbuz_text(n, fizbuz_label(n)) for n in (15, 5, 3, 7)] == ["FizzBuzz", "Buzz", "Fizz", "7"]


@pytest.mark.parametrize("size", [4, 10, 12])
def test_encoder_decoder_round_trip(size):
    encode = binary_encoder(size)
    for n in range(2 ** size):
        bits = encode(n)
        assert len(bits) == size and set(bits) <= {0, 1}
        assert decoder(bits) == n
        assert decoder(torch.tensor(bits)) == n


def test_encoder_is_most_significant_bit_first():
    assert binary_encoder(10)(5) == [0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert binary_encoder(10)(np.int64(6)) == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]


@pytest.mark.parametrize("bad", [-1, 1024, 10 ** 30, 2.5, 3.0, "7", None, True])
def test_unencodable_numbers_raise_value_error(bad):
    with pytest.raises(ValueError):
        binary_encoder(10)(bad)


def test_splits():
    train, test = classic_split()
    assert train[0] == 101 and train[-1] == 1023 and test == list(range(1, 101))
    train, test = book_split(seed=0)
    assert len(test) == 100 and len(train) == 900
    assert sorted(train + test) == list(range(1000))
    assert book_split(seed=0) == (train, test) and book_split(seed=1) != (train, test)


def test_make_tensors_shapes_and_dtypes():
    x, y = make_tensors([1, 2, 3, 15], 10)
    assert x.shape == (4, 10) and x.dtype == torch.float32
    assert y.tolist() == [3, 3, 2, 0] and y.dtype == torch.int64


def test_hand_written_linear_matches_nn_linear():
    handson.seed_everything(0)
    ours = Linear(10, 7)
    handson.seed_everything(0)
    theirs = nn.Linear(10, 7)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)
    x = torch.randn(3, 5, 10)
    torch.testing.assert_close(ours(x), theirs(x))


def test_hand_written_linear_honours_bias_false():
    layer = Linear(10, 7, bias=False)
    assert layer.bias is None and len(list(layer.parameters())) == 1
    x = torch.randn(2, 10)
    torch.testing.assert_close(layer(x), x @ layer.weight.t())
    bound = 1 / np.sqrt(10)  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.weight.abs().max() <= bound and layer.weight.std() > bound / 4


def test_fizbuznet_shapes_and_parameter_count():
    model = FizBuzNet()
    assert model(torch.zeros(5, 10)).shape == (5, 4)
    assert sum(p.numel() for p in model.parameters()) == 10 * 100 + 100 + 100 * 4 + 4


def test_training_learns_the_training_set():
    handson.seed_everything(0)
    model = FizBuzNet()
    numbers = list(range(101, 1024, 7))  # 132 numbers, one full batch: the model must fit them
    losses = fizbuz.train_fizbuz(model, *make_tensors(numbers), epochs=300, batch_size=len(numbers), lr=0.05,
                                 progress=False)
    assert losses[-1] < losses[0] / 10
    assert fizbuz.accuracy(model, numbers) > 0.95
    assert not model.training  # train_fizbuz leaves the model in eval mode


def test_save_load_round_trip(tmp_path):
    model = FizBuzNet(hidden_size=17)
    path = fizbuz.save_model(model, tmp_path / "m.pt")
    loaded = fizbuz.load_model(path)
    assert not loaded.training and loaded.hidden.out_features == 17
    x = torch.rand(4, 10)
    torch.testing.assert_close(loaded(x), model(x))


def test_load_missing_model_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        fizbuz.load_model(tmp_path / "missing.pt")


def test_load_or_train_trains_once_then_loads(tmp_path):
    path = tmp_path / "fizbuz.pt"
    first = fizbuz.load_or_train(path, epochs=5)
    assert path.exists()
    second = fizbuz.load_or_train(path, epochs=5)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)
