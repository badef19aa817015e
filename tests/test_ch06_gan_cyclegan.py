"""Chapter 6, second half: simple GAN, sample-quality score, CycleGAN (networks, replay buffer, LR schedule, data)."""
import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from chapter06_generative import cyclegan, gan, sample_score

# --- simple GAN


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_gan_networks_follow_the_book():
    d, g = gan.DiscriminatorNet(), gan.GeneratorNet()
    d_linear = [(m.in_features, m.out_features) for m in d.modules() if isinstance(m, nn.Linear)]
    g_linear = [(m.in_features, m.out_features) for m in g.modules() if isinstance(m, nn.Linear)]
    assert d_linear == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert g_linear == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert [m.p for m in d.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3, 0.3]
    assert not any(isinstance(m, nn.Dropout) for m in g.modules())
    assert isinstance(d.out[-1], nn.Sigmoid) and isinstance(g.out[-1], nn.Tanh)
    # hand-computed: sum of in * out + out over the linear layers
    assert n_params(d) == 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 256 + 256 + 256 + 1 == 1_460_225
    assert n_params(g) == 100 * 256 + 256 + 256 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 784 + 784 == 1_486_352


@pytest.mark.parametrize("batch", [1, 5])
def test_gan_shapes_and_ranges(batch):
    torch.manual_seed(0)
    d, g = gan.DiscriminatorNet().eval(), gan.GeneratorNet()
    fake = g(gan.noise(batch))
    assert fake.shape == (batch, 784) and fake.abs().max() <= 1
    p = d(fake)
    assert p.shape == (batch, 1) and ((p > 0) & (p < 1)).all()
    assert gan.vectors_to_images(fake).shape == (batch, 1, 28, 28)
    assert torch.equal(gan.images_to_vectors(gan.vectors_to_images(fake)), fake)


def test_gan_steps_update_only_their_network_and_return_bce():
    torch.manual_seed(0)
    d, g = gan.DiscriminatorNet().eval(), gan.GeneratorNet()  # eval: no dropout, so the loss can be recomputed
    loss = nn.BCELoss()
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4)
    real = torch.rand(6, 784) * 2 - 1
    fake = g(gan.noise(4)).detach()  # batches of different sizes work
    with torch.no_grad():
        expected = -(d(real).log().mean() + (1 - d(fake)).log().mean())
    g_before = [p.clone() for p in g.parameters()]
    d_loss, _, _ = gan.train_discriminator(d, loss, opt_d, real, fake)
    torch.testing.assert_close(torch.tensor(d_loss), expected, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(g_before, g.parameters()))
    d_before = [p.clone() for p in d.parameters()]
    fake = g(gan.noise(4))
    with torch.no_grad():
        expected = -d(fake).log().mean()  # non-saturating generator loss
    g_loss = gan.train_generator(d, loss, opt_g, fake)
    torch.testing.assert_close(torch.tensor(g_loss), expected, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, g.parameters()))


def test_image_grid_layout():
    grid = gan.image_grid(torch.zeros(6, 1, 28, 28), nrow=3)
    assert grid.shape == (2 * 29 + 1, 3 * 29 + 1, 3)  # make_grid repeats grey to RGB; 1-pixel padding
    assert grid[1, 1, 0] == 0.5 and grid[0, 0, 0] == 1.0  # 0 in [-1, 1] -> 0.5 grey; white border


# --- sample-quality score


def test_frechet_distance_matches_scipy_sqrtm():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(200, 5, generator=gen, dtype=torch.float64) @ torch.randn(5, 5, generator=gen,
                                                                                dtype=torch.float64) + 1
    mu1, s1 = sample_score.gaussian_stats(a)
    mu2, s2 = sample_score.gaussian_stats(b)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert sample_score.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert sample_score.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # 1-D check by hand: N(0, 1) vs N(3, 4): (0 - 3)^2 + 1 + 4 - 2 * 2 = 10
    assert sample_score.frechet_distance(torch.zeros(1), torch.ones(1, 1), torch.full((1,), 3.0),
                                         torch.full((1, 1), 4.0)) == pytest.approx(10.0)


def test_classifier_score_bounds():
    assert sample_score.classifier_score(torch.full((8, 10), 0.1)) == pytest.approx(1.0)
    assert sample_score.classifier_score(torch.eye(10)) == pytest.approx(10.0, rel=1e-6)
    assert sample_score.classifier_score(torch.eye(10)[[0] * 10]) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def fashion():
    from chapter03_workflow.datasets import load_fashion_mnist

    try:
        train = load_fashion_mnist(train=True)
        test = load_fashion_mnist(train=False)
    except FileNotFoundError as e:
        pytest.skip(f"Fashion-MNIST not available: {e}")
    to_float = lambda d: d.data[:3000].float().div(127.5).sub(1).unsqueeze(1)  # noqa: E731
    return to_float(train), train.targets[:3000], to_float(test)


def test_score_orders_noise_above_real(fashion, tmp_path):
    images, labels, test_images = fashion
    model, loaded = sample_score.load_or_train_classifier(tmp_path / "clf.pt", images[:2000], labels[:2000])
    assert not loaded and (tmp_path / "clf.pt").exists()
    again, loaded = sample_score.load_or_train_classifier(tmp_path / "clf.pt", images, labels)
    assert loaded and all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    ref, _ = sample_score.extract(model, test_images[:1000])
    real, real_p = sample_score.extract(model, images[2000:3000])  # held out from the classifier
    noise, noise_p = sample_score.extract(model, torch.rand(1000, 1, 28, 28, generator=torch.Generator()
                                                            .manual_seed(0)) * 2 - 1)
    assert ref.shape == (1000, sample_score.FEATURE_SIZE)
    assert sample_score.fid(real, ref) * 10 < sample_score.fid(noise, ref)
    assert sample_score.classifier_score(real_p) > sample_score.classifier_score(noise_p)


# --- CycleGAN


def generator_params(ngf: int, n_blocks: int, c: int = 3) -> int:
    """Hand count: conv weights k*k*in*out + out biases; InstanceNorm has no parameters."""
    conv = lambda k, i, o: k * k * i * o + o  # noqa: E731
    return (conv(7, c, ngf) + conv(3, ngf, 2 * ngf) + conv(3, 2 * ngf, 4 * ngf)
            + n_blocks * 2 * conv(3, 4 * ngf, 4 * ngf)
            + conv(3, 4 * ngf, 2 * ngf) + conv(3, 2 * ngf, ngf) + conv(7, ngf, c))


def discriminator_params(ndf: int, c: int = 3) -> int:
    conv = lambda i, o: 16 * i * o + o  # noqa: E731
    return conv(c, ndf) + conv(ndf, 2 * ndf) + conv(2 * ndf, 4 * ndf) + conv(4 * ndf, 8 * ndf) + conv(8 * ndf, 1)


def test_cyclegan_book_parameter_counts():
    g, d = cyclegan.Generator(), cyclegan.Discriminator()  # book: 9 residual blocks, 64 filters
    assert n_params(g) == generator_params(64, 9) == 11_378_179
    assert n_params(d) == discriminator_params(64) == 2_764_737
    assert sum(isinstance(m, cyclegan.ResidualBlock) for m in g.modules()) == 9
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 1]
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in d.modules()) == 3


@pytest.mark.parametrize("ngf,n_blocks", [(8, 1), (16, 3)])
@pytest.mark.parametrize("batch,size", [(1, 32), (3, 24), (2, 40)])
def test_cyclegan_shapes(ngf, n_blocks, batch, size):
    torch.manual_seed(0)
    g, d = cyclegan.Generator(3, 3, n_blocks, ngf), cyclegan.Discriminator(3, ngf)
    assert n_params(g) == generator_params(ngf, n_blocks)
    assert n_params(d) == discriminator_params(ngf)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(x).shape == (batch, 1)
    assert d.patch_scores(x).shape == (batch, 1, size // 8 - 2, size // 8 - 2)


def test_residual_block_adds_its_input():
    block = cyclegan.ResidualBlock(4)
    for p in block.conv_block[-2].parameters():  # zero the last conv: the block must return x exactly
        nn.init.zeros_(p)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), x)


def test_instance_norm_ignores_batch_companions_batch_norm_does_not():
    torch.manual_seed(0)
    x, others = torch.randn(1, 3, 32, 32), torch.randn(3, 3, 32, 32)
    for norm, independent in (("instance", True), ("batch", False)):
        torch.manual_seed(1)
        g = cyclegan.Generator(3, 3, 1, 8, norm=norm)  # train mode: batch statistics
        alone, in_batch = g(x), g(torch.cat([x, others]))[:1]
        assert torch.allclose(alone, in_batch, atol=1e-5) == independent


def test_weights_init_normal():
    torch.manual_seed(0)
    g = cyclegan.Generator(3, 3, 2, 16, norm="batch")
    g.apply(cyclegan.weights_init_normal)
    convs = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert convs.mean().abs() < 1e-3 and convs.std().item() == pytest.approx(0.02, rel=0.02)
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in bns)
    assert torch.cat([m.weight for m in bns]).sub(1).abs().max() < 0.1


def test_make_norm_rejects_unknown():
    with pytest.raises(ValueError, match="instance"):
        cyclegan.make_norm("layer", 4)


def test_replay_buffer_fills_to_max_then_mixes():
    buf = cyclegan.ReplayBuffer(50, seed=0)
    batches = [torch.full((4, 1, 2, 2), float(i)) for i in range(40)]  # batch i holds the value i
    out = buf.push_and_pop(torch.cat(batches[:12]))  # 48 images: all returned as they are while filling
    assert torch.equal(out, torch.cat(batches[:12])) and len(buf.data) == 48
    out = buf.push_and_pop(batches[12])  # 2 fill the buffer to 50; 2 go through the random swap
    assert out.shape == (4, 1, 2, 2) and len(buf.data) == 50
    new, old = 0, 0
    for i in range(13, 40):
        out = buf.push_and_pop(batches[i])
        assert out.shape == batches[i].shape and len(buf.data) == 50  # never more than asked, never grows
        values = out.flatten(1)[:, 0]
        new += int((values == i).sum())
        old += int((values < i).sum())
        assert new + old == 4 * (i - 12)  # every image is either the new one or a stored (older) one
    assert 0.3 < new / (new + old) < 0.7 and old > 0  # about half each


@pytest.mark.parametrize("n", [1, 7, 60])
def test_replay_buffer_returns_as_many_as_given_and_detaches(n):
    buf = cyclegan.ReplayBuffer(50, seed=1)
    x = torch.randn(n, 3, 4, 4, requires_grad=True)
    out = buf.push_and_pop(x * 2)
    assert out.shape == x.shape and not out.requires_grad
    assert len(buf.data) == min(n, 50)
    with pytest.raises(ValueError):
        cyclegan.ReplayBuffer(0)


def test_linear_decay_values():
    factors = [cyclegan.linear_decay(e, 10, 5) for e in range(11)]
    assert factors == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])
    with pytest.raises(ValueError):
        cyclegan.linear_decay(0, 10, 10)


def test_schedulers_constant_then_linear_to_zero():
    params = [nn.Parameter(torch.zeros(1))]
    opt = torch.optim.Adam(params, lr=2e-4)
    (sched,) = cyclegan.make_schedulers([opt], n_epochs=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 0.0])


def make_cyclegan(ngf=8, n_blocks=1):
    torch.manual_seed(0)
    g_a2b, g_b2a = cyclegan.Generator(3, 3, n_blocks, ngf), cyclegan.Generator(3, 3, n_blocks, ngf)
    d_a, d_b = cyclegan.Discriminator(3, ngf), cyclegan.Discriminator(3, ngf)
    opt_g = torch.optim.Adam(itertools.chain(g_a2b.parameters(), g_b2a.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_da = torch.optim.Adam(d_a.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_db = torch.optim.Adam(d_b.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return (g_a2b, g_b2a, d_a, d_b, opt_g, opt_da, opt_db, cyclegan.ReplayBuffer(50, 0), cyclegan.ReplayBuffer(50, 1))


def test_train_step_with_short_last_batch():
    parts = make_cyclegan()
    a, b = torch.rand(7, 3, 32, 32) * 2 - 1, torch.rand(7, 3, 32, 32) * 2 - 1
    sizes = []
    for batch_a, batch_b in cyclegan.unpaired_batches(a, b, 3, torch.Generator().manual_seed(0)):
        losses = cyclegan.train_step(*parts, batch_a, batch_b)
        sizes.append(len(batch_a))
        assert set(losses) == {"G", "G_identity", "G_GAN", "G_cycle", "D_A", "D_B"}
        assert all(np.isfinite(v) for v in losses.values())
    assert sizes == [3, 3, 1]


def test_train_step_cycle_loss_is_l1_times_ten():
    parts = make_cyclegan()
    g_a2b, g_b2a = parts[:2]
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = 10 * ((g_b2a(g_a2b(a)) - a).abs().mean() + (g_a2b(g_b2a(b)) - b).abs().mean())
    losses = cyclegan.train_step(*parts, a, b)
    assert losses["G_cycle"] == pytest.approx(expected.item(), rel=1e-5)


def test_unpaired_batches_cover_each_domain_once():
    a, b = torch.arange(10.0), torch.arange(100.0, 108.0)
    got = list(cyclegan.unpaired_batches(a, b, 3, torch.Generator().manual_seed(0)))
    assert [len(x) for x, _ in got] == [3, 3, 2]
    assert len(set(torch.cat([x for x, _ in got]).tolist())) == 8
    assert sorted(torch.cat([y for _, y in got]).tolist()) == b.tolist()


def test_sepia_matches_hand_computed_pixel():
    px = np.array([[[10, 20, 30]]], dtype=np.uint8)
    r = 0.393 * 10 + 0.769 * 20 + 0.189 * 30  # 24.98 -> 25
    b = 0.272 * 10 + 0.534 * 20 + 0.131 * 30  # 17.33 -> 17
    out = cyclegan.sepia(px)
    assert out.dtype == np.uint8 and out[0, 0, 0] == round(r) == 25 and out[0, 0, 2] == round(b) == 17
    assert cyclegan.sepia(np.ones((1, 1, 3))).max() == 1.0  # clipped


def test_build_photo_sepia_is_deterministic(tmp_path):
    data = cyclegan.build_photo_sepia(24, n_train=6, n_test=2, seed=3, cache_dir=tmp_path / "a")
    again = cyclegan.build_photo_sepia(24, n_train=6, n_test=2, seed=3, cache_dir=tmp_path / "b")
    assert {k: v.shape for k, v in data.items()} == {"A_train": (6, 24, 24, 3), "B_train": (6, 24, 24, 3),
                                                     "A_test": (2, 24, 24, 3), "B_test": (2, 24, 24, 3),
                                                     "A_test_as_B": (2, 24, 24, 3)}
    assert all(np.array_equal(data[k], again[k]) for k in data)
    np.testing.assert_array_equal(data["A_test_as_B"], cyclegan.sepia(data["A_test"]))
    cached = cyclegan.build_photo_sepia(24, n_train=6, n_test=2, seed=3, cache_dir=tmp_path / "a")
    assert all(np.array_equal(data[k], cached[k]) for k in data)
    x = cyclegan.to_tensor(data["A_train"])
    assert x.shape == (6, 3, 24, 24) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(cyclegan.to_image(x), data["A_train"] / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 4"):
        cyclegan.build_photo_sepia(30, cache_dir=tmp_path)
