"""WaveNet: causal and dilated convolutions, gated residual blocks with skips, mu-law coding, chunked speech data,
and fast incremental generation with per-layer queues (Fast WaveNet).

Book: chapter 6, "WaveNet". The book's interface is kept: the model takes one-hot audio ``(batch, time, 256)`` and
returns logits ``(batch, time - receptive_field, 256)``; output ``t`` predicts the sample that follows input
``t + receptive_field``. Convolutions are "valid" (no padding) except the first causal one, so the output is shorter
than the input by exactly ``receptive_field = stack_size * (2 ** layer_size - 1)`` samples (book config: 5115).
(Strictly, each output sees ``receptive_field + 2`` input samples: the dilated stack adds one and the first
kernel-2 causal conv another; the book's number counts the samples lost, which is what chunking needs.)

Audio: float32 samples in [-1, 1]; codes: int64 0..255 (8-bit mu-law, mu = 255; silence is code 128).
"""
from __future__ import annotations

import math
from collections import deque

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from chapter06_generative.pixelcnn import LN2, marginal_bits_per_dim


# --- mu-law companding -----------------------------------------------------------------------------------------------
def mu_law_encode(audio: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Float audio in [-1, 1] (any shape) -> int64 codes 0..quantization_channels-1 (same shape).

    y = sign(x) * ln(1 + mu |x|) / ln(1 + mu), mu = quantization_channels - 1, then y in [-1, 1] is mapped to
    ``floor((y + 1) / 2 * mu + 0.5)``. Small amplitudes get fine steps, loud ones coarse steps. Same values as
    ``torchaudio.functional.mu_law_encoding``.
    """
    mu = quantization_channels - 1.0
    audio = audio.clamp(-1.0, 1.0)
    y = torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).to(torch.int64)


def mu_law_decode(codes: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Int codes 0..quantization_channels-1 -> float32 audio in [-1, 1]; the inverse of :func:`mu_law_encode` up to
    quantisation (error at most ``(1 + mu |x|) ln(1 + mu) / mu**2``, about 0.022 at full scale, 8.5e-5 near 0)."""
    mu = quantization_channels - 1.0
    y = codes.to(torch.float32) / mu * 2 - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


# --- layers -----------------------------------------------------------------------------------------------------------
class CausalConv1d(nn.Conv1d):
    """Kernel-2 causal convolution: ``out[t] = W0 x[t-1] + W1 x[t] + b`` (``x[-1] = 0``); keeps the length.

    Input ``(batch, in_channels, time)`` -> ``(batch, out_channels, time)``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :, :-1]  # drop the one output that would look into the future


class ResidualBlock(nn.Module):
    """Gated residual block: dilated causal conv -> tanh(filter) * sigmoid(gate) -> 1x1 residual conv + block input,
    and a 1x1 skip conv.

    Input ``(batch, res_channels, time)`` -> ``(residual (batch, res_channels, time - dilation),
    skip (batch, skip_channels, time - dilation))``. The dilated conv (kernel 2, no padding) has separate filter and
    gate halves; the residual output adds the last ``time - dilation`` samples of the block INPUT. (The upstream code
    the book prints used one conv output for both tanh and sigmoid and lost the residual connection.)
    """

    def __init__(self, res_channels: int, skip_channels: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(res_channels, 2 * res_channels, kernel_size=2, dilation=dilation)
        self.residual = nn.Conv1d(res_channels, res_channels, 1)
        self.skip = nn.Conv1d(res_channels, skip_channels, 1)

    def gate(self, h: torch.Tensor) -> torch.Tensor:
        filt, gate = h.chunk(2, dim=1)
        return torch.tanh(filt) * torch.sigmoid(gate)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.gate(self.dilated(x))
        return self.residual(z) + x[:, :, self.dilation:], self.skip(z)


class WaveNet(nn.Module):
    """The book's WaveNet: causal conv -> ``stack_size`` x ``layer_size`` residual blocks (dilations 1, 2, ...,
    2**(layer_size-1), repeated per stack) -> sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1 -> logits.

    Book config: ``layer_size=10, stack_size=5, in_channels=256, res_channels=512`` (receptive field 5115).
    ``skip_channels`` defaults to ``in_channels`` as in the book. Input one-hot ``(batch, time, in_channels)`` float
    -> logits ``(batch, time - receptive_field, in_channels)`` (no softmax: train with cross-entropy).

    Raises (forward):
        ValueError: ``time <= receptive_field`` (no output would be left).
    """

    def __init__(self, layer_size: int = 10, stack_size: int = 5, in_channels: int = 256, res_channels: int = 512,
                 skip_channels: int | None = None):
        super().__init__()
        skip_channels = skip_channels or in_channels
        self.layer_size, self.stack_size, self.in_channels = layer_size, stack_size, in_channels
        self.causal = CausalConv1d(in_channels, res_channels)
        self.blocks = nn.ModuleList(ResidualBlock(res_channels, skip_channels, 2 ** layer)
                                    for _ in range(stack_size) for layer in range(layer_size))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, in_channels, 1))

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layer_size, self.stack_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_len = x.shape[1] - self.receptive_field
        if out_len <= 0:
            raise ValueError(f"input of {x.shape[1]} samples is not longer than the receptive field "
                             f"{self.receptive_field}")
        h = self.causal(x.transpose(1, 2))
        skips = 0
        for block in self.blocks:
            h, skip = block(h)
            skips = skips + skip[:, :, -out_len:]
        return self.head(skips).transpose(1, 2)


def receptive_field(layer_size: int, stack_size: int) -> int:
    """Samples the dilated stack removes: ``stack_size * (1 + 2 + ... + 2**(layer_size-1))`` (10 x 5 -> 5115)."""
    return stack_size * (2 ** layer_size - 1)


def one_hot(codes: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """``(batch, time)`` int64 codes -> ``(batch, time, channels)`` float32 one-hot (the model's input)."""
    return F.one_hot(codes, channels).float()


# --- data -------------------------------------------------------------------------------------------------------------
class SpeechChunks(Dataset):
    """Fixed-length training chunks from mu-law coded recordings, padded by the receptive field.

    Each recording (int64 codes ``(time,)``) is prefixed with ``receptive_field + 1`` silence codes (128), so that
    its very first sample is also a target, and cut into chunks whose targets do not overlap. Item ``k`` is
    ``(inputs (receptive_field + chunk_len,), targets (chunk_len,))``, both int64, where ``targets[t]`` is the sample
    after ``inputs[t + receptive_field]``. A final piece shorter than ``chunk_len`` is dropped.
    """

    def __init__(self, recordings: list[torch.Tensor], receptive_field: int, chunk_len: int, silence: int = 128):
        self.receptive_field, self.chunk_len = receptive_field, chunk_len
        self.padded = [torch.cat([torch.full((receptive_field + 1,), silence, dtype=torch.int64), r.long()])
                       for r in recordings]
        self.index = [(i, start) for i, r in enumerate(recordings) for start in range(0, len(r) - chunk_len + 1,
                                                                                      chunk_len)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, start = self.index[k]
        chunk = self.padded[i][start:start + self.receptive_field + self.chunk_len + 1]
        return chunk[:-1], chunk[self.receptive_field + 1:]


def nll_bits(model: WaveNet, codes: torch.Tensor, chunk_len: int = 16000, device: torch.device | str = "cpu") -> float:
    """Negative log-likelihood in bits per sample of a whole recording ``codes`` (int64 ``(time,)``), every sample
    predicted from its (silence-padded) past. 8 bits/sample is a uniform guess."""
    data = SpeechChunks([codes], model.receptive_field, min(chunk_len, len(codes)))
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in data:
            logits = model(one_hot(inputs[None].to(device), model.in_channels))
            total += F.cross_entropy(logits[0], targets.to(device), reduction="sum").item()
            count += len(targets)
    return total / count / LN2


def marginal_bits(train_codes: torch.Tensor, test_codes: torch.Tensor, channels: int = 256) -> float:
    """The trivial baseline: bits/sample of ``test_codes`` under the training codes' histogram (add-one smoothing).

    The same baseline as PixelCNN's :func:`~chapter06_generative.pixelcnn.marginal_bits_per_dim`, over mu-law codes.
    """
    return marginal_bits_per_dim(train_codes, test_codes, levels=channels)


# --- fast generation --------------------------------------------------------------------------------------------------
class FastGenerator:
    """Incremental WaveNet (Fast WaveNet, Paine et al. 2016): one sample costs one step per layer, not a whole
    forward pass over the receptive field.

    A kernel-2 conv with dilation d needs its input now and d steps ago, so each layer keeps a queue of its last d
    inputs (the causal conv keeps the previous code). :meth:`step` takes the newest codes ``(batch,)`` and returns the
    logits ``(batch, channels)`` for the next sample: exactly what the full forward gives once ``receptive_field``
    samples have been seen (tested). Queues start at zero, as the causal conv's padding does. The convolution weights
    are rearranged once into matrices, so a step is a handful of small matrix products per layer.
    """

    def __init__(self, model: WaveNet, batch_size: int = 1):
        self.model = model
        w = model.causal.weight.detach()  # (res, in, 2): tap 0 sees x[t-1], tap 1 sees x[t]
        res = w.shape[0]
        # one-hot input @ W == a row lookup; the extra zero row stands for "no previous sample"
        self.causal_prev = torch.cat([w[:, :, 0].T, w.new_zeros(1, res)])  # (in + 1, res)
        self.causal_now = w[:, :, 1].T.contiguous()  # (in, res)
        self.prev = torch.full((batch_size,), model.in_channels, dtype=torch.long, device=w.device)
        self.layers = []
        for block in model.blocks:
            wd = block.dilated.weight.detach()  # (2 res, res, 2)
            self.layers.append((torch.cat([wd[:, :, 0], wd[:, :, 1]], dim=1).T.contiguous(),  # [past, now] -> 2 res
                                block.dilated.bias.detach(),
                                block.residual.weight.detach()[:, :, 0].T.contiguous(),
                                block.residual.bias.detach()))
        # the skips are linear in each layer's gated output: one product over all layers at the end of a step
        self.skip_w = torch.cat([b.skip.weight.detach()[:, :, 0].T for b in model.blocks])  # (layers * res, skip)
        self.skip_b = sum(b.skip.bias.detach() for b in model.blocks)
        self.queues = [deque(w.new_zeros(batch_size, res) for _ in range(block.dilation)) for block in model.blocks]

    @torch.no_grad()
    def step(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.causal_prev[self.prev] + self.causal_now[codes]
        self.prev = codes
        gated = []
        for (wd, bd, wr, br), queue in zip(self.layers, self.queues):
            past = queue.popleft()  # this layer's input d steps ago
            queue.append(h)
            filt, gate = torch.addmm(bd, torch.cat([past, h], dim=1), wd).chunk(2, dim=1)
            z = torch.tanh(filt) * torch.sigmoid(gate)
            gated.append(z)
            h = torch.addmm(br, z, wr) + h  # residual: the block input is added back
        skips = torch.addmm(self.skip_b, torch.cat(gated, dim=1), self.skip_w)
        return self.model.head(skips[:, :, None])[:, :, 0]

    @torch.no_grad()
    def generate(self, prefix: torch.Tensor, num_samples: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Feed ``prefix`` (int64 ``(batch, time)``, e.g. real audio or silence) then sample ``num_samples`` codes.

        Returns int64 ``(batch, num_samples)``. ``temperature < 1`` sharpens the distribution; ``generator`` (on the
        model's device) makes the draw repeatable.
        """
        for t in range(prefix.shape[1]):
            logits = self.step(prefix[:, t])
        out = []
        for _ in range(num_samples):
            probs = F.softmax(logits / temperature, dim=1)
            code = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out.append(code)
            logits = self.step(code)
        return torch.stack(out, dim=1)
