"""Image datasets that later chapters share: Fashion-MNIST (and MNIST) found offline, through torchvision.

Book: chapter 3, "torchvision". Chapters 4 and 6 import ``load_fashion_mnist`` from here.

Where the data is looked for, in order (the first that has all four files wins):

1. ``data/FashionMNIST/raw/*-ubyte``: torchvision's own layout (what ``FashionMNIST(root="data", download=True)``
   writes).
2. ``/usr/share/datasets/fashion-mnist/*.gz``: Debian's ``dataset-fashion-mnist`` package (``apt install
   dataset-fashion-mnist``). torchvision accepts only the decompressed files, so they are unpacked into (1) once.
3. torchvision's download into (1), when ``download=True`` and the machine is online.
4. ``data/fashion-mnist-subset/``: 2,000 training and 1,000 test images of the real data committed in this repository
   (last resort, ``allow_subset=True``; results are lower than with the full 60,000/10,000).

MNIST (``kind="mnist"``) is looked for in (1) ``data/MNIST/raw`` and fetched by (3) only.
"""
from __future__ import annotations

import gzip
import os
import shutil
import socket
from pathlib import Path

from torchvision import datasets

import handson

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SUBSET_DIR = handson.data_path("fashion-mnist-subset")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CLASSES = {"fashion": datasets.FashionMNIST, "mnist": datasets.MNIST}
DEBIAN_HINT = "  - Debian/Ubuntu: sudo apt install dataset-fashion-mnist   (real Fashion-MNIST, MIT licence)\n"
HOW_TO_GET = (
    "Get the data in one of these ways:\n"
    "{debian}"
    "  - online once:   python -c \"from torchvision import datasets; "
    "datasets.{cls}(root='data', download=True)\"   (from the repository root)\n"
    "  - by hand: put the four files {files} (optionally .gz) in {raw}"
)


def _unpack(src_dir: Path, raw_dir: Path) -> bool:
    """Decompress ``<name>.gz`` (or copy ``<name>``) for the four files from ``src_dir`` into ``raw_dir``."""
    sources = []
    for name in FILES:
        plain, packed = src_dir / name, src_dir / f"{name}.gz"
        if not (plain.exists() or packed.exists()):
            return False
        sources.append((name, plain if plain.exists() else packed))
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, src in sources:
        target = raw_dir / name
        if not target.exists():
            opener = gzip.open if src.suffix == ".gz" else open
            part = target.with_name(f"{name}.{os.getpid()}.part")  # per process: parallel test workers may race
            with opener(src, "rb") as fin, open(part, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            part.replace(target)  # atomic: readers never see a half-written file
    return True


def _try_download(cls, root: Path) -> bool:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        cls(root=str(root), train=True, download=True)
        return True
    except Exception:  # offline, mirror down, ...: fall through to the next source
        return False
    finally:
        socket.setdefaulttimeout(old)


def find_fashion_mnist(kind: str = "fashion", root: Path | None = None, download: bool = False,
                       allow_subset: bool = True) -> tuple[Path, str]:
    """Make the data available in torchvision's layout and return ``(root, source)``.

    ``source`` is one of ``"data folder"``, ``"debian package"``, ``"download"``, ``"committed subset"``.

    Raises:
        ValueError: ``kind`` is not ``"fashion"`` or ``"mnist"``.
        FileNotFoundError: no source has the data; the message says how to get it.
    """
    if kind not in CLASSES:
        raise ValueError(f"kind must be 'fashion' or 'mnist', got {kind!r}")
    cls = CLASSES[kind]
    root = Path(root) if root is not None else handson.DATA_DIR
    raw = root / cls.__name__ / "raw"
    if _unpack(raw, raw):
        return root, "data folder"
    if kind == "fashion" and _unpack(DEBIAN_DIR, raw):
        return root, "debian package"
    if download and _try_download(cls, root):
        return root, "download"
    if kind == "fashion" and allow_subset:
        subset_root = handson.data_path("generated", "fashion-mnist-subset")
        if _unpack(SUBSET_DIR, subset_root / cls.__name__ / "raw"):
            return subset_root, "committed subset"
    raise FileNotFoundError(f"{cls.__name__} not found: no {', '.join(FILES)} in {raw}"
                            + (f" nor in {DEBIAN_DIR}" if kind == "fashion" else "") + ".\n"
                            + HOW_TO_GET.format(debian=DEBIAN_HINT if kind == "fashion" else "", cls=cls.__name__,
                                              files=", ".join(FILES), raw=raw))


def load_fashion_mnist(train: bool = True, transform=None, target_transform=None, kind: str = "fashion",
                       root: Path | None = None, download: bool = False, allow_subset: bool = True):
    """Fashion-MNIST (or MNIST with ``kind="mnist"``) as a torchvision dataset, found offline (see module docstring).

    Items are ``(image, label)``: a 28x28 PIL image in mode ``L`` (or whatever ``transform`` makes of it, e.g.
    ``ToTensor()`` gives a ``(1, 28, 28)`` float32 tensor in [0, 1]) and an int class 0..9. The returned dataset has an
    extra attribute ``source`` saying where the data came from.

    Raises:
        FileNotFoundError: the data is nowhere to be found; the message says how to get it.
    """
    data_root, source = find_fashion_mnist(kind, root, download, allow_subset)
    dataset = CLASSES[kind](root=str(data_root), train=train, transform=transform, target_transform=target_transform)
    dataset.source = source
    return dataset
