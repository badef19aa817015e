"""Chapter 5: encoders and classifiers (every type x layers x direction), SPINN's tree-LSTM, batch size 1, accuracy."""
import math

import pytest
import torch
from torch import nn

from chapter05_sequence.models import (
    SPINN,
    Encoder,
    Reduce,
    RNNCell,
    RNNClassifier,
    RNNConfig,
    RNNEncoder,
    SPINNClassifier,
    SPINNConfig,
    Tracker,
    tree_lstm,
)
from chapter05_sequence.snli import NLIExample, parse_binary
from chapter05_sequence.train import accuracy, evaluate, per_rule_accuracy
from chapter05_sequence.vocab import NLIDataset, Vocab, collate_nli, make_loader

VOCAB = Vocab("a man woman is sleeping running not dog the park in .".split())


def example(premise, hypothesis, label=0, genre="g"):
    p_tokens, p_trans = parse_binary(premise)
    h_tokens, h_trans = parse_binary(hypothesis)
    return NLIExample(p_tokens, h_tokens, p_trans, h_trans, label, genre=genre)


EXAMPLES = [
    example("( ( a man ) ( ( is sleeping ) . ) )", "( ( a man ) ( ( is ( not sleeping ) ) . ) )", 2, "negation"),
    example("( ( a dog ) ( ( is ( running ( in ( the park ) ) ) ) . ) )", "( ( a dog ) ( is running ) )", 0, "drop"),
    example("( running . )", "sleeping", 1, "x"),
]


def batch_of(examples):
    return collate_nli([NLIDataset(examples, VOCAB)[i] for i in range(len(examples))])


def tiny_rnn(**kw):
    return RNNClassifier(RNNConfig(len(VOCAB), embed_dim=6, hidden_size=5, fc1_size=4, dropout=0.1, **kw))


def tiny_spinn(**kw):
    return SPINNClassifier(SPINNConfig(len(VOCAB), embed_dim=6, hidden_size=4, fc_size=8, num_fc_layers=2, **kw))


def check_forward_backward(model, batch):
    logits = model(batch)
    assert logits.shape == (len(batch), 3) and torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, batch.label).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [n for n, g in grads.items()
                                                                                   if g is None]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_every_library_rnn_combination_trains(rnn_type, num_layers, bidirectional):
    torch.manual_seed(0)
    model = tiny_rnn(encoder=rnn_type, num_layers=num_layers, bidirectional=bidirectional, rnn_dropout=0.2)
    assert model.encoder.output_size == 5 * (2 if bidirectional else 1)
    check_forward_backward(model, batch_of(EXAMPLES))


@pytest.mark.parametrize("encoder", ["bow", "rnn", "lstm_cell", "gru_cell"])
def test_cell_encoders_train(encoder):
    torch.manual_seed(0)
    check_forward_backward(tiny_rnn(encoder=encoder), batch_of(EXAMPLES))


@pytest.mark.parametrize("tracker_size, predict", [(None, False), (3, False), (3, True)])
def test_spinn_trains(tracker_size, predict):
    torch.manual_seed(0)
    model = tiny_spinn(tracker_size=tracker_size, predict_transitions=predict)
    batch = batch_of(EXAMPLES)
    logits = model(batch)
    nn.functional.cross_entropy(logits, batch.label).backward()
    unused = {"spinn.tracker.transition.weight", "spinn.tracker.transition.bias"}  # the predictor has no loss here
    assert all(p.grad is not None for n, p in model.named_parameters() if n not in unused)


@pytest.mark.parametrize("make", [lambda: tiny_rnn(encoder="rnn"), lambda: tiny_rnn(encoder="lstm", num_layers=2,
                                                                                     bidirectional=True),
                                  lambda: tiny_rnn(encoder="gru_cell"), lambda: tiny_spinn(tracker_size=3)])
def test_batch_size_one_in_train_and_eval(make):
    torch.manual_seed(0)
    model = make()
    batch = batch_of(EXAMPLES[2:])  # one example, single-word hypothesis
    model.train()
    check_forward_backward(model, batch)
    model.eval()
    with torch.no_grad():
        assert model(batch).shape == (1, 3)


def test_rnn_cell_equals_torch_rnn_cell():
    torch.manual_seed(0)
    ours, ref = RNNCell(3, 4), nn.RNNCell(3, 4)
    with torch.no_grad():  # our Linear sees [x, h]: its weight is [W_ih | W_hh]
        ref.weight_ih.copy_(ours.linear.weight[:, :3])
        ref.weight_hh.copy_(ours.linear.weight[:, 3:])
        ref.bias_ih.copy_(ours.linear.bias)
        ref.bias_hh.zero_()
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(ours(x, h), ref(x, h))


@pytest.mark.parametrize("cell, library", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_cell_encoder_equals_library_layer_and_ignores_padding(cell, library):
    torch.manual_seed(0)
    encoder, ref = Encoder(3, 4, cell), library(3, 4)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(encoder.cell, name))
    lengths = torch.tensor([5, 2, 1])
    inputs = torch.randn(5, 3, 3)
    out = encoder(inputs, lengths)
    for i, n in enumerate(lengths.tolist()):
        _, state = ref(inputs[:n, i:i + 1])
        h_n = state[0] if cell == "lstm" else state
        torch.testing.assert_close(out[i], h_n[0, 0])


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_library_encoder_final_state_is_last_layer_both_directions(rnn_type):
    torch.manual_seed(0)
    encoder = RNNEncoder(3, 4, rnn_type, num_layers=2, bidirectional=True).eval()
    lengths = torch.tensor([4, 1, 3])
    inputs = torch.randn(4, 3, 3)
    out = encoder(inputs, lengths)
    assert out.shape == (3, 8)
    for i, n in enumerate(lengths.tolist()):  # the same layer run on the unpadded sentence alone
        outputs, _ = encoder.rnn(inputs[:n, i:i + 1])
        expected = torch.cat([outputs[n - 1, 0, :4], outputs[0, 0, 4:]])  # forward at the end, backward at the start
        torch.testing.assert_close(out[i], expected)


def test_tree_lstm_by_hand():
    # size 1: lstm_in = [a, i, f1, f2, o]
    a, i, f1, f2, o, c_left, c_right = 0.5, -1.0, 2.0, 0.0, 1.0, 0.3, -0.7
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    c = math.tanh(a) * sig(i) + sig(f1) * c_left + sig(f2) * c_right
    h = sig(o) * math.tanh(c)
    h_t, c_t = tree_lstm(torch.tensor([[c_left]]), torch.tensor([[c_right]]), torch.tensor([[a, i, f1, f2, o]]))
    torch.testing.assert_close(c_t, torch.tensor([[c]]))
    torch.testing.assert_close(h_t, torch.tensor([[h]]))


def test_reduce_is_linear_maps_then_tree_lstm():
    torch.manual_seed(0)
    reduce = Reduce(2, tracker_size=3)
    left, right, tracking = torch.randn(4, 4), torch.randn(4, 4), torch.randn(4, 3)
    lstm_in = reduce.left(left[:, :2]) + reduce.right(right[:, :2]) + reduce.track(tracking)
    h, c = tree_lstm(left[:, 2:], right[:, 2:], lstm_in)
    torch.testing.assert_close(reduce(left, right, tracking), torch.cat([h, c], 1))
    assert reduce.right.bias is None and reduce.track.bias is None


def test_spinn_follows_the_parse_and_ignores_padding():
    torch.manual_seed(0)
    spinn = SPINN(2)
    words = torch.randn(4, 4)  # [h, c] of 4 words
    _, trans_a = parse_binary("( w0 ( w1 w2 ) )")
    _, trans_b = parse_binary("( ( ( w0 w1 ) w2 ) w3 )")
    buffers = torch.zeros(4, 2, 4)
    buffers[:3, 0], buffers[:, 1] = words[:3], words
    transitions = torch.zeros(7, 2, dtype=torch.long)
    transitions[:5, 0], transitions[:, 1] = torch.tensor(trans_a), torch.tensor(trans_b)
    root, logits = spinn(buffers, transitions, torch.tensor([3, 4]))
    w = [x.unsqueeze(0) for x in words]
    expected_a = spinn.reduce(w[0], spinn.reduce(w[1], w[2]))
    expected_b = spinn.reduce(spinn.reduce(spinn.reduce(w[0], w[1]), w[2]), w[3])
    torch.testing.assert_close(root, torch.cat([expected_a, expected_b])[:, :2])
    assert logits is None


def test_tracker_shapes():
    tracker = Tracker(2, 3, predict=True)
    state, logits = tracker(torch.randn(5, 2), torch.randn(5, 2), torch.randn(5, 2))
    assert state[0].shape == state[1].shape == (5, 3) and logits.shape == (5, 3)


def test_accuracy_of_a_perfect_prediction_is_one():
    labels = torch.tensor([0, 1, 2, 2, 0])
    assert accuracy(nn.functional.one_hot(labels, 3).float(), labels) == 1.0
    assert accuracy(nn.functional.one_hot((labels + 1) % 3, 3).float(), labels) == 0.0


class Oracle(nn.Module):
    """Predicts the batch's own labels: any offset between labels and classes would show up below 1.0."""

    def forward(self, batch):
        return nn.functional.one_hot(batch.label, 3).float() * 5


def test_evaluate_oracle_scores_one_per_rule():
    loader = make_loader(NLIDataset(EXAMPLES * 3, VOCAB), batch_size=4, shuffle=False)
    result = evaluate(Oracle(), loader, torch.device("cpu"))
    assert result["accuracy"] == 1.0 and sorted(result["labels"]) == sorted([e.label for e in EXAMPLES * 3])
    assert per_rule_accuracy(result) == {"drop": 1.0, "negation": 1.0, "x": 1.0}
