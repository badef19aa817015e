"""Chapter 4: the hand-made Conv/MaxPool (loop and vectorised) equal F.conv2d/F.max_pool2d on the whole grid."""
import itertools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from chapter04_cv.layers import Conv, ConvUnfold, Im2col, MaxPool, MaxPoolUnfold, im2col, output_size

GRID = list(itertools.product(range(0, 3), range(1, 4), range(1, 6)))  # padding 0..2, stride 1..3, kernel 1..5
POOL_GRID = [(p, s, k) for p, s, k in GRID if p <= k / 2]  # PyTorch allows padding <= kernel / 2 only


@pytest.mark.parametrize("cls", [Conv, ConvUnfold])
@pytest.mark.parametrize("padding,stride,kernel", GRID)
def test_conv_equals_f_conv2d(cls, padding, stride, kernel):
    torch.manual_seed(padding * 100 + stride * 10 + kernel)
    x = torch.randn(2, 3, 6, 9)  # batch > 1, multi-channel, non-square
    conv = cls(3, 4, kernel, stride=stride, padding=padding)
    nn.init.normal_(conv.bias)  # a non-zero bias, so that adding it is checked too
    expected = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=padding)
    out = conv(x)
    assert out.shape == expected.shape == (2, 4, output_size(6, kernel, stride, padding),
                                           output_size(9, kernel, stride, padding))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,stride,kernel", GRID)
def test_conv_unfold_inference_chunks_equal_f_conv2d(padding, stride, kernel):
    """The no-autograd path: cache-sized chunks (here 2 + 2 + 1 images) through one reused column buffer."""
    torch.manual_seed(padding * 100 + stride * 10 + kernel)
    x = torch.randn(5, 3, 6, 9)
    conv = ConvUnfold(3, 4, kernel, stride=stride, padding=padding)
    nn.init.normal_(conv.bias)
    out_h, out_w = output_size(6, kernel, stride, padding), output_size(9, kernel, stride, padding)
    conv.chunk_bytes = 2 * 3 * kernel * kernel * out_h * out_w * 4  # two images' columns per chunk
    with torch.no_grad():
        out = conv(x)
        expected = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=padding)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,stride,kernel", GRID)
def test_conv_unfold_gradients_equal_f_conv2d(padding, stride, kernel):
    """The training path: Im2col's hand-written backward (col2im) gives autograd's gradients."""
    torch.manual_seed(padding * 100 + stride * 10 + kernel)
    x = torch.randn(2, 3, 6, 9, dtype=torch.float64, requires_grad=True)
    conv = ConvUnfold(3, 4, kernel, stride=stride, padding=padding).double()
    out = conv(x)
    expected = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=padding)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, conv.weight, conv.bias), grad_out)
    grads_ref = torch.autograd.grad(expected, (x, conv.weight, conv.bias), grad_out)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("stride", [(1, 1), (2, 3)])
def test_im2col_and_col2im_equal_f_unfold_and_f_fold(stride):
    """Hand-written im2col / col2im against the library's F.unfold / F.fold, plus a numerical gradient check."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    columns = Im2col.apply(x, (3, 2), stride)
    torch.testing.assert_close(columns, F.unfold(x, (3, 2), stride=stride))
    torch.testing.assert_close(im2col(x.detach(), (3, 2), stride), F.unfold(x.detach(), (3, 2), stride=stride))
    grad_columns = torch.randn_like(columns)
    (grad,) = torch.autograd.grad(columns, x, grad_columns)
    torch.testing.assert_close(grad, F.fold(grad_columns, (7, 8), (3, 2), stride=stride))
    assert torch.autograd.gradcheck(lambda t: Im2col.apply(t, (3, 2), stride), (x,))


@pytest.mark.parametrize("cls", [MaxPool, MaxPoolUnfold])
@pytest.mark.parametrize("padding,stride,kernel", POOL_GRID)
def test_maxpool_equals_f_max_pool2d(cls, padding, stride, kernel):
    torch.manual_seed(padding * 100 + stride * 10 + kernel)
    x = torch.randn(2, 3, 7, 10) - 5  # all negative, so a zero padding would wrongly win the max
    expected = F.max_pool2d(x, kernel, stride=stride, padding=padding)
    torch.testing.assert_close(cls(kernel, stride, padding)(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [Conv, ConvUnfold])
def test_conv_non_square_kernel_stride_padding_and_gradients(cls):
    torch.manual_seed(0)
    x = torch.randn(3, 2, 8, 5, dtype=torch.float64, requires_grad=True)
    conv = cls(2, 5, (3, 2), stride=(2, 1), padding=(1, 2)).double()
    nn.init.normal_(conv.bias)
    out = conv(x)
    expected = F.conv2d(x, conv.weight, conv.bias, stride=(2, 1), padding=(1, 2))
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), (x, conv.weight, conv.bias))
    grads_ref = torch.autograd.grad(expected.square().sum(), (x, conv.weight, conv.bias))
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)


def test_maxpool_default_stride_is_kernel_and_non_square():
    x = torch.randn(2, 4, 9, 6)
    torch.testing.assert_close(MaxPool(2)(x), F.max_pool2d(x, 2))
    torch.testing.assert_close(MaxPoolUnfold((3, 2), (1, 2), (1, 0))(x), F.max_pool2d(x, (3, 2), (1, 2), (1, 0)))


def test_conv_init_matches_nn_conv2d():
    torch.manual_seed(7)
    ours = Conv(6, 16, 5)
    torch.manual_seed(7)
    ref = nn.Conv2d(6, 16, 5)
    torch.testing.assert_close(ours.weight, ref.weight)  # same distribution, same draws
    assert torch.count_nonzero(ours.bias) == 0  # the book's zero bias
    big = Conv(64, 128, 3).weight.detach()
    bound = 1 / math.sqrt(64 * 3 * 3)  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert big.abs().max() <= bound
    assert big.abs().max() > 0.99 * bound
    assert abs(big.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(big.mean().item()) < 0.02 * bound


@pytest.mark.parametrize("cls", [Conv, ConvUnfold, MaxPool, MaxPoolUnfold])
def test_output_follows_input_device_and_dtype(cls):
    for device, dtype in [("meta", torch.float32), ("cpu", torch.float64)]:
        with torch.device(device):  # "meta": shapes only; any tensor made on the CPU by mistake would show up
            layer = cls(2, 3, 3) if cls in (Conv, ConvUnfold) else cls(3)
            x = torch.randn(1, 2, 6, 7, dtype=dtype)
        out = layer.to(dtype=dtype)(x)
        with torch.no_grad():  # ConvUnfold's inference path allocates its own buffers
            out_no_grad = layer(x)
        for y in (out, out_no_grad):
            assert y.device.type == device and y.dtype == dtype


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("in_channels,out_channels,size", [(3, 6, 32), (6, 16, 14)])  # NCHW / channels-last copy
def test_conv_unfold_output_layout_channels_last_weights_and_empty_batch(grad, in_channels, out_channels, size):
    """As F.conv2d: contiguous NCHW output, channels-last weights work, an empty batch gives an empty output."""
    torch.manual_seed(0)
    conv = ConvUnfold(in_channels, out_channels, 5)
    x = torch.randn(3, in_channels, size, size)
    with torch.set_grad_enabled(grad):
        out = conv(x)
        assert out.is_contiguous()
        torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias))
        assert conv(x[:0]).shape == (0, out_channels, size - 4, size - 4)
        conv_last = conv.to(memory_format=torch.channels_last)
        assert not conv_last.weight.is_contiguous()
        torch.testing.assert_close(conv_last(x), out)


def test_clear_errors():
    conv = Conv(3, 4, 5)
    with pytest.raises(TypeError, match="differs from the weights"):
        conv(torch.randn(1, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="input channels"):
        conv(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        conv(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv(torch.randn(1, 3, 4, 8))
    with pytest.raises(TypeError, match="floating-point"):
        MaxPool(2)(torch.ones(1, 1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="at most half"):
        MaxPool(3, padding=2)
    with pytest.raises(ValueError, match="stride"):
        Conv(3, 4, 3, stride=0)


def test_output_size_formula():
    assert output_size(32, 5) == 28  # LeNet's first convolution
    assert output_size(7, 3, 2, 1) == 4  # (7 - 3 + 2) // 2 + 1
    assert output_size(3, 3, 1, 1) == 3  # "same" padding
