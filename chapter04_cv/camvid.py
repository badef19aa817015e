"""CamVid: road-scene frames with colour-coded label images, read-only, as a PyTorch dataset.

Book: chapter 4, "Semantic segmentation" (the CamVid data loader of the LinkNet example).

The layout read here is CamVid's own: an RGB frame ``<frame>.png`` and its label image ``<frame>_L.png`` whose pixel
colours are those of the 32-class table below (``label_colors.txt`` of the release). Two folder layouts are common:

- the per-split copy found on Kaggle and elsewhere: ``<root>/train/0001TP_006690.png`` with labels in
  ``<root>/train_labels/0001TP_006690_L.png`` (also ``val``/``val_labels``, ``test``/``test_labels``):
  ``CamVid(root, split="train")``;
- the original release (one folder of 701 frames, one of labels):
  ``CamVid(root, split="701_StillsRaw_full", label_dir="LabeledApproved_full")``.

Two tasks: ``mode="pedestrian"`` (the book's binary task: class 1 where the label is Pedestrian, RGB 64,64,0, class 0
elsewhere) and ``mode="full"`` (the 32 classes, index = position in :data:`CAMVID_CLASSES`).

Differences from the book's loader: files are only read (the upstream code overwrote the label files in place with
the binary masks); the image is scaled to [0, 1] exactly once (the upstream divided by 255 twice); a frame without a
label file, or a label with a colour outside the table, is a clear error naming the frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

# CamVid's 32 classes and their label colours (label_colors.txt of the original release), in that file's order.
CAMVID_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)), ("Bridge", (0, 128, 64)),
    ("Building", (128, 0, 0)), ("Car", (64, 0, 128)), ("CartLuggagePram", (64, 0, 192)), ("Child", (192, 128, 64)),
    ("Column_Pole", (192, 192, 128)), ("Fence", (64, 64, 128)), ("LaneMkgsDriv", (128, 0, 192)),
    ("LaneMkgsNonDriv", (192, 0, 64)), ("Misc_Text", (128, 128, 64)), ("MotorcycleScooter", (192, 0, 192)),
    ("OtherMoving", (128, 64, 64)), ("ParkingBlock", (64, 192, 128)), ("Pedestrian", (64, 64, 0)),
    ("Road", (128, 64, 128)), ("RoadShoulder", (128, 128, 192)), ("Sidewalk", (0, 0, 192)),
    ("SignSymbol", (192, 128, 128)), ("Sky", (128, 128, 128)), ("SUVPickupTruck", (64, 128, 192)),
    ("TrafficCone", (0, 0, 64)), ("TrafficLight", (0, 64, 64)), ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)),
    ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)), ("VegetationMisc", (192, 192, 0)), ("Void", (0, 0, 0)),
    ("Wall", (64, 192, 0)),
)
CLASS_NAMES: tuple[str, ...] = tuple(name for name, _ in CAMVID_CLASSES)
COLOURS = np.array([rgb for _, rgb in CAMVID_CLASSES], dtype=np.uint8)  # (32, 3)
PEDESTRIAN = (64, 64, 0)
PEDESTRIAN_INDEX = CLASS_NAMES.index("Pedestrian")
MODES = {"pedestrian": ("background", "pedestrian"), "full": CLASS_NAMES}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIX = "_L.png"
HOW_TO_GET = (
    "Get CamVid (research use; see the dataset's page, mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/) and put "
    "it in data/CamVid/: either train/, train_labels/, val/, val_labels/, test/, test_labels/ with <frame>_L.png "
    "labels, or the original 701_StillsRaw_full/ and LabeledApproved_full/. Without it, generate the offline "
    "look-alike: python -m chapter04_cv.synthetic_camvid"
)

_CODES = (COLOURS[:, 0].astype(np.int64) << 16) | (COLOURS[:, 1].astype(np.int64) << 8) | COLOURS[:, 2]
_ORDER = np.argsort(_CODES)
_SORTED_CODES = _CODES[_ORDER]


def colour_to_index(label: np.ndarray, name: str = "label") -> np.ndarray:
    """Map a colour label ``(height, width, 3)`` uint8 to class indices ``(height, width)`` int64 (0..31).

    Raises:
        ValueError: a pixel's colour is not in the table; the message names ``name``, the colour and a position.
    """
    if label.ndim != 3 or label.shape[2] != 3:
        raise ValueError(f"{name}: expected an RGB label (height, width, 3), got shape {label.shape}")
    codes = (label[..., 0].astype(np.int64) << 16) | (label[..., 1].astype(np.int64) << 8) | label[..., 2]
    pos = np.clip(np.searchsorted(_SORTED_CODES, codes), 0, len(_SORTED_CODES) - 1)
    known = _SORTED_CODES[pos] == codes
    if not known.all():
        rows, cols = np.nonzero(~known)
        bad = sorted({tuple(int(v) for v in label[r, c]) for r, c in zip(rows[:1000], cols[:1000])})
        raise ValueError(f"{name}: {len(rows)} pixels have colours that are not in the CamVid table, e.g. "
                         f"RGB {bad[0]} at row {rows[0]}, column {cols[0]} (unknown colours: {bad[:5]})")
    return _ORDER[pos].astype(np.int64)


def index_to_colour(index: np.ndarray | torch.Tensor) -> np.ndarray:
    """Class indices ``(height, width)`` (0..31) -> the CamVid colours ``(height, width, 3)`` uint8."""
    return COLOURS[np.asarray(index)]


def find_frames(image_dir: Path, label_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs ``(frame, label)`` for every frame in ``image_dir``, sorted by name.

    Raises:
        FileNotFoundError: a folder is missing (the message says how to get CamVid), no frame is found, or a frame has
            no ``<frame>_L.png`` in ``label_dir`` (the message names the frame and the expected path).
    """
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"CamVid folder not found: {folder}\n{HOW_TO_GET}")
    frames = sorted(p for p in image_dir.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.endswith(LABEL_SUFFIX))
    if not frames:
        raise FileNotFoundError(f"no frames ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}\n{HOW_TO_GET}")
    pairs = []
    for frame in frames:
        label = label_dir / f"{frame.stem}{LABEL_SUFFIX}"
        if not label.is_file():
            raise FileNotFoundError(f"frame {frame.name} has no label file: expected {label}")
        pairs.append((frame, label))
    return pairs


class CamVid(Dataset):
    """CamVid frames and labels, read-only. Item ``i``: ``(image, mask)``.

    ``image``: ``(3, height, width)`` float32, scaled to [0, 1] once and then, if ``mean``/``std`` are given,
    normalised per channel. ``mask``: ``(height, width)`` int64 class indices (``mode="pedestrian"``: 0/1;
    ``mode="full"``: 0..31). ``size=(height, width)`` resizes on reading (bilinear for the image, nearest for the label,
    so that labels keep exact table colours); ``cache=True`` keeps decoded items in memory.

    Raises:
        ValueError: unknown ``mode``; (when an item is read) a label colour outside the table, naming the frame.
        FileNotFoundError: see :func:`find_frames`.
    """

    def __init__(self, root: str | Path, split: str = "train", mode: str = "pedestrian",
                 size: tuple[int, int] | None = None, mean: tuple[float, float, float] | None = None,
                 std: tuple[float, float, float] | None = None, label_dir: str | None = None, cache: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        root = Path(root)
        self.mode, self.size, self.classes = mode, size, MODES[mode]
        self.pairs = find_frames(root / split, root / (label_dir or f"{split}_labels"))
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def frame_name(self, index: int) -> str:
        """The frame's file name, e.g. ``0001TP_006690.png``."""
        return self.pairs[index][0].name

    def read_label(self, index: int) -> np.ndarray:
        """The label of frame ``index`` as class indices ``(height, width)`` int64 (0..31), resized if ``size``."""
        frame, label_path = self.pairs[index]
        with Image.open(label_path) as img:
            label = img.convert("RGB")
        if self.size is not None:
            label = label.resize(self.size[::-1], Image.Resampling.NEAREST)
        return colour_to_index(np.asarray(label), f"label {label_path.name} of frame {frame.name}")

    def read_image(self, index: int) -> torch.Tensor:
        """Frame ``index`` as ``(3, height, width)`` float32 in [0, 1] (not normalised), resized if ``size``."""
        with Image.open(self.pairs[index][0]) as img:
            image = img.convert("RGB")
        if self.size is not None:
            image = image.resize(self.size[::-1], Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255  # the one and only scaling

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image, classes = self.read_image(index), self.read_label(index)
        if image.shape[1:] != classes.shape:
            raise ValueError(f"frame {self.frame_name(index)} is {tuple(image.shape[1:])} but its label is "
                             f"{classes.shape}")
        if self.mean is not None:
            image = image - self.mean
        if self.std is not None:
            image = image / self.std
        mask = classes == PEDESTRIAN_INDEX if self.mode == "pedestrian" else classes
        item = image, torch.from_numpy(np.asarray(mask, dtype=np.int64))
        if self._cache is not None:
            self._cache[index] = item
        return item
