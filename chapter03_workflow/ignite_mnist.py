"""Training and validation with PyTorch Ignite: the book's MNIST CNN on Fashion-MNIST, with checkpoints that resume.

Book: chapter 3, "Training and validation" (Ignite: ``Engine``, events, metrics, checkpoints). The book's demo crashed
on purpose and never resumed; here a run resumes from its last checkpoint and ends with exactly the weights of an
uninterrupted run with the same seed. Four things make that work:

1. ``create_supervised_trainer(..., deterministic=True)`` builds a ``DeterministicEngine``: it reseeds at every epoch,
   wraps the loader's batch sampler in a ``ReproducibleBatchSampler`` (so a resumed epoch skips the batches already
   seen) and puts the CPU random-number-generator states in ``trainer.state_dict()`` (so dropout draws the same masks).
2. The checkpoint holds model, optimizer, learning-rate scheduler and trainer (``Checkpoint`` + ``DiskSaver``, every
   ``checkpoint_every`` iterations), plus the CUDA generator state when a GPU is used (``CudaRNGState``).
3. The run seed is fixed (``config.seed``) instead of drawn from the global generator when the run starts.
4. The training loader shuffles with its own generator, reseeded with ``seed + epoch`` at every epoch start
   (``seed_data_order``), so a resumed epoch sees the same permutation of the data.

Script use (from the repository root)::

    python -m chapter03_workflow.ignite_mnist --optimizer adam --lr 0.002 --cosine --epochs 8   # notebook's default
    python -m chapter03_workflow.ignite_mnist --smoke --crash-at 7    # crashes; then the same with --resume
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events, create_supervised_evaluator, create_supervised_trainer
from ignite.handlers import Checkpoint, DiskSaver, global_step_from_engine
from ignite.handlers.tensorboard_logger import TensorboardLogger
from ignite.metrics import Accuracy, Loss
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm import tqdm

import handson
from chapter03_workflow.datasets import load_fashion_mnist

CHAPTER = "chapter03_workflow"
MEAN, STD = (0.1307,), (0.3081,)  # the book's Normalize values (MNIST statistics, kept for Fashion-MNIST)


@dataclass
class Config:
    """One training run. Defaults are the book's hyper-parameters."""

    epochs: int = 10                # passes over the training set (book: 10)
    batch_size: int = 64            # training batch size (book: 64)
    val_batch_size: int = 1000      # evaluation batch size (book: 1000)
    optimizer: str = "sgd"          # "sgd" (book: momentum SGD) or "adam"
    lr: float = 0.01                # learning rate (book: 0.01)
    momentum: float = 0.5           # SGD momentum (book: 0.5); unused by Adam
    cosine: bool = False            # anneal the learning rate to 0 over the run (cosine, per iteration)
    train_size: int | None = None   # use only the first n training images (None: all 60,000)
    val_size: int | None = None     # evaluate on the first n test images (None: all 10,000)
    checkpoint_every: int = 100     # iterations between checkpoints (book: 100)
    n_saved: int = 2                # checkpoints kept on disk
    log_every: int = 50             # iterations between training-loss logs (TensorBoard, history)
    seed: int = 0                   # seeds the weights, the data order and the dropout masks


class Net(nn.Module):
    """The book's CNN for 28x28 grey images (the MNIST example of PyTorch and Ignite).

    Input ``(batch, 1, 28, 28)`` float32 -> output ``(batch, 10)`` log-probabilities (use ``F.nll_loss``).
    Conv2d(1,10,5) -> maxpool 2 -> ReLU; Conv2d(10,20,5) -> Dropout2d -> maxpool 2 -> ReLU; Linear(320,50) -> ReLU ->
    dropout; Linear(50,10) -> log_softmax.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=-1)


def to_tensor_dataset(dataset, size: int | None = None) -> TensorDataset:
    """Apply the book's ``Compose([ToTensor(), Normalize(MEAN, STD)])`` to a whole MNIST-style dataset at once.

    Gives exactly the tensors the per-item transform gives (``(n, 1, 28, 28)`` float32 images, ``(n,)`` int64 labels),
    but once instead of every epoch: several times faster on a small CPU. ``size`` keeps the first ``size`` items.
    """
    images = dataset.data[:size].unsqueeze(1).float().div(255)
    images = images.sub(MEAN[0]).div(STD[0])
    return TensorDataset(images, dataset.targets[:size].clone())


def get_data_loaders(config: Config, train_set: Dataset | None = None,
                     val_set: Dataset | None = None) -> tuple[DataLoader, DataLoader]:
    """Shuffled training loader and ordered test loader (Fashion-MNIST unless datasets are given)."""
    if train_set is None:
        train_set = to_tensor_dataset(load_fashion_mnist(train=True), config.train_size)
    if val_set is None:
        val_set = to_tensor_dataset(load_fashion_mnist(train=False), config.val_size)
    # The shuffling draws from its own generator, reseeded at every epoch by ``seed_data_order``.
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=torch.Generator())
    val_loader = DataLoader(val_set, batch_size=config.val_batch_size, shuffle=False)
    return train_loader, val_loader


def seed_data_order(trainer: Engine, loader: DataLoader, seed: int) -> None:
    """Reseed the loader's shuffling generator with ``seed + epoch`` when every epoch starts (a resumed one too).

    ``DeterministicEngine`` alone is not enough mid-epoch: its batch sampler draws the epoch's permutation lazily,
    after it has restored the saved generator state, so a resumed epoch would see the batches of another permutation.

    Raises:
        ValueError: the loader was built without its own ``generator``.
    """
    if loader.generator is None:
        raise ValueError("build the training DataLoader with generator=torch.Generator()")

    @trainer.on(Events.EPOCH_STARTED)
    def reseed(engine: Engine) -> None:
        loader.generator.manual_seed(seed + engine.state.epoch)


class CudaRNGState:
    """The CUDA generators' states as a checkpointable object (``state_dict``/``load_state_dict``).

    ``DeterministicEngine`` saves only the CPU generators; on a GPU, dropout draws from the CUDA generator. The saved
    state is applied when the next iteration starts (after the engine has reseeded at the start of the resumed epoch).
    """

    def __init__(self):
        self.pending: list[torch.Tensor] | None = None

    def state_dict(self) -> dict:
        return {"cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state: dict) -> None:
        self.pending = list(state["cuda"]) or None

    def apply_pending(self) -> None:
        if self.pending is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.pending)
        self.pending = None


def build_training(config: Config, steps_per_epoch: int, device: torch.device | str = "cpu",
                   model: nn.Module | None = None):
    """Model, optimizer, scheduler and the Ignite trainer/evaluator, seeded with ``config.seed``.

    ``steps_per_epoch`` (the training loader's length) sizes the cosine schedule when ``config.cosine`` is set.

    Returns ``(model, optimizer, scheduler, trainer, evaluator, to_save)``; ``to_save`` is the dict of objects a
    checkpoint holds. ``model`` defaults to a new ``Net``. The trainer's output is the batch loss (a float); the
    evaluator computes ``accuracy`` and ``nll`` (mean negative log-likelihood).
    """
    handson.seed_everything(config.seed)
    model = (model if model is not None else Net()).to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
    trainer = create_supervised_trainer(model, optimizer, F.nll_loss, device=device, deterministic=True)
    evaluator = create_supervised_evaluator(model, metrics={"accuracy": Accuracy(), "nll": Loss(F.nll_loss)},
                                            device=device)

    @trainer.on(Events.STARTED)
    def fix_run_seed(engine: Engine) -> None:  # DeterministicEngine would draw it from the global generator
        engine.state.seed = config.seed

    scheduler = None
    if config.cosine:  # one scheduler step per iteration, from lr down to 0 at the end of the run
        total_steps = config.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: scheduler.step())

    cuda_rng = CudaRNGState()
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda _: cuda_rng.apply_pending())
    to_save = {"model": model, "optimizer": optimizer, "trainer": trainer, "cuda_rng": cuda_rng}
    if scheduler is not None:
        to_save["scheduler"] = scheduler
    return model, optimizer, scheduler, trainer, evaluator, to_save


def attach_checkpoints(trainer: Engine, to_save: dict, folder: Path, every: int, n_saved: int = 2) -> Checkpoint:
    """Save ``to_save`` as ``folder/checkpoint_<iteration>.pt`` every ``every`` iterations; keep ``n_saved`` files."""
    checkpoint = Checkpoint(to_save, DiskSaver(str(folder), require_empty=False), n_saved=n_saved,
                            global_step_transform=lambda engine, _: engine.state.iteration)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(every=every), checkpoint)
    return checkpoint


# The trainer's state holds NumPy's generator state (an array): allow exactly those NumPy types in the safe loader.
NUMPY_RNG_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]


def load_checkpoint(to_load: dict, path: Path, map_location: str | torch.device = "cpu") -> None:
    """Restore every object of ``to_load`` from a checkpoint file written by ``attach_checkpoints``.

    Loads with ``torch.load(weights_only=True)`` (no arbitrary code runs) plus the NumPy types of the saved generator
    states; ignite's own ``Checkpoint.load_objects(to_load, path)`` fails on those.
    """
    with torch.serialization.safe_globals(NUMPY_RNG_GLOBALS):
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    Checkpoint.load_objects(to_load=to_load, checkpoint=checkpoint)


def attach_history(trainer: Engine, evaluator: Engine, val_loader: DataLoader, log_every: int,
                   bar: tqdm | None = None) -> dict[str, list]:
    """Log the training loss every ``log_every`` iterations and evaluate after every epoch; advance ``bar`` if given.

    Returns the history dict that fills up during the run: ``loss`` [(iteration, loss)], ``val`` [(epoch, metrics)].
    """
    history: dict[str, list] = {"loss": [], "val": []}

    @trainer.on(Events.ITERATION_COMPLETED(every=log_every))
    def log_loss(engine: Engine) -> None:
        history["loss"].append((engine.state.iteration, engine.state.output))
        if bar is not None:
            bar.update(engine.state.iteration - bar.n)
            bar.set_postfix(loss=f"{engine.state.output:.3f}", refresh=False)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        metrics = evaluator.run(val_loader).metrics
        history["val"].append((engine.state.epoch, dict(metrics)))

    return history


def attach_tensorboard(trainer: Engine, evaluator: Engine, optimizer: torch.optim.Optimizer, log_dir: Path,
                       log_every: int) -> TensorboardLogger:
    """Write the training loss, the learning rate and the validation metrics as TensorBoard events in ``log_dir``.

    View them with ``tensorboard --logdir artifacts/chapter03_workflow/tensorboard``. Close the logger after the run.
    """
    tb = TensorboardLogger(log_dir=str(log_dir))
    tb.attach_output_handler(trainer, event_name=Events.ITERATION_COMPLETED(every=log_every), tag="training",
                             output_transform=lambda loss: {"batch_loss": loss})
    tb.attach_opt_params_handler(trainer, event_name=Events.ITERATION_COMPLETED(every=log_every), optimizer=optimizer)
    tb.attach_output_handler(evaluator, event_name=Events.COMPLETED, tag="validation", metric_names=["accuracy", "nll"],
                             global_step_transform=global_step_from_engine(trainer, Events.ITERATION_COMPLETED))
    return tb


def crash_at(trainer: Engine, iteration: int) -> None:
    """Make the trainer raise ``RuntimeError`` when ``iteration`` completes (the book's crash-on-purpose demo)."""
    @trainer.on(Events.ITERATION_COMPLETED(once=iteration))
    def crash(engine: Engine) -> None:
        raise RuntimeError(f"crash on purpose at iteration {engine.state.iteration}")


def latest_checkpoint(folder: Path) -> Path:
    """The checkpoint file with the highest iteration number in ``folder``.

    Raises:
        FileNotFoundError: ``folder`` holds no ``checkpoint_<iteration>.pt`` file.
    """
    files = sorted(Path(folder).glob("checkpoint_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not files:
        raise FileNotFoundError(f"no checkpoint_<iteration>.pt file in {folder}")
    return files[-1]


def train(config: Config, device: torch.device | str = "cpu", checkpoint_dir: Path | None = None,
          resume_from: Path | None = None, crash_iteration: int | None = None, tensorboard_dir: Path | None = None,
          loaders: tuple[DataLoader, DataLoader] | None = None, progress: bool = True,
          stop_after_epoch: int | None = None, snapshot_after_epoch: int | None = None) -> dict:
    """One Ignite run: optional checkpoints, crash, resume, early stop and TensorBoard; returns a summary dict.

    ``stop_after_epoch`` ends the run (``trainer.terminate()``) once that epoch is complete and evaluated, without
    changing the schedule (which is sized by ``config.epochs``); ``snapshot_after_epoch`` keeps a copy of the weights
    at the end of that epoch. Keys of the result: ``model``, ``trainer``, ``history`` (see ``attach_history``),
    ``metrics`` (last evaluation), ``crashed`` (the exception when the run stopped on one, else ``None``),
    ``snapshot`` (a state_dict copy, or ``None``).
    """
    train_loader, val_loader = loaders if loaders is not None else get_data_loaders(config)
    model, optimizer, scheduler, trainer, evaluator, to_save = build_training(config, len(train_loader), device)
    if resume_from is not None:
        load_checkpoint(to_save, resume_from)
    bar = tqdm(total=config.epochs * len(train_loader), initial=trainer.state.iteration, desc="iterations",
               disable=not progress, mininterval=2.0)
    seed_data_order(trainer, train_loader, config.seed)
    history = attach_history(trainer, evaluator, val_loader, config.log_every, bar)
    if checkpoint_dir is not None:
        attach_checkpoints(trainer, to_save, checkpoint_dir, config.checkpoint_every, config.n_saved)
    if crash_iteration is not None:
        crash_at(trainer, crash_iteration)
    snapshot = {}
    if snapshot_after_epoch is not None:
        @trainer.on(Events.EPOCH_COMPLETED(once=snapshot_after_epoch))
        def keep_weights(engine: Engine) -> None:
            snapshot.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    if stop_after_epoch is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after_epoch), lambda engine: engine.terminate())
    tb = None
    if tensorboard_dir is not None:
        tb = attach_tensorboard(trainer, evaluator, optimizer, tensorboard_dir, config.log_every)
    crashed = None
    try:  # no EXCEPTION_RAISED handler: Ignite re-raises, as a real crash would end the process
        trainer.run(train_loader, max_epochs=config.epochs)
    except RuntimeError as error:
        if "crash on purpose" not in str(error):
            raise
        crashed = error
    finally:
        bar.update(trainer.state.iteration - bar.n)
        bar.close()
        if tb is not None:
            tb.close()
    metrics = history["val"][-1][1] if history["val"] else {}
    return {"model": model, "trainer": trainer, "history": history, "metrics": metrics, "crashed": crashed,
            "snapshot": snapshot or None}


def main(config: Config, device: str | None = None, resume: bool = False, crash_iteration: int | None = None) -> dict:
    """Train with checkpoints in ``artifacts/chapter03_workflow/ignite_checkpoints`` and print the test accuracy.

    ``resume=True`` continues from the latest checkpoint there (start the run again with the same config after a
    crash); otherwise old checkpoints are deleted first. ``crash_iteration`` crashes on purpose, to try that out.
    """
    folder = handson.artifacts_dir(CHAPTER, "ignite_checkpoints")
    resume_from = latest_checkpoint(folder) if resume else None
    if not resume:
        for old in folder.glob("checkpoint_*.pt"):
            old.unlink()
    result = train(config, handson.get_device(device), checkpoint_dir=folder, resume_from=resume_from,
                   crash_iteration=crash_iteration)
    print(f"config: {asdict(config)}")
    if resume_from is not None:
        print(f"resumed from {resume_from.name}")
    if result["crashed"] is not None:
        print(f"{result['crashed']}; run again with --resume to continue from {latest_checkpoint(folder).name}")
    else:
        print(f"test accuracy after {config.epochs} epoch(s): {result['metrics']['accuracy']:.4f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train the book's CNN on Fashion-MNIST with Ignite.")
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default=Config.optimizer)
    parser.add_argument("--lr", type=float, default=Config.lr)
    parser.add_argument("--cosine", action="store_true", help="cosine learning-rate annealing")
    parser.add_argument("--train-size", type=int, default=None, help="use only the first n training images")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--crash-at", type=int, default=None, help="crash on purpose at this iteration")
    parser.add_argument("--smoke", action="store_true", help="one epoch on 640 images, checkpoints every 5 iterations")
    parser.add_argument("--device", default=None)
    a = parser.parse_args()
    cfg = Config(epochs=a.epochs, optimizer=a.optimizer, lr=a.lr, cosine=a.cosine, train_size=a.train_size)
    if a.smoke:
        cfg.epochs, cfg.train_size, cfg.checkpoint_every = 1, 640, 5
    main(cfg, a.device, resume=a.resume, crash_iteration=a.crash_at)
