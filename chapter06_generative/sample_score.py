"""A measured sample-quality score for 28x28 grey images: Fréchet distance on features of a small classifier.

Book: chapter 6, "GAN" (the book judges samples by eye; this module puts a number on them). The Fréchet Inception
Distance (FID, Heusel et al. 2017) fits a Gaussian to the features of real and of generated images and measures

    FID = |mu_r - mu_g|^2 + trace(S_r + S_g - 2 (S_r S_g)^(1/2))

Inception-v3 features make no sense for 28x28 Fashion-MNIST and cannot be downloaded offline, so the features here are
the 64-dimensional penultimate layer of ``FashionClassifier``, a small CNN trained in seconds on the Fashion-MNIST
training split (its weights are cached under ``artifacts/``). Numbers are therefore comparable only with each other,
never with published FIDs. Lower is better; two samples of real images give the floor (not 0: finite samples), noise
gives the ceiling. ``classifier_score`` is the Inception Score computed with the same classifier (higher is better).

Images everywhere: ``(batch, 1, 28, 28)`` float32 in [-1, 1] (the GAN's ``Tanh`` range).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_SIZE = 64  # width of the penultimate layer used as the feature space


class FashionClassifier(nn.Module):
    """Two stride-2 convs and two linear layers: ``(batch, 1, 28, 28)`` -> 10 logits; ``features`` -> ``(batch, 64)``.

    Small on purpose: one epoch on the 60,000 training images takes seconds on a CPU and reaches about 85% accuracy,
    enough for features that separate real clothes from blobs and noise.
    """

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),   # (batch, 16, 14, 14)
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # (batch, 32, 7, 7)
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(32 * 7 * 7, FEATURE_SIZE), nn.ReLU())
        self.head = nn.Linear(FEATURE_SIZE, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, 28, 28)`` in [-1, 1] -> ``(batch, 64)`` non-negative features."""
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, device: torch.device | str = "cpu") -> FashionClassifier:
    """Train ``FashionClassifier`` with Adam and cross-entropy; returns it in eval mode on ``device``.

    ``images``: ``(n, 1, 28, 28)`` float32 in [-1, 1]; ``labels``: ``(n,)`` int64 in 0..9.
    """
    torch.manual_seed(seed)
    model = FashionClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=shuffle)
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            x, y = images[idx].to(device), labels[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def load_or_train_classifier(path: str | Path, images: torch.Tensor, labels: torch.Tensor,
                             device: torch.device | str = "cpu", **train_kwargs) -> tuple[FashionClassifier, bool]:
    """Load the classifier's weights from ``path`` if the file exists, else train it and save them there.

    Returns ``(model in eval mode on device, loaded)`` where ``loaded`` says whether the cache was used. Put the
    training settings in the file name so that a different setting never loads stale weights.
    """
    path = Path(path)
    model = FashionClassifier().to(device)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        return model.eval(), True
    model = train_classifier(images, labels, device=device, **train_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model, False


@torch.no_grad()
def extract(model: FashionClassifier, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, 64)`` and class probabilities ``(n, 10)`` (float64, CPU) of ``(n, 1, 28, 28)`` images."""
    device = next(model.parameters()).device
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        f = model.features(x)
        feats.append(f.double().cpu())
        probs.append(F.softmax(model.head(f), dim=1).double().cpu())
    return torch.cat(feats), torch.cat(probs)


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``(n, d)`` features (float64)."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigendecomposition; negative rounding clipped)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    Uses trace((S1 S2)^(1/2)) = trace((S1^(1/2) S2 S1^(1/2))^(1/2)), whose inner matrix is symmetric PSD, so only
    symmetric eigendecompositions are needed (no complex ``sqrtm``).
    """
    root1 = _sqrtm_psd(sigma1.double())
    inner = root1 @ sigma2.double() @ root1
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    diff = (mu1.double() - mu2.double()).pow(2).sum()
    return float(diff + torch.trace(sigma1.double()) + torch.trace(sigma2.double()) - 2 * trace_sqrt)


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between two ``(n, d)`` feature samples (each needs n > d for a full-rank covariance)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def classifier_score(probs: torch.Tensor, eps: float = 1e-12) -> float:
    """Inception Score with our classifier: exp(mean_x KL(p(y|x) || p(y))) for ``(n, classes)`` probabilities.

    1 (every image gets the same class distribution) up to the number of classes (confident and evenly spread).
    """
    probs = probs.double()
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * ((probs + eps).log() - (marginal + eps).log())).sum(1)
    return float(kl.mean().exp())
