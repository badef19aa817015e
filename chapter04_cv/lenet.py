"""The book's LeNet-style classifier, its data (CIFAR-10, or Fashion-MNIST shaped like it) and its train/test loops.

Book: chapter 4, "Convolutional neural networks" -> "LeNet" (``SimpleCNNModel`` and the training-loop template).

The model expects ``(batch, 3, 32, 32)`` float images (CIFAR-10). Fashion-MNIST, whose images are ``(1, 28, 28)``,
is adapted to it: padded by 2 pixels of zeros to 32x32 and repeated over 3 channels (the grey image in R, G and B),
then normalised like the book's CIFAR-10 (``Normalize((0.5,)*3, (0.5,)*3)``).

Data are turned into tensors once (:func:`image_tensors`), which is what the book's per-item torchvision transform
computes (the notebook checks it), but a whole epoch then costs no per-image Python work.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets, transforms
from tqdm import tqdm

import handson
from chapter03_workflow.datasets import load_fashion_mnist

CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")  # book's names
FASHION_CLASSES = tuple(datasets.FashionMNIST.classes)  # "T-shirt/top", "Trouser", ..., "Ankle boot"
CIFAR10_DIR = handson.data_path("cifar-10-batches-py")
NORMALIZE = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # book: [0, 1] -> [-1, 1]


class SimpleCNNModel(nn.Module):
    """LeNet-style CNN: ``(batch, 3, 32, 32)`` images -> ``(batch, 10)`` logits.

    conv(3->6, 5x5) -> ReLU -> maxpool 2 -> conv(6->16, 5x5) -> ReLU -> maxpool 2 -> flatten 16*5*5 = 400
    -> linear 120 -> ReLU -> linear 84 -> ReLU -> linear 10.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))  # (batch, 6, 14, 14)
        x = self.pool(F.relu(self.conv2(x)))  # (batch, 16, 5, 5)
        x = x.view(-1, 16 * 5 * 5)  # (batch, 400)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # logits: CrossEntropyLoss applies the softmax


def book_transform(dataset: str) -> transforms.Compose:
    """The per-item torchvision transform: PIL image -> ``(3, 32, 32)`` float32 in [-1, 1]."""
    if dataset == "cifar10":
        return transforms.Compose([transforms.ToTensor(), NORMALIZE])  # the book's
    return transforms.Compose([transforms.Pad(2), transforms.Grayscale(num_output_channels=3),
                               transforms.ToTensor(), NORMALIZE])


def cifar10_available() -> bool:
    """Whether CIFAR-10 (torchvision's ``cifar-10-batches-py`` folder) is in ``data/``."""
    return (CIFAR10_DIR / "batches.meta").is_file()


def load_dataset(dataset: str, train: bool, transform=None):
    """The raw torchvision dataset: ``"cifar10"`` (from ``data/``) or ``"fashion-mnist"`` (found offline).

    Raises:
        FileNotFoundError: CIFAR-10 is asked for but not in ``data/cifar-10-batches-py`` (the message says how to get
            it), or Fashion-MNIST is nowhere to be found.
        ValueError: unknown ``dataset``.
    """
    if dataset == "cifar10":
        if not cifar10_available():
            raise FileNotFoundError(
                f"CIFAR-10 not found in {CIFAR10_DIR}. Get it once, online, from the repository root with:\n"
                "  python -c \"from torchvision import datasets; datasets.CIFAR10(root='data', download=True)\"")
        return datasets.CIFAR10(root=str(handson.DATA_DIR), train=train, transform=transform)
    if dataset == "fashion-mnist":
        return load_fashion_mnist(train=train, transform=transform)
    raise ValueError(f"dataset must be 'cifar10' or 'fashion-mnist', got {dataset!r}")


def image_tensors(dataset: str, train: bool, limit: int | None = None) -> TensorDataset:
    """The whole split as ``TensorDataset(images (n, 3, 32, 32) float32 in [-1, 1], labels (n,) int64)``.

    The same values as :func:`book_transform` applied item by item, computed in one go. ``limit`` keeps the first
    ``limit`` items.
    """
    raw = load_dataset(dataset, train)
    data = torch.as_tensor(np.asarray(raw.data[:limit]))
    labels = torch.as_tensor(np.asarray(raw.targets[:limit]), dtype=torch.int64)
    if dataset == "cifar10":
        images = data.permute(0, 3, 1, 2).float() / 255  # (n, 32, 32, 3) uint8 -> (n, 3, 32, 32)
    else:
        images = F.pad(data.float() / 255, (2, 2, 2, 2)).unsqueeze(1).expand(-1, 3, -1, -1)  # (n, 3, 32, 32)
    tensors = TensorDataset(NORMALIZE(images), labels)  # the book's transform, on the whole batch at once
    tensors.source = getattr(raw, "source", "data folder")
    return tensors


def train_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                device: torch.device, desc: str = "train") -> float:
    """One pass over ``loader`` with the book's template; returns the mean loss per batch."""
    model.train()
    running_loss = 0.0
    for inputs, labels in tqdm(loader, desc=desc):
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    return running_loss / len(loader)


def predict(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, true classes)``, both ``(n,)`` int64 on the CPU, computed in ``eval()`` + ``no_grad()``."""
    model.eval()
    preds, targets = [], []
    with torch.no_grad():
        for inputs, labels in loader:
            preds.append(model(inputs.to(device)).argmax(dim=1).cpu())
            targets.append(labels)
    return torch.cat(preds), torch.cat(targets)
