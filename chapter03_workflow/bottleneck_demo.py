"""A small training script to profile: FizzBuzz, with every batch encoded in Python on the fly (on purpose).

Book: chapter 3, "Bottleneck and profiling". Run it under a profiler from the repository root:

    python -m chapter03_workflow.profiling chapter03_workflow/bottleneck_demo.py --epochs 3
    python -m cProfile -s tottime chapter03_workflow/bottleneck_demo.py --epochs 3

The bottleneck the profile should reveal: a ``Dataset`` (this chapter's ``FizBuzDataset``) that encodes each number
into bits in Python when it is asked for it, and a ``DataLoader`` that calls it once per sample and collates the
samples into a batch — every epoch again. Encoding all numbers once into two tensors and slicing batches out of
them removes it (``--encode-once``).
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from chapter02_simple_nn.fizbuz import FizBuzNet, accuracy, classic_split, make_tensors
from chapter03_workflow.fizbuz_dataset import FizBuzDataset


def main(epochs: int = 3, batch_size: int = 64, lr: float = 0.01, encode_once: bool = False, seed: int = 0) -> float:
    """Train ``FizBuzNet`` on 101..1023 and return its accuracy on 1..100 (a fraction)."""
    torch.manual_seed(seed)
    model = FizBuzNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_numbers, test_numbers = classic_split()
    if encode_once:  # all numbers encoded once, into two tensors
        x_all, y_all = make_tensors(train_numbers)
    else:  # the deliberate bottleneck: per-sample Python encoding and collation, every epoch
        dataset = FizBuzDataset(10, train_numbers[0], train_numbers[-1] + 1)  # 101..1023, encoded per item
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        if encode_once:  # a batch is a slice of the two tensors
            batches = [(x_all[idx], y_all[idx]) for idx in torch.randperm(len(x_all)).split(batch_size)]
        else:
            batches = loader
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return accuracy(model, test_numbers)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--encode-once", action="store_true", help="encode the numbers once, before training")
    args = parser.parse_args()
    acc = main(args.epochs, args.batch_size, encode_once=args.encode_once)
    print(f"test accuracy on 1..100 after {args.epochs} epochs: {acc:.2f}")
