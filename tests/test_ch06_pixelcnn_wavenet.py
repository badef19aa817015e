"""Chapter 6, first half: PixelCNN masks and sampling, WaveNet blocks, receptive field, mu-law, fast generation."""
import math

import pytest
import torch
import torchaudio.functional as AF

from chapter06_generative.pixelcnn import (
    MaskedConv2d,
    PixelCNN,
    bits_per_dim,
    marginal_bits_per_dim,
    rgb_centre_mask,
    sample,
    spatial_mask,
    to_targets,
)
from chapter06_generative.wavenet import (
    CausalConv1d,
    FastGenerator,
    ResidualBlock,
    SpeechChunks,
    WaveNet,
    marginal_bits,
    mu_law_decode,
    mu_law_encode,
    nll_bits,
    one_hot,
    receptive_field,
)


# --- PixelCNN ---------------------------------------------------------------------------------------------------------
def test_spatial_masks_match_hand_written():
    a = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.float32)
    b = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(spatial_mask("A", 3), a)
    torch.testing.assert_close(spatial_mask("B", 3), b)
    assert spatial_mask("A", 7).sum() == 24 and spatial_mask("B", 7).sum() == 25
    with pytest.raises(ValueError):
        spatial_mask("C", 3)
    with pytest.raises(ValueError):
        spatial_mask("A", 4)


def _input_gradient(model, x, i, j):
    """|d sum(output[:, :, i, j]) / d input| for one image."""
    x = x.clone().requires_grad_(True)
    model(x)[0, :, i, j].sum().backward()
    return x.grad[0].abs().sum(0)


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_masked_conv_sees_only_the_past(mask_type, kernel_size):
    torch.manual_seed(0)
    conv = MaskedConv2d(mask_type, 2, 3, kernel_size, padding=kernel_size // 2).double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    i, j = 3, 3
    grad = _input_gradient(conv, x, i, j)
    order = torch.arange(49).reshape(7, 7)
    here = order[i, j]
    assert (grad[order > here] == 0).all()  # nothing after (i, j) in raster order
    assert (grad[i, j] != 0) == (mask_type == "B")  # type B includes the centre, type A hides it
    assert (grad[order < here] != 0).sum() > 0
    # the masked taps also get no gradient
    conv.weight.grad = None
    conv(x).sum().backward()
    assert (conv.weight.grad[conv.mask == 0] == 0).all()


def test_pixelcnn_is_causal_in_raster_order():
    """Type A first, then type B: logits at (i, j) ignore every input pixel at or after (i, j)."""
    torch.manual_seed(0)
    model = PixelCNN(channels=8, num_layers=4, kernel_size=3).double().eval()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    order = torch.arange(64).reshape(8, 8)
    for i, j in [(0, 0), (3, 4), (7, 7), (5, 0)]:
        grad = _input_gradient(model, x, i, j)
        assert (grad[order >= order[i, j]] == 0).all()
        if (i, j) != (0, 0):
            assert grad.sum() > 0


def test_pixelcnn_shapes_and_bits_per_dim():
    torch.manual_seed(0)
    model = PixelCNN(channels=8, num_layers=3, kernel_size=3)
    x = torch.rand(2, 1, 6, 5)
    assert model(x).shape == (2, 256, 6, 5)
    assert to_targets(torch.tensor([0.0, 1.0, 0.5]).reshape(1, 1, 1, 3)).tolist() == [[[0, 255, 128]]]
    bpd = bits_per_dim(model, [(x, None)])
    assert 0 < bpd < 20
    # a uniform marginal costs exactly 8 bits; a constant one (almost) nothing
    assert marginal_bits_per_dim(torch.arange(256).repeat(100), torch.arange(256)) == pytest.approx(8.0)
    assert marginal_bits_per_dim(torch.zeros(10 ** 6, dtype=torch.long), torch.zeros(5, dtype=torch.long)) < 0.001


def test_row_cropped_forward_equals_full_forward():
    """What ``sample`` relies on: the rows above the receptive field can be dropped without changing row i."""
    torch.manual_seed(0)
    model = PixelCNN(channels=8, num_layers=4, kernel_size=3).double().eval()
    x = torch.rand(2, 1, 16, 9, dtype=torch.float64)
    reach = 3 + 3 * 1
    full = model(x)
    for i in (reach, 10, 15):
        torch.testing.assert_close(model(x[:, :, i - reach:i + 1])[:, :, -1], full[:, :, i])


def test_sample_shape_range_and_repeatability():
    torch.manual_seed(0)
    model = PixelCNN(channels=4, num_layers=2, kernel_size=3)
    a = sample(model, 2, 5, 4, generator=torch.Generator().manual_seed(1))
    b = sample(model, 2, 5, 4, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 1, 5, 4) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a * 255, (a * 255).round())


def test_rgb_centre_mask_orders_colours():
    a, b = rgb_centre_mask("A", 3, 3), rgb_centre_mask("B", 3, 3)
    torch.testing.assert_close(a, torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.float32))
    torch.testing.assert_close(b, torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.float32))
    assert rgb_centre_mask("B", 6, 9).shape == (9, 6)


# --- WaveNet ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_size,stack_size,expected", [(10, 5, 5115), (3, 2, 14), (1, 1, 1)])
def test_receptive_field(layer_size, stack_size, expected):
    assert receptive_field(layer_size, stack_size) == expected


def test_book_config_output_shape_on_meta_device():
    """The book's 10 x 5 stack: [1, 10000, 256] -> [1, 4885, 256], without computing anything."""
    with torch.device("meta"):
        model = WaveNet(layer_size=10, stack_size=5, in_channels=256, res_channels=512)
        out = model(torch.zeros(1, 10000, 256))
    assert model.receptive_field == 5115
    assert out.shape == (1, 4885, 256)


@pytest.mark.parametrize("length", [20, 33])
def test_small_wavenet_output_length_and_causality(length):
    torch.manual_seed(0)
    model = WaveNet(layer_size=3, stack_size=2, in_channels=16, res_channels=8, skip_channels=12).double()
    r = model.receptive_field
    x = one_hot(torch.randint(0, 16, (1, length)), 16).double().requires_grad_(True)
    out = model(x)
    assert out.shape == (1, length - r, 16)
    # output t sees inputs t .. t + r + 1 (the last one is "now"); r + 2 inputs in all
    out[0, 2].sum().backward()
    seen = (x.grad[0].abs().sum(1) != 0).nonzero().flatten()
    assert seen.min().item() >= 2 - 1 and seen.max().item() == 2 + r
    with pytest.raises(ValueError, match="receptive field"):
        model(one_hot(torch.zeros(1, r, dtype=torch.long), 16).double())


def test_causal_conv_keeps_length_and_is_causal():
    conv = CausalConv1d(1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[10.0, 1.0]]]))  # tap 0: previous sample, tap 1: current
    out = conv(torch.tensor([[[1.0, 2.0, 3.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[1.0, 12.0, 23.0]]]))


def test_residual_block_adds_block_input():
    """With the residual 1x1 conv zeroed, the residual output is exactly the (cropped) block input."""
    torch.manual_seed(0)
    block = ResidualBlock(res_channels=4, skip_channels=3, dilation=2)
    x = torch.randn(2, 4, 10)
    with torch.no_grad():
        block.residual.weight.zero_()
        block.residual.bias.zero_()
    res, skip = block(x)
    assert res.shape == (2, 4, 8) and skip.shape == (2, 3, 8)
    torch.testing.assert_close(res, x[:, :, 2:])
    # and in general: residual = 1x1(gate(dilated(x))) + x
    torch.manual_seed(1)
    block = ResidualBlock(4, 3, 2)
    z = block.gate(block.dilated(x))
    torch.testing.assert_close(block(x)[0], block.residual(z) + x[:, :, 2:])


def test_mu_law_matches_torchaudio_and_round_trips():
    x = torch.linspace(-1, 1, 20001)
    codes = mu_law_encode(x)
    assert codes.dtype == torch.int64 and codes.min() == 0 and codes.max() == 255
    torch.testing.assert_close(codes, AF.mu_law_encoding(x, 256))
    torch.testing.assert_close(mu_law_decode(codes), AF.mu_law_decoding(codes, 256))
    assert mu_law_encode(torch.tensor(0.0)) == 128
    # round trip: the error is at most half a code step times the largest slope over that step
    mu = 255
    bound = (1 + mu * x.abs()) * math.log1p(mu) / mu ** 2 * (1 + mu) ** (1 / mu)
    err = (mu_law_decode(codes) - x).abs()
    assert (err <= bound + 1e-6).all()
    assert err.max() < 0.023 and err[x.abs() < 0.01].max() < 3e-4
    # codes survive decode -> encode unchanged
    torch.testing.assert_close(mu_law_encode(mu_law_decode(torch.arange(256))), torch.arange(256))


def test_speech_chunks_pad_and_align():
    rec = torch.arange(10, 30)  # 20 "codes"
    data = SpeechChunks([rec], receptive_field=3, chunk_len=6)
    assert len(data) == 3  # 20 // 6; the last 2 samples are dropped
    inputs, targets = data[0]
    assert inputs.shape == (3 + 6,) and targets.shape == (6,)
    assert inputs.tolist() == [128] * 4 + [10, 11, 12, 13, 14]
    assert targets.tolist() == [10, 11, 12, 13, 14, 15]  # the very first sample is a target
    # target t is the sample after input t + receptive_field; chunks' targets tile the recording
    inputs, targets = data[1]
    assert inputs[3 + 0].item() == 15 and targets[0].item() == 16
    assert torch.cat([data[k][1] for k in range(3)]).tolist() == list(range(10, 28))


def test_nll_and_marginal_bits():
    torch.manual_seed(0)
    model = WaveNet(layer_size=2, stack_size=1, in_channels=256, res_channels=4, skip_channels=8)
    codes = torch.randint(0, 256, (50,))
    bits = nll_bits(model, codes, chunk_len=20)
    assert 7 < bits < 9  # an untrained model is close to uniform (8 bits)
    assert marginal_bits(torch.arange(256).repeat(4), codes) == pytest.approx(8.0)


@pytest.mark.parametrize("layer_size,stack_size", [(3, 2), (2, 3)])
def test_fast_generation_equals_full_forward(layer_size, stack_size):
    """Stepping the per-layer queues over a sequence gives the full forward's logits once the field is filled."""
    torch.manual_seed(0)
    model = WaveNet(layer_size, stack_size, in_channels=16, res_channels=8, skip_channels=12).double()
    codes = torch.randint(0, 16, (2, 40))
    full = model(one_hot(codes, 16).double())
    gen = FastGenerator(model, batch_size=2)
    steps = torch.stack([gen.step(codes[:, t]) for t in range(40)], dim=1)
    torch.testing.assert_close(steps[:, model.receptive_field:], full)


def test_generate_shapes_and_repeatability():
    torch.manual_seed(0)
    model = WaveNet(2, 2, in_channels=16, res_channels=4, skip_channels=8)
    prefix = torch.randint(0, 16, (1, 7))
    a = FastGenerator(model).generate(prefix, 25, generator=torch.Generator().manual_seed(3))
    b = FastGenerator(model).generate(prefix, 25, generator=torch.Generator().manual_seed(3))
    assert a.shape == (1, 25) and a.dtype == torch.int64 and 0 <= a.min() and a.max() < 16
    torch.testing.assert_close(a, b)
