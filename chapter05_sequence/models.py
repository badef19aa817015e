"""Sentence encoders and NLI classifiers of chapter 5: a hand-made RNN cell, LSTM/GRU cells, ``nn.LSTM``/``nn.GRU``
stacks, and SPINN (a shift-reduce tree-LSTM).

Every classifier takes an ``NLIBatch`` (``chapter05_sequence.vocab``), whose token tensors are ``(seq_len, batch)``,
encodes premise and hypothesis with the same encoder, merges the two sentence vectors ``p`` and ``h`` into
``[p, h, p - h, p * h]`` and returns logits ``(batch, 3)`` over (entailment, neutral, contradiction).

Book: chapter 5, sections "RNNCell", "Encoder", "Classifier", "Advanced RNNs" (LSTM, GRU) and "Recursive neural
networks" (Reduce, Tracker, SPINN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from chapter05_sequence.snli import REDUCE, SHIFT
from chapter05_sequence.vocab import NLIBatch

NUM_CLASSES = 3


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also trains on a batch of one example.

    ``nn.BatchNorm1d`` raises "Expected more than 1 value per channel when training" for a batch of one (for example
    the last, incomplete batch of an epoch); this version normalises such a batch with the running statistics and
    leaves them unchanged. Shapes: ``(batch, features)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.size(0) == 1:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                            training=False, eps=self.eps)
        return super().forward(x)


# ---- 5.2 the simple RNN ---------------------------------------------------------------------------------------------
class RNNCell(nn.Module):
    """One step of an Elman RNN: ``h' = tanh(W [x, h] + b)``, written out by hand.

    Shapes: ``x`` ``(batch, embed_dim)``, ``hidden`` ``(batch, hidden_size)`` -> ``(batch, hidden_size)``.
    ``nonlinearity="relu"`` reproduces the book's unbounded cell, whose hidden state can grow without limit.
    """

    def __init__(self, embed_dim: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(embed_dim + hidden_size, hidden_size)
        self.activation = {"tanh": torch.tanh, "relu": torch.relu}[nonlinearity]
        nn.init.xavier_uniform_(self.linear.weight)  # the book's Xavier initialisation
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(torch.cat([x, hidden], dim=1)))

    def init_hidden(self, batch_size: int, device: torch.device | None = None) -> torch.Tensor:
        """Zeros ``(batch_size, hidden_size)``."""
        return torch.zeros(batch_size, self.hidden_size, device=device)


class Encoder(nn.Module):
    """Run a cell over time and return the hidden state after each sentence's last real word.

    ``cell``: ``"rnn"`` (our ``RNNCell``), ``"lstm"`` (``nn.LSTMCell``) or ``"gru"`` (``nn.GRUCell``).
    Shapes: ``inputs`` ``(seq_len, batch, embed_dim)``, ``lengths`` ``(batch,)`` -> ``(batch, hidden_size)``.
    The state of a sentence stops changing once its padding starts (the book's version kept stepping through the
    padding; torchtext batches hid that).
    """

    def __init__(self, embed_dim: int, hidden_size: int, cell: str = "rnn", nonlinearity: str = "tanh"):
        super().__init__()
        self.cell_type, self.hidden_size, self.output_size = cell, hidden_size, hidden_size
        if cell == "rnn":
            self.cell = RNNCell(embed_dim, hidden_size, nonlinearity)
        elif cell == "lstm":
            self.cell = nn.LSTMCell(embed_dim, hidden_size)
        elif cell == "gru":
            self.cell = nn.GRUCell(embed_dim, hidden_size)
        else:
            raise ValueError(f"unknown cell {cell!r}: choose rnn, lstm or gru")

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        seq_len, batch, _ = inputs.shape
        h = inputs.new_zeros(batch, self.hidden_size)
        c = inputs.new_zeros(batch, self.hidden_size)  # used by the LSTM only
        lengths = lengths.to(inputs.device)
        for t in range(seq_len):
            if self.cell_type == "lstm":
                new_h, new_c = self.cell(inputs[t], (h, c))
            else:
                new_h, new_c = self.cell(inputs[t], h), c
            running = (t < lengths).unsqueeze(1)  # (batch, 1): False once the sentence has ended
            h, c = torch.where(running, new_h, h), torch.where(running, new_c, c)
        return h


class Merger(nn.Module):
    """``[p, h, p - h, p * h]`` -> BatchNorm1d -> Dropout: ``(batch, size)`` x 2 -> ``(batch, 4 * size)``."""

    def __init__(self, size: int, dropout: float):
        super().__init__()
        self.bn = BatchNorm1d(4 * size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, premise: torch.Tensor, hypothesis: torch.Tensor) -> torch.Tensor:
        merged = torch.cat([premise, hypothesis, premise - hypothesis, premise * hypothesis], dim=1)
        return self.dropout(self.bn(merged))


# ---- 5.3 library recurrent layers ------------------------------------------------------------------------------------
class RNNEncoder(nn.Module):
    """``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``num_layers``, ``dropout`` between layers and ``bidirectional``.

    The padded batch is packed (``pack_padded_sequence``) so every direction stops at each sentence's real end.
    ``h0`` (and ``c0``) are zeros ``(num_layers * num_directions, batch, hidden_size)``. The sentence vector is the
    last layer's final state, both directions concatenated.
    Shapes: ``inputs`` ``(seq_len, batch, embed_dim)``, ``lengths`` ``(batch,)`` -> ``(batch, directions * hidden)``.
    """

    def __init__(self, embed_dim: int, hidden_size: int, rnn_type: str = "lstm", num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        layers = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
        if rnn_type not in layers:
            raise ValueError(f"unknown rnn_type {rnn_type!r}: choose lstm, gru or rnn")
        self.rnn_type, self.num_layers, self.hidden_size = rnn_type, num_layers, hidden_size
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        # dropout acts between layers only; PyTorch warns when it is set with a single layer
        self.rnn = layers[rnn_type](embed_dim, hidden_size, num_layers=num_layers,
                                    dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch = inputs.size(1)
        h0 = inputs.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
        state = (h0, torch.zeros_like(h0)) if self.rnn_type == "lstm" else h0
        packed = pack_padded_sequence(inputs, lengths.cpu(), enforce_sorted=False)
        _, state = self.rnn(packed, state)
        h_n = state[0] if self.rnn_type == "lstm" else state
        last = h_n.view(self.num_layers, self.num_directions, batch, self.hidden_size)[-1]
        return last.transpose(0, 1).reshape(batch, self.output_size)


class BagOfWordsEncoder(nn.Module):
    """Mean of the word vectors, then ``Linear`` + tanh: an order-blind baseline (not in the book).

    Shapes: ``inputs`` ``(seq_len, batch, embed_dim)``, ``lengths`` ``(batch,)`` -> ``(batch, hidden_size)``.
    """

    def __init__(self, embed_dim: int, hidden_size: int):
        super().__init__()
        self.output_size = hidden_size
        self.linear = nn.Linear(embed_dim, hidden_size)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(inputs.device)
        mask = torch.arange(inputs.size(0), device=inputs.device).unsqueeze(1) < lengths  # (seq_len, batch)
        mean = (inputs * mask.unsqueeze(2)).sum(0) / lengths.unsqueeze(1)
        return torch.tanh(self.linear(mean))


ENCODERS = ("bow", "rnn", "lstm_cell", "gru_cell", "lstm", "gru")


@dataclass
class RNNConfig:
    """Hyper-parameters of ``RNNClassifier`` (the book's values in the comments)."""

    vocab_size: int  # words in the vocabulary, <pad> and <unk> included
    embed_dim: int = 300  # word vector size (book: 300, GloVe 840B)
    hidden_size: int = 1000  # encoder state size per direction (book: 1000)
    fc1_size: int = 50  # hidden units of the classifier head (book: 50)
    dropout: float = 0.5  # dropout in Merger and head (book: 0.5)
    encoder: str = "rnn"  # one of ENCODERS: bow, rnn (hand-made cell), lstm_cell, gru_cell, lstm, gru
    num_layers: int = 1  # stacked layers, lstm/gru only (book, advanced RNNs: 2)
    bidirectional: bool = False  # both directions, lstm/gru only (book, advanced RNNs: True)
    rnn_dropout: float = 0.0  # dropout between stacked layers, lstm/gru only
    nonlinearity: str = "tanh"  # the hand-made cell's activation; "relu" is unbounded and can explode


def make_encoder(config: RNNConfig) -> nn.Module:
    """The sentence encoder named by ``config.encoder``."""
    if config.encoder == "bow":
        return BagOfWordsEncoder(config.embed_dim, config.hidden_size)
    if config.encoder in ("rnn", "lstm_cell", "gru_cell"):
        return Encoder(config.embed_dim, config.hidden_size, config.encoder.removesuffix("_cell"), config.nonlinearity)
    if config.encoder in ("lstm", "gru"):
        return RNNEncoder(config.embed_dim, config.hidden_size, config.encoder, config.num_layers,
                          config.rnn_dropout, config.bidirectional)
    raise ValueError(f"unknown encoder {config.encoder!r}: choose one of {', '.join(ENCODERS)}")


class RNNClassifier(nn.Module):
    """Embedding -> encoder -> Merger -> Linear(4d, fc1) -> ReLU -> BatchNorm1d -> Dropout -> Linear(fc1, 3).

    ``forward(batch)`` -> logits ``(batch, 3)`` float32.
    """

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.encoder = make_encoder(config)
        size = self.encoder.output_size
        self.merger = Merger(size, config.dropout)
        self.head = nn.Sequential(
            nn.Linear(4 * size, config.fc1_size), nn.ReLU(), BatchNorm1d(config.fc1_size),
            nn.Dropout(config.dropout), nn.Linear(config.fc1_size, NUM_CLASSES))

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(seq_len, batch)`` int64 -> sentence vectors ``(batch, encoder.output_size)``."""
        return self.encoder(self.embed(tokens), lengths)

    def forward(self, batch: NLIBatch) -> torch.Tensor:
        premise = self.encode(batch.premise, batch.premise_lengths)
        hypothesis = self.encode(batch.hypothesis, batch.hypothesis_lengths)
        return self.head(self.merger(premise, hypothesis))


# ---- 5.4 SPINN -------------------------------------------------------------------------------------------------------
def tree_lstm(c_left: torch.Tensor, c_right: torch.Tensor, lstm_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary tree-LSTM composition.

    ``lstm_in`` ``(batch, 5 * size)`` splits into ``a, i, f1, f2, o``;
    ``c = tanh(a) * sigmoid(i) + sigmoid(f1) * c_left + sigmoid(f2) * c_right`` and ``h = sigmoid(o) * tanh(c)``.
    Returns ``(h, c)``, each ``(batch, size)``.
    """
    a, i, f1, f2, o = lstm_in.chunk(5, dim=1)
    c = a.tanh() * i.sigmoid() + f1.sigmoid() * c_left + f2.sigmoid() * c_right
    h = o.sigmoid() * c.tanh()
    return h, c


class Reduce(nn.Module):
    """Combine the two top stack entries into one with a tree-LSTM.

    Stack entries are ``[h, c]`` concatenated: ``left``, ``right`` ``(batch, 2 * size)``; ``tracking`` is the
    tracker's ``h`` ``(batch, tracker_size)`` or None. Returns the parent ``[h, c]`` ``(batch, 2 * size)``.
    """

    def __init__(self, size: int, tracker_size: int | None = None):
        super().__init__()
        self.left = nn.Linear(size, 5 * size)
        self.right = nn.Linear(size, 5 * size, bias=False)
        self.track = nn.Linear(tracker_size, 5 * size, bias=False) if tracker_size else None

    def forward(self, left: torch.Tensor, right: torch.Tensor, tracking: torch.Tensor | None = None) -> torch.Tensor:
        (h_left, c_left), (h_right, c_right) = left.chunk(2, dim=1), right.chunk(2, dim=1)
        lstm_in = self.left(h_left) + self.right(h_right)
        if self.track is not None:
            lstm_in = lstm_in + self.track(tracking)
        return torch.cat(tree_lstm(c_left, c_right, lstm_in), dim=1)


class Tracker(nn.Module):
    """An ``nn.LSTMCell(3 * size, tracker_size)`` reading [buffer top, stack top, stack second] (their ``h``).

    Shapes: three ``(batch, size)`` inputs and a state ``(h, c)`` of ``(batch, tracker_size)`` (None: zeros) ->
    ``(new state, transition logits (batch, 3) or None)``. With ``predict=True`` a ``Linear(tracker_size, 3)``
    predicts the next transition (PAD/SHIFT/REDUCE; the book's 4 outputs counted torchtext's ``<unk>`` too).
    """

    def __init__(self, size: int, tracker_size: int, predict: bool = False):
        super().__init__()
        self.rnn = nn.LSTMCell(3 * size, tracker_size)
        self.transition = nn.Linear(tracker_size, 3) if predict else None

    def forward(self, buffer_top: torch.Tensor, stack_top: torch.Tensor, stack_second: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None):
        state = self.rnn(torch.cat([buffer_top, stack_top, stack_second], dim=1), state)
        return state, (self.transition(state[0]) if self.transition is not None else None)


class SPINN(nn.Module):
    """Shift-reduce parser-interpreter: each example of the batch has its own buffer and stack (Python lists of
    ``[h, c]`` tensors); at each step the examples that REDUCE are combined in one batched ``Reduce`` call.

    ``forward(buffers, transitions, lengths)``: ``buffers`` ``(seq_len, batch, 2 * size)`` (each word's ``[h, c]``),
    ``transitions`` ``(num_steps, batch)`` int64 (SHIFT=1, REDUCE=2, padding 0 = do nothing), ``lengths`` ``(batch,)``
    -> ``(root h (batch, size), transition logits (num_steps, batch, 3) or None)``.
    """

    def __init__(self, size: int, tracker_size: int | None = None, predict: bool = False):
        super().__init__()
        self.size = size
        self.reduce = Reduce(size, tracker_size)
        self.tracker = Tracker(size, tracker_size, predict) if tracker_size else None

    def forward(self, buffers: torch.Tensor, transitions: torch.Tensor, lengths: torch.Tensor):
        zeros = buffers.new_zeros(2 * self.size)
        # reversed so that pop() returns the next word; an empty buffer or stack reads as zeros
        bufs = [list(buffers[:n, i].unbind(0))[::-1] for i, n in enumerate(lengths.tolist())]
        stacks = [[zeros, zeros] for _ in bufs]
        state, logits = None, []
        for step in transitions.tolist():  # one Python list of codes per time step
            tracking = None
            if self.tracker is not None:
                tops = [torch.stack(x)[:, :self.size] for x in zip(*[(b[-1] if b else zeros, s[-1], s[-2])
                                                                     for b, s in zip(bufs, stacks)])]
                state, step_logits = self.tracker(*tops, state)
                tracking = state[0]
                logits.append(step_logits)
            lefts, rights, reducing = [], [], []
            for i, code in enumerate(step):
                if code == SHIFT:
                    stacks[i].append(bufs[i].pop())
                elif code == REDUCE:
                    rights.append(stacks[i].pop())
                    lefts.append(stacks[i].pop())
                    reducing.append(i)
            if reducing:
                track = tracking[reducing] if tracking is not None else None
                reduced = self.reduce(torch.stack(lefts), torch.stack(rights), track)
                for i, parent in zip(reducing, reduced.unbind(0)):
                    stacks[i].append(parent)
        root = torch.stack([s[-1] for s in stacks])[:, :self.size]
        return root, (torch.stack(logits) if logits and logits[0] is not None else None)


@dataclass
class SPINNConfig:
    """Hyper-parameters of ``SPINNClassifier`` (the book's values in the comments)."""

    vocab_size: int  # words in the vocabulary, <pad> and <unk> included
    embed_dim: int = 300  # word vector size (book: 300)
    hidden_size: int = 300  # tree-LSTM size; the projection gives 2 * hidden_size = [h, c] per word (book: 300)
    tracker_size: int | None = 64  # Tracker LSTM size, None = no tracker (not given in the book; 64 as in SPINN)
    predict_transitions: bool = False  # the Tracker's optional transition predictor (unused by the loss here)
    fc_size: int = 600  # width of each head layer (book: 600)
    num_fc_layers: int = 3  # Linear -> ReLU -> BatchNorm1d -> Dropout blocks in the head (book: 3)
    dropout: float = 0.2  # dropout everywhere (book: 0.2)


class SPINNClassifier(nn.Module):
    """Embedding -> Linear projection to ``[h, c]`` -> BatchNorm1d -> Dropout -> SPINN -> Merger ->
    ``num_fc_layers`` x [Linear, ReLU, BatchNorm1d, Dropout] -> Linear(fc_size, 3).

    ``forward(batch)`` -> logits ``(batch, 3)``. The projection and its BatchNorm see real words only (padding
    excluded from the batch statistics).
    """

    def __init__(self, config: SPINNConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.projection = nn.Sequential(nn.Linear(config.embed_dim, 2 * config.hidden_size),
                                        BatchNorm1d(2 * config.hidden_size), nn.Dropout(config.dropout))
        self.spinn = SPINN(config.hidden_size, config.tracker_size, config.predict_transitions)
        self.merger = Merger(config.hidden_size, config.dropout)
        layers, width = [], 4 * config.hidden_size
        for _ in range(config.num_fc_layers):
            layers += [nn.Linear(width, config.fc_size), nn.ReLU(), BatchNorm1d(config.fc_size),
                       nn.Dropout(config.dropout)]
            width = config.fc_size
        self.head = nn.Sequential(*layers, nn.Linear(width, NUM_CLASSES))

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        """``(seq_len, batch)`` tokens and ``(num_steps, batch)`` transitions -> root ``h`` ``(batch, hidden_size)``."""
        real = tokens != 0  # (seq_len, batch)
        buffers = self.embed.weight.new_zeros(*tokens.shape, 2 * self.config.hidden_size)
        buffers[real] = self.projection(self.embed(tokens[real]))
        return self.spinn(buffers, transitions, lengths)[0]

    def forward(self, batch: NLIBatch) -> torch.Tensor:
        premise = self.encode(batch.premise, batch.premise_lengths, batch.premise_transitions)
        hypothesis = self.encode(batch.hypothesis, batch.hypothesis_lengths, batch.hypothesis_transitions)
        return self.head(self.merger(premise, hypothesis))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
