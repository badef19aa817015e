"""PixelCNN: masked convolutions, the book's 8-layer network, NLL in bits per dimension, pixel-by-pixel sampling.

Book: chapter 6, "PixelCNN" (autoregressive models). The model factorises an image as
p(x) = prod_i p(x_i | x_<i) over pixels in raster order (row by row, left to right); masked convolutions make the
logits at pixel (i, j) depend only on pixels above, and to the left in the same row.

Shapes: images ``(batch, 1, height, width)`` float32 in [0, 1] (intensity / 255); logits
``(batch, 256, height, width)``; targets ``(batch, height, width)`` int64 intensities 0..255.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

LN2 = math.log(2.0)


def spatial_mask(mask_type: str, kernel_size: int) -> torch.Tensor:
    """The ``(kernel_size, kernel_size)`` 0/1 mask of a masked convolution (odd ``kernel_size``).

    Rows above the centre are kept, the centre row up to the centre, rows below are hidden. Type ``"A"`` also hides
    the centre (the first layer must not see the pixel it predicts); type ``"B"`` keeps it (later layers may use
    their own position, which by then only carries information from earlier pixels).

    Raises:
        ValueError: ``mask_type`` is not ``"A"``/``"B"`` or ``kernel_size`` is even.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    c = kernel_size // 2
    mask = torch.ones(kernel_size, kernel_size)
    mask[c, c + (mask_type == "B"):] = 0  # centre row: hide the centre (A) or only what follows it (B)
    mask[c + 1:] = 0  # rows below the centre
    return mask


def rgb_centre_mask(mask_type: str, in_channels: int, out_channels: int) -> torch.Tensor:
    """Channel mask ``(out_channels, in_channels)`` for the CENTRE tap of a colour PixelCNN (R -> G -> B).

    Channels are split into three equal groups R, G, B (``channels % 3 == 0``). At the centre pixel an output of
    group g may see input groups < g (type A) or <= g (type B): R is predicted from the context only, G also from R,
    B from R and G. All other taps use the spatial mask. Not used by the grey-scale model; shown in the notebook.

    Raises:
        ValueError: channel counts not divisible by 3, or a bad ``mask_type``.
    """
    if in_channels % 3 or out_channels % 3:
        raise ValueError("channel counts must be divisible by 3 (R, G, B groups)")
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    g_out = torch.arange(out_channels) // (out_channels // 3)
    g_in = torch.arange(in_channels) // (in_channels // 3)
    allowed = g_in[None, :] < g_out[:, None] if mask_type == "A" else g_in[None, :] <= g_out[:, None]
    return allowed.float()


class MaskedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose kernel is multiplied by a fixed causal mask (registered buffer ``mask``).

    ``MaskedConv2d(mask_type, in_channels, out_channels, kernel_size, ...)``; the other arguments are ``nn.Conv2d``'s
    (use ``padding=kernel_size // 2`` to keep the size). Input ``(batch, in_channels, H, W)`` -> output
    ``(batch, out_channels, H, W)``.

    Differs from the book's listing on purpose: the book zeroes ``self.weight.data`` in place before each forward;
    here the mask multiplies the weight inside the forward, so the masked taps get zero gradient and the stored
    weight is never silently modified.
    """

    def __init__(self, mask_type: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        if kh != kw:
            raise ValueError("MaskedConv2d needs a square kernel")
        self.mask_type = mask_type
        self.register_buffer("mask", spatial_mask(mask_type, kh)[None, None].expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f"mask_type={self.mask_type}, " + super().extra_repr()


class PixelCNN(nn.Sequential):
    """The book's PixelCNN: a 7x7 type-A masked conv, then ``num_layers - 1`` type-B masked convs (each + BatchNorm +
    ReLU), then a 1x1 conv to ``levels`` logits per pixel.

    Book values: ``channels=64, num_layers=8, kernel_size=7, levels=256``. ``kernel_size`` applies to the type-B
    layers (the first layer is always 7x7), so a cheaper CPU model can use 3x3 there.
    Input ``(batch, 1, H, W)`` float in [0, 1] -> logits ``(batch, levels, H, W)``.
    """

    def __init__(self, channels: int = 64, num_layers: int = 8, kernel_size: int = 7, levels: int = 256):
        layers: list[nn.Module] = [MaskedConv2d("A", 1, channels, 7, padding=3, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU(True)]
        for _ in range(num_layers - 1):
            layers += [MaskedConv2d("B", channels, channels, kernel_size, padding=kernel_size // 2, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(True)]
        layers.append(nn.Conv2d(channels, levels, 1))
        super().__init__(*layers)
        self.levels = levels


def to_targets(images: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """``(batch, 1, H, W)`` floats in [0, 1] -> ``(batch, H, W)`` int64 intensities 0..levels-1 (the book's target)."""
    return (images[:, 0] * (levels - 1)).round().long()


def bits_per_dim(model: nn.Module, images: Iterable, device: torch.device | str = "cpu") -> float:
    """Average negative log-likelihood in bits per pixel over ``images`` (an iterable of ``(images, labels)`` batches).

    bits/dim = cross-entropy (nats) / ln 2; 8 bits/dim is a uniform guess over 256 intensities.
    """
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, *_ in images:
            x = x.to(device)
            logits = model(x)
            total += F.cross_entropy(logits, to_targets(x, logits.shape[1]), reduction="sum").item()
            count += x.shape[0] * x.shape[2] * x.shape[3]
    return total / count / LN2


def marginal_bits_per_dim(train_pixels: torch.Tensor, test_pixels: torch.Tensor, levels: int = 256) -> float:
    """The trivial baseline: bits/pixel of ``test_pixels`` under the training set's pixel histogram.

    Both are int64 tensors of intensities 0..levels-1 (any shape). The histogram gets add-one smoothing so that no
    test intensity has probability 0. This is the cross-entropy of a model that ignores every neighbour.
    """
    counts = torch.bincount(train_pixels.flatten(), minlength=levels).double() + 1
    log2p = torch.log2(counts / counts.sum())
    return -log2p[test_pixels.flatten()].mean().item()


@torch.no_grad()
def sample(model: nn.Module, num_images: int, height: int = 28, width: int = 28, device: torch.device | str = "cpu",
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``num_images`` images pixel by pixel: ``height * width`` forward passes, each sampling one pixel.

    Returns ``(num_images, 1, height, width)`` float32 in [0, 1] on ``device``. ``generator`` (on ``device``) makes
    the draw repeatable. Only the rows a pixel can see are fed to the network (its receptive field reaches
    ``reach`` rows up), which gives the same result as the full image and is several times faster.
    """
    model.eval()
    levels = model.levels if hasattr(model, "levels") else 256
    reach = sum(m.kernel_size[0] // 2 for m in model.modules() if isinstance(m, MaskedConv2d))
    x = torch.zeros(num_images, 1, height, width, device=device)
    for i in range(height):
        top = max(0, i - reach)
        for j in range(width):
            logits = model(x[:, :, top:i + 1])[:, :, -1, j]  # (num_images, levels)
            pixel = torch.multinomial(F.softmax(logits, dim=1), 1, generator=generator)
            x[:, 0, i, j] = pixel[:, 0].float() / (levels - 1)
    return x
