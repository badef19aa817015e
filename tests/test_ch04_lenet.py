"""Chapter 4: LeNet (shapes, parameter count, data adaptation, eval loop), classification metrics, the benchmark."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from chapter04_cv import benchmark_conv
from chapter04_cv.lenet import SimpleCNNModel, book_transform, image_tensors, load_dataset, predict, train_epoch
from chapter04_cv.metrics import accuracy, confusion_matrix, per_class_accuracy


def test_simple_cnn_shapes_and_size():
    model = SimpleCNNModel()
    assert model(torch.zeros(7, 3, 32, 32)).shape == (7, 10)
    # conv1 456 + conv2 2,416 + fc1 48,120 + fc2 10,164 + fc3 850
    assert sum(p.numel() for p in model.parameters()) == 62006


def test_fashion_mnist_tensors_equal_the_per_item_transform():
    tensors = image_tensors("fashion-mnist", train=False, limit=20)
    per_item = load_dataset("fashion-mnist", train=False, transform=book_transform("fashion-mnist"))
    for i in range(20):
        image, label = tensors[i]
        assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1
        torch.testing.assert_close(image, per_item[i][0])
        assert label == per_item[i][1]
    assert torch.all(tensors[0][0][:, :2, :] == -1)  # the zero padding, normalised


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="cifar10"):
        load_dataset("imagenet", train=True)


def test_train_epoch_lowers_the_loss_and_predict_is_eval_without_grad():
    torch.manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(2, 3, 32, 32)[y] + 0.2 * torch.randn(64, 3, 32, 32)  # two noisy templates
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    model = SimpleCNNModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = [train_epoch(model, loader, torch.nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
              for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]
    preds, targets = predict(model, loader, torch.device("cpu"))
    assert not model.training and not preds.requires_grad
    assert preds.shape == targets.shape == (64,) and sorted(targets.tolist()) == sorted(y.tolist())


def test_per_class_accuracy_by_hand():
    pred, target = torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(pred, target, 4)
    torch.testing.assert_close(per_class_accuracy(cm)[:3], torch.tensor([0.5, 1.0, 2 / 3], dtype=torch.float64))
    assert torch.isnan(per_class_accuracy(cm)[3])  # class 3 never occurs
    assert accuracy(cm) == pytest.approx(4 / 6)


def test_benchmark_runs_with_a_tiny_config(capsys):
    rows = benchmark_conv.main(benchmark_conv.BenchConfig(batch_size=2, rounds=2, loop_rounds=1))
    assert {r["impl"] for r in rows} == {"F (PyTorch)", "vectorised", "loop"}
    assert len(rows) == 3 * 2 * 3  # 3 layers, forward and forward+backward, 3 implementations
    assert all(r["ms"] > 0 and r["ratio"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "x library" in out and "LeNet conv1 + conv2, fwd+bwd" in out


def test_missing_cifar10_says_how_to_get_it(monkeypatch, tmp_path):
    from chapter04_cv import lenet
    monkeypatch.setattr(lenet, "CIFAR10_DIR", tmp_path / "cifar-10-batches-py")
    assert not lenet.cifar10_available()
    with pytest.raises(FileNotFoundError, match=r"CIFAR10\(root='data', download=True\)"):
        lenet.load_dataset("cifar10", train=True)
