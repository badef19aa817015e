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
        TypeError: the input is not floating point, or its dtype differs from the weights'.
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
        if x.dtype != self.weight.dtype:  # as F.conv2d: no silent mixing of float types
            raise TypeError(f"input dtype {x.dtype} differs from the weights' {self.weight.dtype}; convert with .to()")
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


def window_view(x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Every window of a padded NCHW input, as a strided *view* (no copy): ``(batch, in, kh, kw, out_h, out_w)``."""
    (kh, kw), (sh, sw) = kernel_size, stride
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (batch, in, out_h, out_w, kh, kw)
    return windows.permute(0, 1, 4, 5, 2, 3)


def im2col(x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Every window of a padded NCHW input as a column: ``(batch, in, H, W)`` -> ``(batch, in*kh*kw, out_h*out_w)``.

    Columns in ``(in, kh, kw)`` order, as ``F.unfold`` returns them; the ``flatten`` of the strided view copies
    (except for a 1x1 kernel at stride 1, where the columns are a view of the input).
    """
    return window_view(x, kernel_size, stride).flatten(1, 3).flatten(2)


class Im2col(torch.autograd.Function):
    """:func:`im2col` with its hand-written backward, col2im. Book: chapter 4, "Convolutional neural networks".

    ``Im2col.apply(x, (kh, kw), (sh, sw))`` returns the columns of :func:`im2col`; ``F.unfold`` is the library's
    version. The backward pass adds each column's gradient back where its window came from: ``kh * kw`` strided
    slice additions, the library's ``F.fold`` (a transposed convolution of the gradient). Autograd could
    differentiate the strided view and the copy by itself, through its generic ``unfold_backward``; this is about a
    third faster, and makes a training step of LeNet's second layer 2.5 rather than 3.4 times ``F.conv2d``'s time.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
        ctx.input_shape, ctx.kernel_size, ctx.stride = x.shape, kernel_size, stride
        return im2col(x, kernel_size, stride)

    @staticmethod
    def backward(ctx, grad_columns: torch.Tensor):
        (kh, kw), (sh, sw) = ctx.kernel_size, ctx.stride
        batch, channels, height, width = ctx.input_shape
        out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
        grad_windows = grad_columns.reshape(batch, channels, kh, kw, out_h, out_w)
        grad = grad_columns.new_zeros(ctx.input_shape)
        for i in range(kh):
            for j in range(kw):  # window offset (i, j) of every output position at once
                grad[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw] += grad_windows[:, :, i, j]
        return grad, None, None


class ConvUnfold(Conv):
    """The same convolution, vectorised: im2col (every window becomes a column) and one matrix product.

    Same parameters, shapes and errors as :class:`Conv`; same results up to float rounding; contiguous NCHW output,
    as ``F.conv2d``. Copying the windows into columns is most of the cost (25 times the input for a 5x5 kernel), so
    a few measured choices keep it close to PyTorch's own kernel (``python -m chapter04_cv.benchmark_conv``):

    - Training (gradients needed): :class:`Im2col`, whose hand-written backward beats autograd's, then ``einsum``.
    - Inference, chunks (on the CPU): a few images at a time, so that each chunk's columns (at most ``chunk_bytes``)
      stay in the CPU cache. One scratch buffer serves every chunk and the result is allocated once, up front:
      fresh memory is not free (the operating system maps and zero-fills each page on first touch). When training,
      autograd keeps every column matrix for the backward pass anyway, so the batch goes in one piece.
    - Inference, memory layout: a copy is fastest over long contiguous runs. From the input as stored (NCHW) a run
      is one row of output positions (``out_w`` values at stride 1); from a channels-last copy of the input (NHWC)
      it is one kernel row across all channels (``kw * in_channels`` values), and the columns become rows
      ``(positions, kh*kw*in)``. The longer run wins: NCHW for LeNet's first layer (28 against 15 values),
      channels-last for its second (10 against 30).
    """

    chunk_bytes = 1 << 20  # a column matrix this size fits a typical per-core L2 cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, out_channels, out_h, out_w = self.out_shape(x)
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or self.bias.requires_grad):
            columns = Im2col.apply(x, self.kernel_size, self.stride)  # (batch, in*kh*kw, out_h*out_w)
            out = torch.einsum("ok,bkl->bol", self.weight.reshape(out_channels, -1), columns)  # (batch, out, positions)
            return (out.view(batch, out_channels, out_h, out_w) + self.bias.view(1, -1, 1, 1)).contiguous()
        column_bytes = x.element_size() * self.weight[0].numel() * out_h * out_w  # one image's columns
        chunk = max(1, self.chunk_bytes // column_bytes) if x.device.type == "cpu" else batch  # images per chunk
        kw, sw = self.kernel_size[1], self.stride[1]
        if kw * self.in_channels > (out_w if sw == 1 else 1):
            return self._infer_channels_last(x, chunk)
        return self._infer_nchw(x, chunk)

    def _infer_nchw(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Padded NCHW input, no autograd: ``weight (out, in*kh*kw) @ columns (in*kh*kw, positions)`` per image."""
        windows = window_view(x, self.kernel_size, self.stride)  # (batch, in, kh, kw, out_h, out_w), a view
        batch, out_h, out_w = len(x), windows.shape[4], windows.shape[5]
        weight = self.weight.reshape(1, self.out_channels, -1)
        out = x.new_empty(batch, self.out_channels, out_h * out_w)  # the result first, then the scratch buffer
        columns = x.new_empty(min(chunk, batch), weight.shape[2], out_h * out_w)  # scratch, reused by every chunk
        for start in range(0, batch, chunk):
            part = windows[start:start + chunk]
            columns[:len(part)].view(part.shape).copy_(part)  # im2col, into the buffer
            torch.bmm(weight.expand(len(part), -1, -1), columns[:len(part)], out=out[start:start + len(part)])
        return out.add_(self.bias.view(1, -1, 1)).view(batch, self.out_channels, out_h, out_w)

    def _infer_channels_last(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Padded NCHW input, no autograd: ``rows (positions, kh*kw*in) @ weight (kh*kw*in, out)`` from NHWC."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        batch, out_h, out_w = len(x), (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        out = x.new_empty(batch, self.out_channels, out_h, out_w)  # the result first, then the scratch buffers
        x = x.permute(0, 2, 3, 1).contiguous()  # (batch, height, width, in)
        windows = x.unfold(1, kh, sh).unfold(2, kw, sw).permute(0, 1, 2, 4, 5, 3)  # (batch, out_h, out_w, kh, kw, in)
        weight = self.weight.permute(2, 3, 1, 0).reshape(-1, self.out_channels)  # (kh*kw*in, out), the same order
        rows = x.new_empty((min(chunk, batch),) + windows.shape[1:])  # scratch, reused by every chunk
        products = x.new_empty(len(rows), out_h, out_w, self.out_channels)  # scratch: NHWC products
        for start in range(0, batch, chunk):
            n = min(chunk, batch - start)  # images in this chunk
            rows[:n].copy_(windows[start:start + n])  # im2col, transposed: one row per output position
            torch.mm(rows[:n].view(-1, weight.shape[0]), weight, out=products[:n].view(-1, self.out_channels))
            out[start:start + n].copy_(products[:n].permute(0, 3, 1, 2))  # back to NCHW
        return out.add_(self.bias.view(1, -1, 1, 1))


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

    Same parameters, shapes, values and errors as :class:`MaxPool`. One difference in the backward pass: where
    several values of a window tie for the maximum, ``amax`` shares the gradient equally among them, while
    ``F.max_pool2d`` gives all of it to one of them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.out_shape(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (batch, channels, out_h, out_w, kh, kw), a view
        return windows.amax(dim=(4, 5))
