"""An offline stand-in for CamVid: road-like scenes built from real pictures, written in CamVid's own layout.

Book: chapter 4, "Semantic segmentation" (the book trains LinkNet on CamVid, which is not redistributable here).

Every scene is made of real image material, each pixel painted from exactly one source, so the label is exact:

- Sky: crops of the sky in scikit-image's ``rocket`` photograph (NASA, public domain);
- Building and Sidewalk: scikit-image's ``brick`` texture, Tree: its ``grass`` texture, Road: its ``gravel`` texture
  (all public domain), each tinted;
- Pedestrian (RGB 64,64,0, the book's class): real Fashion-MNIST clothing items (T-shirt, trouser, pullover, dress,
  coat, shirt), stretched upright, coloured, "standing" on the road;
- Car: real Fashion-MNIST footwear and bags, stretched wide: objects of a similar size and colour that are *not*
  pedestrians, so the model has to learn shapes.

The files go to ``data/generated/camvid_synth/`` (git-ignored) as ``<split>/<frame>.png`` and
``<split>_labels/<frame>_L.png`` with CamVid's colours, plus ``label_colors.txt`` and ``manifest.json``; the CamVid
loader (:class:`chapter04_cv.camvid.CamVid`) reads them exactly as it reads the real data. Generation is deterministic
for a given seed, configuration and Fashion-MNIST source (frame ``i`` of a split does not depend on how many frames are
made). Training frames use Fashion-MNIST's training items, validation and test frames its test items.

Run ``python -m chapter04_cv.synthetic_camvid`` to (re)generate it by hand.
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

import handson
from chapter03_workflow.datasets import find_fashion_mnist, load_fashion_mnist
from chapter04_cv.camvid import CAMVID_CLASSES, CLASS_NAMES, COLOURS

DEFAULT_ROOT = handson.data_path("generated", "camvid_synth")
PEDESTRIAN_ITEMS = (0, 1, 2, 3, 4, 6)  # Fashion-MNIST: T-shirt, Trouser, Pullover, Dress, Coat, Shirt
CAR_ITEMS = (5, 7, 8, 9)  # Sandal, Sneaker, Bag, Ankle boot
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
FORMAT_VERSION = 1


@dataclass
class SynthConfig:
    """What to generate. Changing any field (or the Fashion-MNIST source) regenerates the folder."""

    seed: int = 0  # everything random derives from it
    height: int = 96  # frame height in pixels (CamVid: 720)
    width: int = 128  # frame width in pixels (CamVid: 960)
    counts: dict[str, int] = field(default_factory=lambda: {"train": 240, "val": 40, "test": 60})  # frames per split
    max_pedestrians: int = 3  # 0..max pedestrians per frame (at least one in 85% of the frames)
    max_cars: int = 2  # 0..max cars per frame


def _textures() -> dict[str, np.ndarray]:
    """Grey textures (float32 in [0, 1]) and the sky (RGB float32 in [0, 1]) from scikit-image's sample images."""
    grey = {name: getattr(skdata, name)().astype(np.float32) / 255 for name in ("brick", "grass", "gravel")}
    grey["sky"] = skdata.rocket()[0:110, 130:290].astype(np.float32) / 255  # sky between the launch towers
    return grey


def _crop(rng: np.random.Generator, texture: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random ``h`` x ``w`` window of ``texture`` (scaled up first if it is too small)."""
    th, tw = texture.shape[:2]
    if th < h or tw < w:
        scale = max(h / th, w / tw)
        img = Image.fromarray((texture * 255).astype(np.uint8))
        img = img.resize((int(np.ceil(tw * scale)), int(np.ceil(th * scale))), Image.Resampling.BILINEAR)
        texture, (th, tw) = np.asarray(img).astype(np.float32) / 255, (img.height, img.width)
    y, x = rng.integers(0, th - h + 1), rng.integers(0, tw - w + 1)
    return texture[y:y + h, x:x + w]


def _tinted(grey: np.ndarray, tint: np.ndarray) -> np.ndarray:
    return (0.35 + 0.65 * grey)[..., None] * tint  # (h, w, 3) in [0, 1]


def _paste(rng, image, classes, item: np.ndarray, cls: int, h: int, w: int, bottom: int, left: int) -> None:
    """Paste a 28x28 Fashion-MNIST item resized to ``h`` x ``w`` with its bottom row at ``bottom``; exact mask."""
    big = np.asarray(Image.fromarray(item).resize((w, h), Image.Resampling.BILINEAR)).astype(np.float32) / 255
    H, W = classes.shape
    top = bottom - h
    y0, y1, x0, x1 = max(top, 0), min(bottom, H), max(left, 0), min(left + w, W)
    if y0 >= y1 or x0 >= x1:
        return
    patch = big[y0 - top:y1 - top, x0 - left:x1 - left]
    mask = patch > 0.15  # the item's silhouette: these pixels, and only these, are painted and labelled
    colour = rng.uniform(0.15, 1.0, size=3)
    pixels = (0.3 + 0.7 * patch)[..., None] * colour
    image[y0:y1, x0:x1][mask] = pixels[mask]
    classes[y0:y1, x0:x1][mask] = cls


def make_scene(rng: np.random.Generator, cfg: SynthConfig, textures: dict[str, np.ndarray],
               pedestrians: np.ndarray, cars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame: ``(image (H, W, 3) uint8, classes (H, W) int64 CamVid indices)``.

    ``pedestrians``/``cars``: stacks of 28x28 uint8 Fashion-MNIST items to draw the objects from.
    """
    H, W = cfg.height, cfg.width
    names = ("Sky", "Building", "Tree", "Road", "Sidewalk", "Pedestrian", "Car")
    idx = {name: CLASS_NAMES.index(name) for name in names}
    image = np.zeros((H, W, 3), np.float32)
    classes = np.zeros((H, W), np.int64)
    horizon = int(rng.uniform(0.38, 0.55) * H)
    image[:horizon] = _crop(rng, textures["sky"], horizon, W)
    classes[:horizon] = idx["Sky"]
    x = 0
    while x < W:  # a skyline of buildings and trees standing on the horizon
        w = int(rng.uniform(0.12, 0.35) * W)
        h = int(rng.uniform(0.35, 1.0) * horizon)
        kind = "Building" if rng.random() < 0.6 else "Tree"
        tint = rng.uniform([0.5, 0.2, 0.15], [0.9, 0.5, 0.4]) if kind == "Building" else \
            rng.uniform([0.1, 0.35, 0.05], [0.35, 0.7, 0.25])
        texture = _crop(rng, textures["brick" if kind == "Building" else "grass"], h, min(w, W - x))
        image[horizon - h:horizon, x:x + w] = _tinted(texture, tint)
        classes[horizon - h:horizon, x:x + w] = idx[kind]
        x += w
    walk = horizon + max(2, int(rng.uniform(0.04, 0.1) * H))  # a sidewalk strip, then the road
    image[horizon:walk] = _tinted(_crop(rng, textures["brick"], walk - horizon, W), rng.uniform(0.45, 0.75, 3))
    classes[horizon:walk] = idx["Sidewalk"]
    road_tint = rng.uniform(0.3, 0.6) * np.array([1.0, 0.9, 1.05]) + rng.uniform(-0.05, 0.05, 3)
    image[walk:] = _tinted(_crop(rng, textures["gravel"], H - walk, W), road_tint)
    classes[walk:] = idx["Road"]
    objects = []  # (bottom row, kind): nearer objects (lower on the screen) are drawn last and are bigger
    n_ped = rng.integers(1, cfg.max_pedestrians + 1) if rng.random() < 0.85 else 0
    for _ in range(n_ped):
        objects.append((int(rng.uniform(horizon + 0.1 * H, H + 0.05 * H)), "Pedestrian"))
    for _ in range(rng.integers(0, cfg.max_cars + 1)):
        objects.append((int(rng.uniform(horizon + 0.1 * H, H + 0.05 * H)), "Car"))
    for bottom, kind in sorted(objects):
        depth = (bottom - horizon) / (H - horizon)  # 0 at the horizon, 1 at the bottom edge
        if kind == "Pedestrian":
            h = int((0.25 + 0.35 * depth) * H * rng.uniform(0.85, 1.15))
            w = int(h * rng.uniform(0.4, 0.6))
            item = pedestrians[rng.integers(len(pedestrians))]
        else:
            w = int((0.18 + 0.25 * depth) * W * rng.uniform(0.85, 1.15))
            h = int(w * rng.uniform(0.45, 0.65))
            item = cars[rng.integers(len(cars))]
        _paste(rng, image, classes, item, idx[kind], h, w, bottom, int(rng.uniform(-0.1 * w, W - 0.9 * w)))
    image *= rng.uniform(0.8, 1.2)  # global exposure
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), classes


def _fashion_items(train: bool) -> tuple[np.ndarray, np.ndarray]:
    ds = load_fashion_mnist(train=train)
    images, labels = ds.data.numpy(), ds.targets.numpy()
    return images[np.isin(labels, PEDESTRIAN_ITEMS)], images[np.isin(labels, CAR_ITEMS)]


def _fashion_sources() -> list[str]:
    """Where Fashion-MNIST comes from (recorded in the manifest; both splits come from the same place)."""
    return [find_fashion_mnist()[1]]


def generate(root: str | Path = DEFAULT_ROOT, cfg: SynthConfig | None = None) -> Path:
    """Write the dataset to ``root`` (replacing what is there) and return ``root``."""
    cfg = cfg or SynthConfig()
    root = Path(root)
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    textures = _textures()
    items = {train: _fashion_items(train) for train in (True, False)}  # train items for "train", test for the rest
    for split, count in cfg.counts.items():
        pedestrians, cars = items[split == "train"]
        (tmp / split).mkdir(parents=True)
        (tmp / f"{split}_labels").mkdir()
        for i in range(count):
            rng = np.random.default_rng([cfg.seed, SPLIT_IDS.get(split, 9), i])
            image, classes = make_scene(rng, cfg, textures, pedestrians, cars)
            name = f"synth_{split}_{i:05d}"
            Image.fromarray(image).save(tmp / split / f"{name}.png")
            Image.fromarray(COLOURS[classes]).save(tmp / f"{split}_labels" / f"{name}_L.png")
    (tmp / "label_colors.txt").write_text("".join(f"{r} {g} {b}\t{name}\n" for name, (r, g, b) in CAMVID_CLASSES))
    (tmp / "manifest.json").write_text(json.dumps(_manifest(cfg, _fashion_sources()), indent=1))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _manifest(cfg: SynthConfig, sources: list[str]) -> dict:
    return {"format": FORMAT_VERSION, "config": asdict(cfg), "fashion_mnist_source": sources}


def ensure_synthetic_camvid(root: str | Path = DEFAULT_ROOT, cfg: SynthConfig | None = None) -> Path:
    """Return ``root`` holding the dataset for ``cfg``, generating it first when missing or made differently."""
    cfg = cfg or SynthConfig()
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        if found.get("format") == FORMAT_VERSION and found.get("config") == asdict(cfg):
            if found.get("fashion_mnist_source") == _fashion_sources():
                return root
    return generate(root, cfg)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few frames only (into a 'smoke' sibling folder)")
    args = parser.parse_args(argv)
    cfg = SynthConfig(seed=args.seed, counts={"train": 8, "val": 2, "test": 2} if args.smoke else SynthConfig().counts)
    root = Path(args.root + ("_smoke" if args.smoke else ""))
    print(f"wrote {generate(root, cfg)}")


if __name__ == "__main__":
    main()
