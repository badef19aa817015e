"""Hand-made 2-D convolution and max pooling: a didactic loop and a vectorised version of each.

Book: chapter 4, "Convolutional neural networks" (the ``Conv`` and ``MaxPool`` listings).

Every class here computes exactly what ``torch.nn.functional.conv2d`` / ``max_pool2d`` compute (no dilation, no
groups, ``ceil_mode=False``) for any kernel size, stride and zero padding, on any batch size, channel count and
non-square input. Differences from the book's listing, which a reader comparing with the print would notice:

- ``stride`` is honoured (the book's loop always moved the window by one pixel);
- the output size is ``(H - F + 2P) // S + 1`` measured on the *unpadded* input (the book mis-sized padded outputs);
- the weights are initialised like ``nn.Conv2d`` (Kaiming-uniform with ``a=sqrt(5)``, i.e. ``U(-1/sqrt(fan_in),
  1/sqrt(fan_in))``), not left as uninitialised memory; the bias starts at zero as in the book;
- outputs are allocated on the input's device and dtype (the book allocated on the CPU);
- max pooling pads with ``-inf`` so that padding never wins a maximum (as PyTorch does).

Shapes use ``(batch, channels, height, width)`` (NCHW). Inputs must be floating point.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis: ``(W - F + 2P) // S + 1`` (the book's formula, rounded down).

    Raises:
        ValueError: the kernel is larger than the padded input (no output position).
    """
    if size + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input ({size} + 2*{padding})")
    return (size - kernel + 2 * padding) // stride + 1


def _check_input(x: torch.Tensor, channels: int | None = None) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a 4-D input (batch, channels, height, width), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")


class Conv(nn.Module):
    """2-D convolution written as the book's sliding-window loop, made correct.

    Input ``(batch, in_channels, height, width)`` float; output ``(batch, out_channels, out_height, out_width)`` with
    ``out_height = (height - kernel_h + 2 * padding_h) // stride_h + 1`` (same for the width).
    ``weight`` has shape ``(out_channels, in_channels, kernel_h, kernel_w)``, ``bias`` ``(out_channels,)``.

    Raises (in ``forward``):
        ValueError: the input is not 4-D, has the wrong channel count, or is smaller than the kernel after padding.
        TypeError: the input is not floating point.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))  # book: zero bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights exactly as ``nn.Conv2d`` draws them: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.zeros_(self.bias)

    def out_shape(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """``(batch, out_channels, out_height, out_width)`` for input ``x`` (checks ``x`` first)."""
        _check_input(x, self.in_channels)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (x.shape[0], self.out_channels, output_size(x.shape[2], kh, sh, ph), output_size(x.shape[3], kw, sw, pw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, out_channels, out_h, out_w = self.out_shape(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        x = F.pad(x, (pw, pw, ph, ph))  # zeros: left, right, top, bottom
        out = torch.zeros(batch, out_channels, out_h, out_w, dtype=x.dtype, device=x.device)
        for i in range(out_h):
            for j in range(out_w):
                window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (batch, in_channels, kh, kw)
                # (batch, 1, in, kh, kw) * (out, in, kh, kw) -> sum over in, kh, kw -> (batch, out)
                out[:, :, i, j] = (window.unsqueeze(1) * self.weight).sum(dim=(2, 3, 4))
        return out + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class ConvUnfold(Conv):
    """The same convolution, vectorised (im2col): every window becomes a column, one matrix product does the rest.

    ``Tensor.unfold`` gives a strided *view* of all windows (no copy); one ``reshape`` copies them into the column
    matrix ``(batch, in_channels * kh * kw, out_h * out_w)``, the matrix ``F.unfold`` returns (built this way it is
    about twice as fast as ``F.unfold`` on a CPU); one batched matrix product with the weights gives every output.
    Same parameters, shapes and errors as :class:`Conv`; same results up to float rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, out_channels, out_h, out_w = self.out_shape(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (batch, in, out_h, out_w, kh, kw), a view
        columns = windows.permute(0, 1, 4, 5, 2, 3).reshape(batch, -1, out_h * out_w)  # (batch, in*kh*kw, out_h*out_w)
        weight = self.weight.view(1, out_channels, -1).expand(batch, -1, -1)  # a view: the same matrix for every image
        out = torch.bmm(weight, columns)  # (batch, out_channels, out_h * out_w); faster on CPU than broadcasting `@`
        return out.view(batch, out_channels, out_h, out_w) + self.bias.view(1, -1, 1, 1)


class MaxPool(nn.Module):
    """2-D max pooling written as the book's sliding-window loop, made correct.

    Input ``(batch, channels, height, width)`` float; output ``(batch, channels, out_height, out_width)`` with the
    same size formula as :class:`Conv`. ``stride`` defaults to ``kernel_size`` (as ``nn.MaxPool2d``). Padding adds
    ``-inf`` borders and, as in PyTorch, may be at most half the kernel size.

    Raises:
        ValueError: ``padding > kernel_size / 2`` (in ``__init__``); a non 4-D or too small input (in ``forward``).
        TypeError: the input is not floating point.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride if stride is not None else kernel_size, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        if any(p > k / 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"padding {self.padding} must be at most half the kernel size {self.kernel_size}")

    def out_shape(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """``(batch, channels, out_height, out_width)`` for input ``x`` (checks ``x`` first)."""
        _check_input(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (x.shape[0], x.shape[1], output_size(x.shape[2], kh, sh, ph), output_size(x.shape[3], kw, sw, pw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, out_h, out_w = self.out_shape(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))  # padding never wins the max
        out = torch.empty(batch, channels, out_h, out_w, dtype=x.dtype, device=x.device)
        for i in range(out_h):
            for j in range(out_w):
                window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (batch, channels, kh, kw)
                out[:, :, i, j] = window.flatten(start_dim=2).max(dim=2).values  # max over the kh * kw values
        return out

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPoolUnfold(MaxPool):
    """The same pooling, vectorised: ``Tensor.unfold`` makes a strided view of every window (no copy), then ``amax``.

    Same parameters, shapes and errors as :class:`MaxPool`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.out_shape(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (batch, channels, out_h, out_w, kh, kw), a view
        return windows.amax(dim=(4, 5))
