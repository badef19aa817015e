"""Data-parallel training with ``torch.distributed`` and ``DistributedDataParallel`` (DDP), launched by ``torchrun``.

Book: chapter 3, "Scale-out" (training on an existing engine with more processes or machines). The chapter 2 FizzBuzz
network trains on the numbers 101..1023. Every process (rank) holds a full copy of the model, reads its own share of
each global batch (``DistributedSampler``), and DDP averages the gradients across ranks during ``backward()``. With
equal shares, the average of the per-rank mean gradients is the mean gradient of the global batch, so the run matches
single-process training on the same global batch up to floating-point rounding.

Launch (from the repository root):

    torchrun --standalone --nproc_per_node 2 -m chapter03_workflow.ddp_train --epochs 20   # 2 processes, 1 machine
    python -m chapter03_workflow.ddp_train --epochs 20                                   # the 1-process reference

Across machines, start the same command on every machine with the machine count, its rank and one meeting point:

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 2 --rdzv_backend c10d --rdzv_endpoint host0:29400 \
        -m chapter03_workflow.ddp_train      # on host0; on the second machine the same with --node_rank 1

Backend: NCCL when every local rank can have its own CUDA device, else gloo (CPU).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from chapter02_simple_nn.fizbuz import FizBuzNet, accuracy, classic_split, make_tensors


@dataclass
class Config:
    """One data-parallel run; the same config gives the same result with any number of processes."""

    epochs: int = 20                # passes over the 923 training numbers
    global_batch_size: int = 64     # samples per optimizer step, summed over all ranks (book: 64)
    lr: float = 0.01                # Adam learning rate (book: 0.01)
    hidden_size: int = 100          # FizBuzNet hidden units (book: 100)
    seed: int = 0                   # seeds the initial weights and the shuffling
    output: str | None = None       # where rank 0 saves the final state_dict (None: do not save)


def pick_backend(world_size: int) -> str:
    """``"nccl"`` when there are at least ``world_size`` CUDA devices on this machine, else ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world_size else "gloo"


def train(config: Config, rank: int = 0, world_size: int = 1, device: torch.device | str = "cpu") -> FizBuzNet:
    """Train ``FizBuzNet`` on this rank's share of every global batch and return the (unwrapped) model.

    With ``world_size > 1`` the default process group must be initialised already. Each rank gets
    ``global_batch_size // world_size`` samples per step; the last incomplete global batch is dropped (in every mode,
    so that all modes take the same steps).

    Raises:
        ValueError: ``global_batch_size`` is not divisible by ``world_size``.
    """
    if config.global_batch_size % world_size:
        raise ValueError(f"global batch {config.global_batch_size} is not divisible by {world_size} processes")
    torch.manual_seed(config.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    model = FizBuzNet(hidden_size=config.hidden_size).to(device)
    ddp_model = DistributedDataParallel(model) if world_size > 1 else model
    optimizer = torch.optim.Adam(ddp_model.parameters(), lr=config.lr)
    x, y = make_tensors(classic_split()[0])
    dataset = TensorDataset(x, y)
    # Shuffles all indices with seed + epoch, then rank r takes positions r, r + world_size, ...: the union of the
    # ranks' k-th batches is exactly the k-th global batch of the single-process run.
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed,
                                 drop_last=True)
    loader = DataLoader(dataset, batch_size=config.global_batch_size // world_size, sampler=sampler, drop_last=True)
    ddp_model.train()
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)  # a new order every epoch, the same on every rank
        for xb, yb in loader:
            loss = F.cross_entropy(ddp_model(xb.to(device)), yb.to(device))
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces (averages) the gradients here
            optimizer.step()
    return model.eval()


def main(config: Config) -> FizBuzNet:
    """Train in one process, or in every process ``torchrun`` started (it sets ``RANK``, ``WORLD_SIZE``...)."""
    distributed = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world_size, device = 0, 1, torch.device("cpu")
    if distributed:
        world_size = int(os.environ["WORLD_SIZE"])
        backend = pick_backend(int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
        rank = dist.get_rank()
        line = (f"rank {rank}/{world_size}: backend {backend}, device {device}, "
                f"{config.global_batch_size // world_size} samples per step\n")
        print(line, end="", flush=True)  # one write, so that the ranks' lines do not interleave
    try:
        model = train(config, rank, world_size, device)
        if rank == 0:
            test_accuracy = accuracy(model, classic_split()[1])
            print(f"{world_size} process(es), config {asdict(config)}: test accuracy on 1..100 {test_accuracy:.2f}")
            if config.output:
                Path(config.output).parent.mkdir(parents=True, exist_ok=True)
                torch.save({k: v.cpu() for k, v in model.state_dict().items()}, config.output)
    finally:
        if distributed:
            dist.destroy_process_group()
    return model


def spawn_worker(rank: int, world_size: int, port: int, config: Config) -> None:
    """Entry point for ``torch.multiprocessing.spawn`` (used by the tests): one gloo rank on this machine."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        model = train(config, rank, world_size)
        if rank == 0 and config.output:
            torch.save(model.state_dict(), config.output)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train FizBuzNet with DistributedDataParallel (launch with torchrun).")
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--global-batch-size", type=int, default=Config.global_batch_size)
    parser.add_argument("--lr", type=float, default=Config.lr)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--output", default=None, help="rank 0 saves the final state_dict here")
    parser.add_argument("--smoke", action="store_true", help="2 epochs")
    a = parser.parse_args()
    main(Config(epochs=2 if a.smoke else a.epochs, global_batch_size=a.global_batch_size, lr=a.lr, seed=a.seed,
                output=a.output))
