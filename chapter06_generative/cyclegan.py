"""CycleGAN: residual-block generator, PatchGAN discriminator, replay buffer, losses, LR schedule and a toy data set.

Book: chapter 6, "CycleGAN". Two generators translate between unpaired domains A and B (``G_A2B``, ``G_B2A``); two
discriminators judge each domain (``D_A``, ``D_B``). The generators minimise a least-squares adversarial loss plus an
L1 cycle loss (x10: A -> B -> A must give A back) and an L1 identity loss (x5: ``G_A2B`` leaves a B image alone).
Adam (lr 2e-4, betas (0.5, 0.999)), learning rate constant for the first half of the epochs and then linearly down to
0, discriminators trained on a history of 50 generated images (``ReplayBuffer``), weights drawn from N(0, 0.02).

Deliberate differences from the book's listing (each keeps the book's behaviour at the ``book`` profile):

- ``ngf``/``ndf`` (the first layer's width, 64 in the book) are parameters so that a laptop CPU can train a narrower
  copy of the same architecture; ``n_residual_blocks`` defaults to the book's 9.
- Loss targets are ``ones_like``/``zeros_like`` of the discriminator's output, not tensors of a fixed batch size, so a
  last batch smaller than the batch size works.
- ``norm="batch"`` swaps InstanceNorm for BatchNorm, only to show the difference in the notebook.

Images everywhere: ``(batch, channels, height, width)`` float32 in [-1, 1] (the generators end in ``Tanh``); height and
width divisible by 4 for the generator and at least 24 for the discriminator.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

import handson


def make_norm(kind: str, channels: int) -> nn.Module:
    """``InstanceNorm2d(channels)`` for ``kind="instance"`` (the book's), ``BatchNorm2d(channels)`` for ``"batch"``.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


class ResidualBlock(nn.Module):
    """``x + block(x)`` with block = pad, 3x3 conv, norm, ReLU, pad, 3x3 conv, norm; keeps ``(batch, c, h, w)``."""

    def __init__(self, in_features: int, norm: str = "instance") -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(in_features, in_features, 3), make_norm(norm, in_features),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(in_features, in_features, 3), make_norm(norm, in_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class Generator(nn.Module):
    """ResNet generator: c7s1-64, d128, d256, ``n_residual_blocks`` x R256, u128, u64, c7s1-3 + Tanh (widths x ngf/64).

    ``(batch, input_nc, h, w)`` -> ``(batch, output_nc, h, w)`` for h, w divisible by 4 (two stride-2 convs down, two
    transposed convs up).
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, n_residual_blocks: int = 9, ngf: int = 64,
                 norm: str = "instance") -> None:
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), make_norm(norm, ngf), nn.ReLU(inplace=True)]
        in_features, out_features = ngf, ngf * 2
        for _ in range(2):  # downsampling: 64 -> 128 -> 256 channels, each halving height and width
            model += [nn.Conv2d(in_features, out_features, 3, stride=2, padding=1), make_norm(norm, out_features),
                      nn.ReLU(inplace=True)]
            in_features, out_features = out_features, out_features * 2
        for _ in range(n_residual_blocks):
            model += [ResidualBlock(in_features, norm)]
        out_features = in_features // 2
        for _ in range(2):  # upsampling: 256 -> 128 -> 64 channels, each doubling height and width
            model += [nn.ConvTranspose2d(in_features, out_features, 3, stride=2, padding=1, output_padding=1),
                      make_norm(norm, out_features), nn.ReLU(inplace=True)]
            in_features, out_features = out_features, out_features // 2
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Discriminator(nn.Module):
    """70x70 PatchGAN: C64 (no norm), C128, C256 (stride 2), C512 (stride 1), then a 1-channel 4x4 conv.

    Every conv is 4x4 with LeakyReLU(0.2); widths x ndf/64. ``(batch, input_nc, h, w)`` -> ``(batch, 1)``: the mean
    of the ``(h/8 - 2) x (w/8 - 2)`` patch scores (least-squares GAN: real -> 1, fake -> 0; no sigmoid).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        model = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        model += [nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1), make_norm(norm, ndf * 2),
                  nn.LeakyReLU(0.2, inplace=True)]
        model += [nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1), make_norm(norm, ndf * 4),
                  nn.LeakyReLU(0.2, inplace=True)]
        model += [nn.Conv2d(ndf * 4, ndf * 8, 4, padding=1), make_norm(norm, ndf * 8), nn.LeakyReLU(0.2, inplace=True)]
        model += [nn.Conv2d(ndf * 8, 1, 4, padding=1)]  # one score per patch
        self.model = nn.Sequential(*model)

    def patch_scores(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, h/8 - 2, w/8 - 2)``: one score per overlapping input patch."""
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model(x)
        return x.mean(dim=(2, 3))  # average the patch scores: (batch, 1)


def weights_init_normal(m: nn.Module) -> None:
    """Apply with ``model.apply(weights_init_normal)``: conv weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02),
    biases 0 (InstanceNorm here has no weights)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.constant_(m.bias, 0.0)


class ReplayBuffer:
    """History of up to ``max_size`` generated images for the discriminator (Shrivastava et al. 2017).

    ``push_and_pop(images)`` returns as many images as it is given: while the buffer is filling, the new images
    themselves (and stores them); once full, each image is, with probability 1/2, swapped for a random stored one
    (which it replaces in the buffer), else returned as it is. Stored images are detached copies.
    """

    def __init__(self, max_size: int = 50, seed: int | None = None) -> None:
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        self.max_size = max_size
        self.data: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def push_and_pop(self, images: torch.Tensor) -> torch.Tensor:
        """``(batch, c, h, w)`` in -> ``(batch, c, h, w)`` out (detached), a mix of new and stored images."""
        to_return = []
        for element in images.detach():
            element = element.unsqueeze(0)
            if len(self.data) < self.max_size:
                self.data.append(element.clone())
                to_return.append(element)
            elif self.rng.uniform(0, 1) > 0.5:
                i = self.rng.randint(0, self.max_size - 1)
                to_return.append(self.data[i].clone())
                self.data[i] = element.clone()
            else:
                to_return.append(element)
        return torch.cat(to_return)


def linear_decay(epoch: int, n_epochs: int, decay_start_epoch: int) -> float:
    """LR factor for ``LambdaLR``: 1.0 up to ``decay_start_epoch``, then linearly down to 0.0 at ``n_epochs``.

    Raises:
        ValueError: ``decay_start_epoch`` is not in ``[0, n_epochs)``.
    """
    if not 0 <= decay_start_epoch < n_epochs:
        raise ValueError(f"decay must start in [0, {n_epochs}), got {decay_start_epoch}")
    return 1.0 - max(0, epoch - decay_start_epoch) / (n_epochs - decay_start_epoch)


def make_schedulers(optimizers: list[torch.optim.Optimizer], n_epochs: int) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One ``LambdaLR`` per optimizer: constant for the first half of ``n_epochs``, then linear decay to 0.

    Call ``scheduler.step()`` once at the end of every epoch.
    """
    decay_start = n_epochs // 2
    return [torch.optim.lr_scheduler.LambdaLR(opt, lambda e: linear_decay(e, n_epochs, decay_start))
            for opt in optimizers]


def train_step(G_A2B: nn.Module, G_B2A: nn.Module, D_A: nn.Module, D_B: nn.Module,
               optimizer_G: torch.optim.Optimizer, optimizer_D_A: torch.optim.Optimizer,
               optimizer_D_B: torch.optim.Optimizer, buffer_A: ReplayBuffer, buffer_B: ReplayBuffer,
               real_A: torch.Tensor, real_B: torch.Tensor, lambda_cycle: float = 10.0,
               lambda_identity: float = 5.0) -> dict[str, float]:
    """One CycleGAN iteration: both generators together, then ``D_A``, then ``D_B``.

    ``real_A``/``real_B``: ``(batch, c, h, w)`` in [-1, 1]; the two batches may differ in size (a short last batch).
    ``optimizer_G`` holds both generators' parameters. Returns the losses as floats (keys ``G``, ``G_identity``,
    ``G_GAN``, ``G_cycle``, ``D_A``, ``D_B``).
    """
    criterion_GAN = nn.MSELoss()  # least-squares GAN
    criterion_cycle = nn.L1Loss()
    criterion_identity = nn.L1Loss()

    # Generators A2B and B2A
    optimizer_G.zero_grad()
    loss_identity_B = criterion_identity(G_A2B(real_B), real_B) * lambda_identity  # G_A2B(B) should equal B
    loss_identity_A = criterion_identity(G_B2A(real_A), real_A) * lambda_identity  # G_B2A(A) should equal A
    fake_B = G_A2B(real_A)
    pred_fake = D_B(fake_B)
    loss_GAN_A2B = criterion_GAN(pred_fake, torch.ones_like(pred_fake))
    fake_A = G_B2A(real_B)
    pred_fake = D_A(fake_A)
    loss_GAN_B2A = criterion_GAN(pred_fake, torch.ones_like(pred_fake))
    loss_cycle_ABA = criterion_cycle(G_B2A(fake_B), real_A) * lambda_cycle  # A -> B -> A
    loss_cycle_BAB = criterion_cycle(G_A2B(fake_A), real_B) * lambda_cycle  # B -> A -> B
    loss_G = loss_identity_A + loss_identity_B + loss_GAN_A2B + loss_GAN_B2A + loss_cycle_ABA + loss_cycle_BAB
    loss_G.backward()
    optimizer_G.step()

    # Discriminator A: real A -> 1, (historical) fake A -> 0
    optimizer_D_A.zero_grad()
    pred_real = D_A(real_A)
    loss_D_real = criterion_GAN(pred_real, torch.ones_like(pred_real))
    pred_fake = D_A(buffer_A.push_and_pop(fake_A))
    loss_D_fake = criterion_GAN(pred_fake, torch.zeros_like(pred_fake))
    loss_D_A = (loss_D_real + loss_D_fake) * 0.5
    loss_D_A.backward()
    optimizer_D_A.step()

    # Discriminator B
    optimizer_D_B.zero_grad()
    pred_real = D_B(real_B)
    loss_D_real = criterion_GAN(pred_real, torch.ones_like(pred_real))
    pred_fake = D_B(buffer_B.push_and_pop(fake_B))
    loss_D_fake = criterion_GAN(pred_fake, torch.zeros_like(pred_fake))
    loss_D_B = (loss_D_real + loss_D_fake) * 0.5
    loss_D_B.backward()
    optimizer_D_B.step()

    return {"G": loss_G.item(), "G_identity": (loss_identity_A + loss_identity_B).item(),
            "G_GAN": (loss_GAN_A2B + loss_GAN_B2A).item(), "G_cycle": (loss_cycle_ABA + loss_cycle_BAB).item(),
            "D_A": loss_D_A.item(), "D_B": loss_D_B.item()}


def unpaired_batches(images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int,
                     generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ``(batch_a, batch_b)``: each domain shuffled on its own (no pairs), ``min(len)`` images each; the
    last batch is smaller when ``batch_size`` does not divide that number."""
    n = min(len(images_a), len(images_b))
    order_a = torch.randperm(len(images_a), generator=generator)[:n]
    order_b = torch.randperm(len(images_b), generator=generator)[:n]
    for start in range(0, n, batch_size):
        yield images_a[order_a[start:start + batch_size]], images_b[order_b[start:start + batch_size]]


# --- data: two unpaired domains built offline from real photographs ---------------------------------------------------

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle")  # scikit-image's bundled colour photos
SEPIA = np.array([[0.393, 0.769, 0.189],  # the classic sepia-tone matrix: out_rgb = SEPIA @ in_rgb, clipped to 1
                  [0.349, 0.686, 0.168],
                  [0.272, 0.534, 0.131]])


def sepia(images: np.ndarray) -> np.ndarray:
    """Sepia-tone ``(..., 3)`` RGB images (uint8 or float in [0, 1]); returns the same dtype."""
    x = images.astype(np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
    y = np.clip(x @ SEPIA.T, 0.0, 1.0)
    return np.round(y * 255).astype(np.uint8) if images.dtype == np.uint8 else y.astype(images.dtype)


def _load_photos(short_side: int) -> list[np.ndarray]:
    """The ``PHOTOS`` as ``(h, w, 3)`` uint8, resized so that the shorter side is ``min(original, short_side)``."""
    import skimage.data
    from skimage.transform import rescale

    photos = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle gives (left, right, disparity)
        scale = min(1.0, short_side / min(img.shape[:2]))
        if scale < 1.0:
            img = rescale(img, scale, channel_axis=-1, anti_aliasing=True)
            img = np.round(img * 255).astype(np.uint8)
        photos.append(img)
    return photos


def _random_crops(photos: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 crops at random photos, positions and horizontal flips."""
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for k in range(n):
        img = photos[rng.integers(len(photos))]
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        crop = img[top:top + size, left:left + size]
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def build_photo_sepia(resolution: int = 32, n_train: int = 400, n_test: int = 16, seed: int = 0,
                      cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Two unpaired domains from real photos: A = colour crops, B = sepia-toned crops taken at OTHER positions.

    Crops of ``resolution`` x ``resolution`` pixels come from scikit-image's bundled photos (``PHOTOS``), first
    shrunk so that their shorter side is at most ``4 * resolution`` (so a small crop still shows an object part).
    Returns uint8 arrays ``(n, resolution, resolution, 3)``: ``A_train``, ``B_train`` (unpaired: independent crops),
    ``A_test`` and ``B_test`` (fresh crops), and ``A_test_as_B`` = ``sepia(A_test)``, the ground truth that unpaired
    training never sees. Deterministic given the arguments; cached as an ``.npz`` under
    ``data/generated/cyclegan_photo_sepia/`` (or ``cache_dir``).

    Raises:
        ValueError: ``resolution`` is not a multiple of 4 or is below 24.
    """
    if resolution % 4 or resolution < 24:
        raise ValueError(f"resolution must be a multiple of 4 and at least 24, got {resolution}")
    folder = Path(cache_dir) if cache_dir is not None else handson.data_path("generated", "cyclegan_photo_sepia")
    path = folder / f"res{resolution}_train{n_train}_test{n_test}_seed{seed}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    photos = _load_photos(4 * resolution)
    rng = np.random.default_rng(seed)
    data = {"A_train": _random_crops(photos, n_train, resolution, rng),
            "B_train": sepia(_random_crops(photos, n_train, resolution, rng)),
            "A_test": _random_crops(photos, n_test, resolution, rng)}
    data["B_test"] = sepia(_random_crops(photos, n_test, resolution, rng))
    data["A_test_as_B"] = sepia(data["A_test"])
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, **data)
    tmp.rename(path)
    return data


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> float32 ``(n, 3, h, w)`` in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """float ``(n, 3, h, w)`` in [-1, 1] -> float ``(n, h, w, 3)`` in [0, 1] for ``plt.imshow``."""
    return tensor.detach().cpu().add(1.0).div(2.0).clamp(0, 1).permute(0, 2, 3, 1).numpy()
