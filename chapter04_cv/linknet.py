"""LinkNet for semantic segmentation: encoder blocks with residual paths, decoder blocks, skip additions.

Book: chapter 4, "Semantic segmentation" (``ConvBlock``, ``DeconvBlock``, ``EncoderBlock``, ``DecoderBlock``,
``SegmentationModel``; after Chaurasia & Culurciello, "LinkNet", 2017).

Shapes: images ``(batch, 3, height, width)`` float; logits ``(batch, num_classes, height, width)`` float, raw (no
softmax, BatchNorm or ReLU on them): apply ``log_softmax`` + ``NLLLoss`` (as the book) or ``CrossEntropyLoss``.

Differences from the book's listing: the logits always come back at the input's height and width, for any size. The
transposed convolutions are called with ``output_size`` (the skip tensor's size), which settles the one-pixel ambiguity
of a stride-2 upsampling; the last ``ConvTranspose2d(k=2, s=2)`` can only produce even sizes ``2 * ceil(size / 2)``, so
for an odd input size its extra last row/column is cropped. The book's argument name ``kernal`` is spelt ``kernel``.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class ConvBlock(nn.Module):
    """``Conv2d -> BatchNorm2d -> ReLU`` (the ReLU only if ``act``). ``(batch, inp, H, W) -> (batch, out, H', W')``."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, pad: int, bias: bool = False, act: bool = True):
        super().__init__()
        layers = [nn.Conv2d(inp, out, kernel, stride, pad, bias=bias), nn.BatchNorm2d(out)]
        if act:
            layers.append(nn.ReLU())
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x)


class DeconvBlock(nn.Module):
    """``ConvTranspose2d`` (to an exact ``output_size``) ``-> BatchNorm2d -> ReLU``."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, pad: int):
        super().__init__()
        self.conv_transpose = nn.ConvTranspose2d(inp, out, kernel, stride, pad)
        self.batchnorm = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """``(batch, inp, h, w) -> (batch, out, *output_size[-2:])``."""
        return self.relu(self.batchnorm(self.conv_transpose(x, output_size=list(output_size[-2:]))))


class EncoderBlock(nn.Module):
    """Two residual stages; halves the height and width: ``(batch, inp, H, W) -> (batch, out, ceil(H/2), ceil(W/2))``.

    ``out1 = block1(x) + residue(x)``; ``out = block2(out1) + out1``.
    """

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.block1 = nn.Sequential(ConvBlock(inp, out, 3, 2, 1), ConvBlock(out, out, 3, 1, 1))
        self.block2 = nn.Sequential(ConvBlock(out, out, 3, 1, 1), ConvBlock(out, out, 3, 1, 1))
        self.residue = ConvBlock(inp, out, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.block1(x) + self.residue(x)
        return self.block2(out1) + out1


class DecoderBlock(nn.Module):
    """1x1 conv ``inp -> inp/4``, stride-2 transposed conv to ``output_size``, 1x1 conv ``inp/4 -> out``."""

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.conv1 = ConvBlock(inp, inp // 4, 1, 1, 0)
        self.deconv = DeconvBlock(inp // 4, inp // 4, 3, 2, 1)
        self.conv2 = ConvBlock(inp // 4, out, 1, 1, 0)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """``(batch, inp, h, w) -> (batch, out, *output_size[-2:])``."""
        return self.conv2(self.deconv(self.conv1(x), output_size))


class SegmentationModel(nn.Module):
    """LinkNet: ``(batch, 3, H, W)`` images -> ``(batch, num_classes, H, W)`` raw logits, for any ``H, W >= 1``.

    The book's model has ``num_classes=2`` (pedestrian or not).
    """

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.init_conv = ConvBlock(3, 64, 7, 2, 3)
        self.init_maxpool = nn.MaxPool2d(3, 2, 1)
        self.encode1 = EncoderBlock(64, 64)
        self.encode2 = EncoderBlock(64, 128)
        self.encode3 = EncoderBlock(128, 256)
        self.encode4 = EncoderBlock(256, 512)
        self.decode4 = DecoderBlock(512, 256)
        self.decode3 = DecoderBlock(256, 128)
        self.decode2 = DecoderBlock(128, 64)
        self.decode1 = DecoderBlock(64, 64)
        self.deconv1 = DeconvBlock(64, 32, 3, 2, 1)
        self.conv = ConvBlock(32, 32, 3, 1, 1)
        self.final_deconv = nn.ConvTranspose2d(32, num_classes, 2, 2)  # logits: no BatchNorm, no ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        init_conv = self.init_conv(x)  # (batch, 64, H/2, W/2), sizes rounded up
        init_maxpool = self.init_maxpool(init_conv)  # H/4
        e1 = self.encode1(init_maxpool)  # H/8
        e2 = self.encode2(e1)  # H/16
        e3 = self.encode3(e2)  # H/32
        e4 = self.encode4(e3)  # H/64
        d4 = self.decode4(e4, e3.shape) + e3
        d3 = self.decode3(d4, e2.shape) + e2
        d2 = self.decode2(d3, e1.shape) + e1
        d1 = self.decode1(d2, init_maxpool.shape)
        deconv_out1 = self.deconv1(d1, init_conv.shape)  # H/2
        conv_out = self.conv(deconv_out1)
        logits = self.final_deconv(conv_out)  # 2 * ceil(H/2): one row/column too many for odd sizes
        return logits[:, :, :x.shape[2], :x.shape[3]]
