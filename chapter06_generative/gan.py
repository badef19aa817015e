"""Simple GAN: the book's fully connected discriminator and generator, their training steps and sample grids.

Book: chapter 6, "GAN" / "Simple GAN". Images are flattened 28x28 = 784 vectors scaled to [-1, 1] (the generator ends
in ``Tanh``); noise is ``randn(n, 100)``; both networks train with ``BCELoss`` and Adam (lr 2e-4).
"""
from __future__ import annotations

import torch
from torch import nn

N_FEATURES = 784  # 28 x 28 pixels, flattened
NOISE_SIZE = 100  # length of the generator's input noise vector


class DiscriminatorNet(nn.Module):
    """Three hidden layers 784 -> 1024 -> 512 -> 256 (LeakyReLU 0.2 + Dropout 0.3 each) -> 1 + Sigmoid.

    Input ``(batch, 784)`` float32 in [-1, 1]; output ``(batch, 1)``: the probability that each image is real.
    """

    def __init__(self) -> None:
        super().__init__()
        n_features = N_FEATURES
        n_out = 1
        self.hidden0 = nn.Sequential(nn.Linear(n_features, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3))
        self.hidden1 = nn.Sequential(nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3))
        self.hidden2 = nn.Sequential(nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3))
        self.out = nn.Sequential(nn.Linear(256, n_out), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden0(x)
        x = self.hidden1(x)
        x = self.hidden2(x)
        return self.out(x)


class GeneratorNet(nn.Module):
    """Three hidden layers 100 -> 256 -> 512 -> 1024 (LeakyReLU 0.2 each) -> 784 + Tanh.

    Input ``(batch, 100)`` noise; output ``(batch, 784)`` float32 images in [-1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        n_features = NOISE_SIZE
        n_out = N_FEATURES
        self.hidden0 = nn.Sequential(nn.Linear(n_features, 256), nn.LeakyReLU(0.2))
        self.hidden1 = nn.Sequential(nn.Linear(256, 512), nn.LeakyReLU(0.2))
        self.hidden2 = nn.Sequential(nn.Linear(512, 1024), nn.LeakyReLU(0.2))
        self.out = nn.Sequential(nn.Linear(1024, n_out), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden0(x)
        x = self.hidden1(x)
        x = self.hidden2(x)
        return self.out(x)


def images_to_vectors(images: torch.Tensor) -> torch.Tensor:
    """``(batch, 1, 28, 28)`` -> ``(batch, 784)``."""
    return images.view(images.size(0), N_FEATURES)


def vectors_to_images(vectors: torch.Tensor) -> torch.Tensor:
    """``(batch, 784)`` -> ``(batch, 1, 28, 28)``."""
    return vectors.view(vectors.size(0), 1, 28, 28)


def noise(size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """``(size, 100)`` standard normal noise: the generator's input."""
    return torch.randn(size, NOISE_SIZE, device=device, generator=generator)


def ones_target(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(size, 1)`` of ones: the label "real"."""
    return torch.ones(size, 1, device=device)


def zeros_target(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(size, 1)`` of zeros: the label "fake"."""
    return torch.zeros(size, 1, device=device)


def train_discriminator(discriminator: nn.Module, loss: nn.Module, optimizer: torch.optim.Optimizer,
                        real_data: torch.Tensor, fake_data: torch.Tensor) -> tuple[float, float, float]:
    """One discriminator step: push D(real) towards 1 and D(fake) towards 0.

    ``real_data`` and ``fake_data``: ``(batch, 784)``; ``fake_data`` must be detached from the generator's graph.
    Returns ``(loss, mean D(real), mean D(fake))`` as Python floats.
    """
    n = real_data.size(0)
    optimizer.zero_grad()
    prediction_real = discriminator(real_data)
    error_real = loss(prediction_real, ones_target(n, real_data.device))
    error_real.backward()
    prediction_fake = discriminator(fake_data)
    error_fake = loss(prediction_fake, zeros_target(fake_data.size(0), fake_data.device))
    error_fake.backward()
    optimizer.step()
    return (error_real + error_fake).item(), prediction_real.mean().item(), prediction_fake.mean().item()


def train_generator(discriminator: nn.Module, loss: nn.Module, optimizer: torch.optim.Optimizer,
                    fake_data: torch.Tensor) -> float:
    """One generator step (the non-saturating loss): push D(G(z)) towards 1, i.e. fool the discriminator.

    ``fake_data``: ``(batch, 784)`` straight from the generator (not detached). ``optimizer`` holds the generator's
    parameters only; the discriminator's gradients are computed but not applied (they are zeroed at its next step).
    Returns the generator's loss as a Python float.
    """
    optimizer.zero_grad()
    prediction = discriminator(fake_data)
    error = loss(prediction, ones_target(fake_data.size(0), fake_data.device))
    error.backward()
    optimizer.step()
    return error.item()


def image_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Tile ``(batch, channels, height, width)`` images in [-1, 1] into one ``(height', width', channels)`` array in
    [0, 1] for ``plt.imshow`` (a one-pixel border between images)."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().cpu().float(), nrow=nrow, padding=1, normalize=True, value_range=(-1, 1),
                     pad_value=1.0)
    return grid.permute(1, 2, 0)
