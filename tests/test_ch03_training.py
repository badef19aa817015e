"""Chapter 3, training half: custom autograd Function, Ignite checkpoint/resume, DDP equality, the book's CNN."""
from __future__ import annotations

import multiprocessing
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms

from chapter03_workflow import ddp_train
from chapter03_workflow.autograd_numpy import ScipyConv2d, ScipyCorrelate2d, WrongCorrelate2d
from chapter03_workflow.ignite_mnist import (
    MEAN,
    STD,
    Config,
    Net,
    get_data_loaders,
    latest_checkpoint,
    to_tensor_dataset,
    train,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; one thread avoids oversubscribing the cores under pytest-xdist."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- custom autograd Function (NumPy/SciPy) -------------------------------------------------------------------------

@pytest.mark.parametrize("image, kernel", [((6, 6), (3, 3)), ((7, 5), (2, 4)), ((5, 8), (5, 1)), ((4, 4), (4, 4))])
def test_scipy_correlate2d_gradcheck_and_matches_conv2d(image, kernel):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*image, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(*kernel, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(ScipyCorrelate2d.apply, (x, w, b))
    out = ScipyCorrelate2d.apply(x, w, b)
    torch.testing.assert_close(out, F.conv2d(x[None, None], w[None, None], b)[0, 0])
    # gradients equal those autograd computes through F.conv2d
    grads = torch.autograd.grad(out.square().sum(), (x, w, b))
    expected = torch.autograd.grad(F.conv2d(x[None, None], w[None, None], b).square().sum(), (x, w, b))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_wrong_backward_fails_gradcheck():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, generator=gen, requires_grad=True)
    assert not torch.autograd.gradcheck(WrongCorrelate2d.apply, (x, w, b), raise_exception=False)


@pytest.mark.parametrize("x, w, b, message", [
    (torch.zeros(1, 5, 5), torch.zeros(3, 3), torch.zeros(1), "2-D image"),
    (torch.zeros(3, 3), torch.zeros(4, 2), torch.zeros(1), "larger than the image"),
    (torch.zeros(5, 5), torch.zeros(3, 3), torch.zeros(2), "one value"),
])
def test_scipy_correlate2d_rejects_bad_shapes(x, w, b, message):
    with pytest.raises(ValueError, match=message):
        ScipyCorrelate2d.apply(x, w, b)


def test_scipy_conv2d_layer_learns_a_known_filter():
    torch.manual_seed(0)
    target = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    layer = ScipyConv2d(2, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        x = torch.randn(8, 8)
        loss = (layer(x) - F.conv2d(x[None, None], target[None, None])[0, 0]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.testing.assert_close(layer.weight.detach(), target, atol=1e-2, rtol=0)
    assert abs(layer.bias.item()) < 1e-2


# --- the book's CNN and the Ignite run --------------------------------------------------------------------------------

def test_net_output_shape_and_parameter_count():
    model = Net().eval()
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(3))  # log-probabilities
    assert sum(p.numel() for p in model.parameters()) == 260 + 5020 + 16050 + 510


def test_to_tensor_dataset_equals_the_per_item_transform():
    class Tiny:  # the two attributes of a torchvision MNIST-style dataset that to_tensor_dataset reads
        data = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        targets = torch.tensor([3, 1, 4, 1, 5])

    fast = to_tensor_dataset(Tiny())
    book = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    for i in range(5):
        image, label = fast[i]
        assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label.dtype == torch.int64
        assert torch.equal(image, book(Image.fromarray(Tiny.data[i].numpy(), mode="L")))
        assert label.item() == Tiny.targets[i].item()
    assert len(to_tensor_dataset(Tiny(), size=2)) == 2


def tiny_loaders(config: Config) -> tuple[DataLoader, DataLoader]:
    gen = torch.Generator().manual_seed(0)
    train_set = TensorDataset(torch.randn(96, 1, 28, 28, generator=gen), torch.randint(0, 10, (96,), generator=gen))
    val_set = TensorDataset(torch.randn(40, 1, 28, 28, generator=gen), torch.randint(0, 10, (40,), generator=gen))
    return get_data_loaders(config, train_set, val_set)


@pytest.mark.parametrize("optimizer, cosine, crash, resumed_from", [
    ("sgd", False, 9, 8),     # resume in the middle of epoch 2 (6 iterations per epoch)
    ("adam", True, 14, 12),   # resume exactly at an epoch boundary
])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, optimizer, cosine, crash, resumed_from):
    config = Config(epochs=3, batch_size=16, val_batch_size=20, optimizer=optimizer, lr=0.01, cosine=cosine,
                    checkpoint_every=4, log_every=2)
    loaders = tiny_loaders(config)
    reference = train(config, loaders=loaders, progress=False)
    assert reference["crashed"] is None and reference["trainer"].state.iteration == 18

    crashed = train(config, checkpoint_dir=tmp_path, crash_iteration=crash, loaders=loaders, progress=False)
    assert crashed["crashed"] is not None and crashed["trainer"].state.iteration == crash
    last = latest_checkpoint(tmp_path)
    assert last.name == f"checkpoint_{resumed_from}.pt"
    assert not any(torch.equal(a, b) for a, b in zip(crashed["model"].state_dict().values(),
                                                     reference["model"].state_dict().values()) if a.is_floating_point())

    resumed = train(config, resume_from=last, loaders=loaders, progress=False)
    assert resumed["trainer"].state.iteration == 18
    for (name, a), b in zip(reference["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed["metrics"] == reference["metrics"]


def test_resume_and_stop_after_epoch_equals_snapshot_of_longer_run(tmp_path):
    config = Config(epochs=3, batch_size=16, val_batch_size=20, optimizer="adam", lr=0.01, cosine=True,
                    checkpoint_every=4, log_every=2)
    loaders = tiny_loaders(config)
    reference = train(config, loaders=loaders, progress=False, snapshot_after_epoch=2)
    train(config, checkpoint_dir=tmp_path, crash_iteration=10, loaders=loaders, progress=False)
    resumed = train(config, resume_from=latest_checkpoint(tmp_path), loaders=loaders, progress=False,
                    stop_after_epoch=2)
    assert resumed["trainer"].state.iteration == 12
    for name, value in resumed["model"].state_dict().items():
        assert torch.equal(reference["snapshot"][name], value), name
    assert resumed["metrics"] == dict(reference["history"]["val"])[2]
    assert not torch.equal(reference["snapshot"]["fc2.weight"], reference["model"].state_dict()["fc2.weight"])


def test_latest_checkpoint_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        latest_checkpoint(tmp_path)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        train(Config(optimizer="rmsprop"), loaders=tiny_loaders(Config(batch_size=16)), progress=False)


# --- DistributedDataParallel ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_equal_one_process_on_the_global_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the worker processes
    config = ddp_train.Config(epochs=2, global_batch_size=32, hidden_size=16, output=str(tmp_path / "ddp.pt"))
    # forkserver: one fresh interpreter imports torch once and forks both workers (plain fork from this process
    # could hang in OpenMP; spawn would import torch twice)
    multiprocessing.set_forkserver_preload(["chapter03_workflow.ddp_train"])
    workers = mp.start_processes(ddp_train.spawn_worker, args=(2, free_port(), config), nprocs=2, join=False,
                                 start_method="forkserver")
    deadline = time.monotonic() + 120
    while not workers.join(timeout=5):  # raises if a worker failed
        if time.monotonic() > deadline:
            for process in workers.processes:
                process.kill()
            pytest.fail("the DDP workers did not finish within 120 s")
    ddp_state = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single_state = ddp_train.train(config).state_dict()
    torch.manual_seed(config.seed)
    initial_state = ddp_train.FizBuzNet(hidden_size=16).state_dict()
    for name, value in single_state.items():
        torch.testing.assert_close(ddp_state[name], value, atol=1e-6, rtol=1e-5)
    moved = max((single_state[k] - initial_state[k]).abs().max().item() for k in single_state)
    assert moved > 1e-3  # training changed the weights, so the equality above is not trivial


def test_ddp_rejects_indivisible_global_batch():
    with pytest.raises(ValueError, match="not divisible"):
        ddp_train.train(ddp_train.Config(global_batch_size=33), rank=0, world_size=2)


def test_pick_backend_is_gloo_without_enough_gpus():
    expected = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= 2 else "gloo"
    assert ddp_train.pick_backend(2) == expected
    assert ddp_train.pick_backend(10 ** 6) == "gloo"
