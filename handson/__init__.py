"""Shared helpers for every chapter: run profile, device, seeding, data and artifact paths.

One small module so that the notebooks stay about the book. Copy it along with a chapter if you reuse that
chapter elsewhere; it needs only the standard library, NumPy and PyTorch.

Profiles (environment variable ``HANDSON_PROFILE``):

- ``smoke``: the test suite; every notebook runs in seconds and only checks that the code works.
- ``default``: a reader on a 2-core laptop CPU; each notebook takes at most about 3 minutes, with a meaningful result.
- ``book``: the book's hyper-parameters (a GPU is advisable).

Device (environment variable ``HANDSON_DEVICE``): ``cpu``, ``cuda``, ``cuda:1``...; unset picks the current accelerator
(CUDA, MPS...) when there is one, else the CPU.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "default", "book")
PROFILE_ENV = "HANDSON_PROFILE"
DEVICE_ENV = "HANDSON_DEVICE"

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HANDSON_DATA", REPO_ROOT / "data"))
ARTIFACTS_DIR = Path(os.environ.get("HANDSON_ARTIFACTS", REPO_ROOT / "artifacts"))

T = TypeVar("T")


def get_profile(profile: str | None = None) -> str:
    """Return the run profile: ``profile`` if given, else ``$HANDSON_PROFILE``, else ``"default"``.

    Raises:
        ValueError: the name is not one of ``smoke``, ``default``, ``book``.
    """
    name = (profile or os.environ.get(PROFILE_ENV) or "default").strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (set {PROFILE_ENV})")
    return name


def by_profile(profile: str, *, smoke: T, default: T, book: T) -> T:
    """Pick the value for ``profile``: ``by_profile(PROFILE, smoke=2, default=300, book=500)``."""
    return {"smoke": smoke, "default": default, "book": book}[get_profile(profile)]


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    ``device`` if given, else ``$HANDSON_DEVICE``, else the current accelerator (``torch.accelerator``: CUDA, MPS,
    XPU...) when one is available, else the CPU.

    Raises:
        RuntimeError: a CUDA device was asked for but CUDA is not available.
    """
    choice = device or os.environ.get(DEVICE_ENV)
    if choice:
        dev = torch.device(choice)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {choice!r} requested but CUDA is not available; unset {DEVICE_ENV} or use 'cpu'")
        return dev
    if hasattr(torch, "accelerator") and torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device).

    With ``deterministic=True`` also ask PyTorch for deterministic kernels (slower on GPU; raises at run time for
    operations that have no deterministic implementation).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def data_path(*parts: str) -> Path:
    """Path under the repository's ``data/`` folder (or ``$HANDSON_DATA``); nothing is created."""
    return DATA_DIR.joinpath(*parts)


def artifacts_dir(*parts: str) -> Path:
    """Folder under the ignored ``artifacts/`` folder (or ``$HANDSON_ARTIFACTS``), created if missing.

    Everything a notebook writes (checkpoints, traces, figures, exported models) goes here, never in the working
    directory.
    """
    path = ARTIFACTS_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str, chapter: str) -> Path:
    """Save a Matplotlib figure as ``artifacts/<chapter>/figures/<name>.png`` and return the path."""
    path = artifacts_dir(chapter, "figures") / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def headline(text: str) -> None:
    """Print the notebook's headline result; the notebook runner shows it in its summary table."""
    print(f"Headline result: {text}")


def describe_environment() -> str:
    """One line with the versions and the device, for the setup cell of each notebook."""
    return f"torch {torch.__version__} | numpy {np.__version__} | device {get_device()} | profile {get_profile()}"
