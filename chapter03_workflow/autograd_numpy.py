"""A custom ``torch.autograd.Function`` whose forward and backward run in NumPy/SciPy: 2-D cross-correlation.

Book: chapter 3, "Interfacing with other libraries". ``torch.nn.Conv2d`` computes a cross-correlation; here SciPy's
``scipy.signal.correlate2d`` does the same for one single-channel image and one filter, and autograd learns to call it
through ``ScipyCorrelate2d``. The book's upstream backward was wrong and failed ``torch.autograd.gradcheck``;
``WrongCorrelate2d`` makes the classic mistake (a convolution where the filter gradient needs a correlation) so the
notebook can show gradcheck catching it.

The gradients, for ``out = correlate2d(x, w, "valid") + b`` with upstream gradient ``g = dL/dout``:

- ``dL/dx = convolve2d(g, w, "full")``   (shape of ``x``)
- ``dL/dw = correlate2d(x, g, "valid")`` (shape of ``w``)
- ``dL/db = g.sum()``
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.signal import convolve2d, correlate2d
from torch import nn
from torch.autograd.function import once_differentiable


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy view (or CPU copy) of a tensor, detached from the graph."""
    return t.detach().cpu().numpy()


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
    if x.dim() != 2 or weight.dim() != 2:
        raise ValueError(f"expected a 2-D image (height, width) and a 2-D filter, got shapes {tuple(x.shape)} and "
                         f"{tuple(weight.shape)}")
    if weight.shape[0] > x.shape[0] or weight.shape[1] > x.shape[1]:
        raise ValueError(f"filter {tuple(weight.shape)} is larger than the image {tuple(x.shape)}")
    if bias.numel() != 1:
        raise ValueError(f"bias must hold one value, got shape {tuple(bias.shape)}")


class ScipyCorrelate2d(torch.autograd.Function):
    """``correlate2d(x, weight, "valid") + bias`` computed by SciPy, with a correct hand-written backward.

    Shapes: ``x`` ``(height, width)``, ``weight`` ``(kernel_h, kernel_w)``, ``bias`` one value (shape ``(1,)``) ->
    output ``(height - kernel_h + 1, width - kernel_w + 1)``; same dtype and device as ``x`` (the work runs on the CPU,
    so CUDA tensors make a round trip). Use through ``ScipyCorrelate2d.apply(x, weight, bias)``.

    Raises:
        ValueError: inputs that are not 2-D, a filter larger than the image, or a bias with more than one value.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        _check(x, weight, bias)
        ctx.save_for_backward(x, weight, bias)
        out = correlate2d(_numpy(x), _numpy(weight), mode="valid") + _numpy(bias)
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

    @staticmethod
    @once_differentiable  # the backward itself is NumPy code: autograd cannot differentiate it again
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, weight, bias = ctx.saved_tensors
        g = _numpy(grad_output)
        grad_x = convolve2d(g, _numpy(weight), mode="full")
        grad_weight = correlate2d(_numpy(x), g, mode="valid")
        grad_bias = np.full(bias.shape, g.sum())
        return tuple(torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in (grad_x, grad_weight, grad_bias))


class WrongCorrelate2d(ScipyCorrelate2d):
    """A wrong backward, kept for the gradcheck demo: the filter gradient uses ``convolve2d``.

    A convolution flips ``g``, so ``dL/dweight`` comes out rotated by 180 degrees; gradcheck reports the mismatch.
    """

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, weight, bias = ctx.saved_tensors
        g = _numpy(grad_output)
        grad_x = convolve2d(g, _numpy(weight), mode="full")
        grad_weight = convolve2d(_numpy(x), g, mode="valid")  # wrong: should be a correlation
        grad_bias = np.full(bias.shape, g.sum())
        return tuple(torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in (grad_x, grad_weight, grad_bias))


class ScipyConv2d(nn.Module):
    """A learnable single-channel 2-D correlation layer built on ``ScipyCorrelate2d``.

    Input ``(height, width)`` -> output ``(height - kernel_h + 1, width - kernel_w + 1)``. Parameters: ``weight``
    ``(kernel_h, kernel_w)`` and ``bias`` ``(1,)``, initialised like ``nn.Conv2d(1, 1, (kernel_h, kernel_w))``.
    """

    def __init__(self, kernel_h: int, kernel_w: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        conv = nn.Conv2d(1, 1, (kernel_h, kernel_w), dtype=dtype)  # borrow nn.Conv2d's initialisation
        self.weight = nn.Parameter(conv.weight.detach()[0, 0].clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ScipyCorrelate2d.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.weight.shape)}"
