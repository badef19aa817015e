"""Chapter 4: LinkNet output sizes, the CamVid loader (layout, modes, errors, read-only), the generator, the metrics."""
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from chapter04_cv.camvid import COLOURS, PEDESTRIAN, PEDESTRIAN_INDEX, CamVid, colour_to_index, index_to_colour
from chapter04_cv.linknet import DecoderBlock, EncoderBlock, SegmentationModel
from chapter04_cv.metrics import ConfusionMeter, accuracy, confusion_matrix, iou_per_class, mean_iou
from chapter04_cv.synthetic_camvid import SynthConfig, _textures, ensure_synthetic_camvid, generate, make_scene


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SegmentationModel(num_classes=3).eval()


@pytest.mark.parametrize("size", [(64, 64), (33, 47), (37, 20), (5, 7), (1, 1)])
def test_linknet_logits_have_the_input_size(model, size):
    with torch.no_grad():
        logits = model(torch.randn(1, 3, *size))
    assert logits.shape == (1, 3, *size)


def test_linknet_trains_and_logits_are_raw():
    torch.manual_seed(0)
    net = SegmentationModel()
    assert isinstance(net.final_deconv, torch.nn.ConvTranspose2d)  # no BatchNorm/ReLU after it
    x, y = torch.randn(2, 3, 35, 29), torch.randint(0, 2, (2, 35, 29))
    logits = net(x)
    assert (logits < 0).any()  # a ReLU on the logits would make them all >= 0
    loss = torch.nn.functional.nll_loss(torch.log_softmax(logits, 1), y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_encoder_and_decoder_blocks():
    enc, dec = EncoderBlock(4, 8).eval(), DecoderBlock(8, 4).eval()
    x = torch.randn(1, 4, 11, 6)
    e = enc(x)
    assert e.shape == (1, 8, 6, 3)
    assert dec(e, x.shape).shape == (1, 4, 11, 6)


def _write_frame(folder, name, image, classes):
    (folder / "train").mkdir(exist_ok=True)
    (folder / "train_labels").mkdir(exist_ok=True)
    Image.fromarray(image).save(folder / "train" / f"{name}.png")
    Image.fromarray(COLOURS[classes]).save(folder / "train_labels" / f"{name}_L.png")


@pytest.fixture()
def tiny_tree(tmp_path):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 32, size=(6, 8))
    classes[0, :3] = PEDESTRIAN_INDEX
    image = np.zeros((6, 8, 3), np.uint8)
    image[0, 0] = (255, 0, 128)
    _write_frame(tmp_path, "0001TP_000001", image, classes)
    _write_frame(tmp_path, "0001TP_000002", image, np.full((6, 8), 21))  # all Sky
    return tmp_path, image, classes


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))}


def test_camvid_loader_modes_and_single_normalisation(tiny_tree):
    root, image, classes = tiny_tree
    before = _digest(root)
    full = CamVid(root, "train", mode="full")
    x, y = full[0]
    assert x.shape == (3, 6, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, 0.0, 128 / 255]))  # divided by 255 once, not twice
    assert torch.equal(y, torch.from_numpy(classes))
    ped = CamVid(root, "train", mode="pedestrian")
    _, mask = ped[0]
    assert torch.equal(mask, torch.from_numpy((classes == PEDESTRIAN_INDEX).astype(np.int64)))
    assert ped[1][1].sum() == 0 and ped.classes == ("background", "pedestrian")
    normed = CamVid(root, "train", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))[0][0]
    torch.testing.assert_close(normed, (x - 0.5) / 0.5)
    assert _digest(root) == before  # read-only: nothing was rewritten


def test_camvid_loader_resizes_labels_with_nearest_colours(tiny_tree):
    root, _, _ = tiny_tree
    x, y = CamVid(root, "train", mode="full", size=(12, 5))[0]
    assert x.shape == (3, 12, 5) and y.shape == (12, 5) and 0 <= y.min() and y.max() < 32


def test_camvid_missing_label_names_the_frame(tiny_tree):
    root, image, classes = tiny_tree
    Image.fromarray(image).save(root / "train" / "0001TP_000003.png")
    with pytest.raises(FileNotFoundError, match=r"0001TP_000003\.png has no label.*0001TP_000003_L\.png"):
        CamVid(root, "train")


def test_camvid_unknown_colour_names_the_frame(tiny_tree):
    root, _, _ = tiny_tree
    label = np.array(Image.open(root / "train_labels" / "0001TP_000002_L.png"))
    label[2, 3] = (1, 2, 3)
    Image.fromarray(label).save(root / "train_labels" / "0001TP_000002_L.png")
    ds = CamVid(root, "train")
    ds[0]  # the other frame is fine
    with pytest.raises(ValueError, match=r"0001TP_000002\.png.*RGB \(1, 2, 3\) at row 2, column 3"):
        ds[1]


def test_camvid_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="synthetic_camvid"):
        CamVid(tmp_path, "train")
    with pytest.raises(ValueError, match="mode"):
        CamVid(tmp_path, "train", mode="cars")


def test_colour_table_round_trip():
    index = np.arange(32).reshape(4, 8)
    assert np.array_equal(colour_to_index(index_to_colour(index)), index)
    assert tuple(COLOURS[PEDESTRIAN_INDEX]) == PEDESTRIAN


def test_generator_is_deterministic_and_readable_by_the_loader(tmp_path):
    cfg = SynthConfig(seed=3, counts={"train": 3, "test": 1})
    a, b = generate(tmp_path / "a", cfg), generate(tmp_path / "b", cfg)
    assert _digest(a) == _digest(b)
    ds = CamVid(a, "train", mode="full")
    assert len(ds) == 3 and len(CamVid(a, "test")) == 1
    x, y = ds[0]
    assert x.shape == (3, cfg.height, cfg.width)
    assert set(y.unique().tolist()) <= {4, 5, 16, 17, 19, 21, 26}  # Building, Car, Pedestrian, Road, ...
    assert _digest(generate(tmp_path / "c", SynthConfig(seed=4, counts=cfg.counts))) != _digest(a)


def test_generator_masks_are_exact():
    # the same scene drawn with solid pedestrians and with empty ones (same random draws): the pixels that differ
    # are exactly the pixels labelled Pedestrian
    cfg = SynthConfig(max_cars=0)
    textures = _textures()
    solid, empty = np.zeros((1, 28, 28), np.uint8), np.zeros((1, 28, 28), np.uint8)
    solid[0, 4:24, 8:20] = 255
    for seed in range(4):
        image, classes = make_scene(np.random.default_rng(seed), cfg, textures, solid, solid)
        background, bg_classes = make_scene(np.random.default_rng(seed), cfg, textures, empty, empty)
        ped = classes == PEDESTRIAN_INDEX
        assert not (bg_classes == PEDESTRIAN_INDEX).any()
        assert np.array_equal((image != background).any(axis=2), ped)
        assert np.array_equal(classes[~ped], bg_classes[~ped])
    assert ped.sum() > 100


def test_metrics_on_a_hand_computed_case():
    target = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2
    torch.testing.assert_close(iou_per_class(cm), torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    assert mean_iou(cm) == pytest.approx(0.5) and accuracy(cm) == pytest.approx(4 / 6)
    absent = confusion_matrix(pred, target, 4)  # class 3 in neither: NaN, skipped by the mean
    assert torch.isnan(iou_per_class(absent)[3]) and mean_iou(absent) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(pred, target, 2)


def test_metrics_agree_with_ignite():
    from ignite.metrics import ConfusionMatrix as IgniteCM
    from ignite.metrics import IoU, mIoU

    torch.manual_seed(0)
    logits, target = torch.randn(4, 3, 10, 12), torch.randint(0, 3, (4, 10, 12))
    ours = ConfusionMeter(3)
    ours.update(logits, target)
    theirs = IgniteCM(3)
    iou, miou = IoU(theirs), mIoU(theirs)
    theirs.update((logits, target))
    assert torch.equal(ours.cm, theirs.confusion_matrix.long())
    torch.testing.assert_close(iou_per_class(ours.cm), iou.compute())
    assert mean_iou(ours.cm) == pytest.approx(miou.compute().item())


def test_ensure_generates_once_and_regenerates_on_change(tmp_path):
    cfg = SynthConfig(seed=1, counts={"train": 2})
    root = ensure_synthetic_camvid(tmp_path / "synth", cfg)
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert ensure_synthetic_camvid(tmp_path / "synth", cfg) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp  # kept, not regenerated
    before = _digest(root)
    ensure_synthetic_camvid(tmp_path / "synth", SynthConfig(seed=2, counts={"train": 2}))
    assert _digest(root) != before  # another seed: regenerated


def test_camvid_original_layout_with_label_dir(tiny_tree):
    root, _, classes = tiny_tree
    (root / "train_labels").rename(root / "LabeledApproved_full")
    ds = CamVid(root, "train", mode="full", label_dir="LabeledApproved_full")
    assert len(ds) == 2 and torch.equal(ds[0][1], torch.from_numpy(classes))
