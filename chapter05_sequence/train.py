"""Data preparation, training and evaluation loops shared by the chapter 5 notebooks.

Book: chapter 5, section "Training" (the loop the book writes once and reuses for every encoder).
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from chapter05_sequence.nli_corpus import corpus_paths
from chapter05_sequence.snli import LABELS, NLIExample, read_nli_jsonl
from chapter05_sequence.vocab import NLIDataset, Vocab, build_vocab, make_loader


@dataclass
class NLIData:
    """The three splits, their vocabulary and loaders; ``source`` is ``"snli"`` or ``"synthetic"``."""

    source: str
    vocab: Vocab
    examples: dict[str, list[NLIExample]]
    loaders: dict[str, DataLoader]


def load_nli_data(source: str = "auto", max_train: int | None = None, max_eval: int | None = None,
                  batch_size: int = 64, seed: int = 0) -> NLIData:
    """Read train/dev/test (real SNLI if present or asked for, else the offline corpus), build the vocabulary on the
    training split and make length-bucketed loaders (training shuffled with ``seed``).

    ``max_train`` / ``max_eval`` keep the first examples of the training / dev and test files.
    """
    used, paths = corpus_paths(source)
    examples = {split: read_nli_jsonl(path, max_examples=max_train if split == "train" else max_eval)
                for split, path in paths.items()}
    vocab = build_vocab(examples["train"])
    loaders = {split: make_loader(NLIDataset(exs, vocab), batch_size, shuffle=split == "train", seed=seed)
               for split, exs in examples.items()}
    return NLIData(used, vocab, examples, loaders)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label: ``logits`` ``(batch, classes)``, ``labels`` ``(batch,)``."""
    return (logits.argmax(dim=1) == labels).float().mean().item()


def majority_baseline(train: Sequence[NLIExample], test: Sequence[NLIExample]) -> float:
    """Test accuracy of always predicting the most frequent training label."""
    counts = [0] * len(LABELS)
    for ex in train:
        counts[ex.label] += 1
    majority = max(range(len(LABELS)), key=counts.__getitem__)
    return sum(ex.label == majority for ex in test) / max(len(test), 1)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                clip_norm: float | None = None, bar: tqdm | None = None) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, accuracy, the largest gradient norm seen, and the time taken
    (``seconds`` on the wall clock, ``cpu_seconds`` of CPU time of this process, all threads).

    ``clip_norm`` rescales the gradients whose total norm is above it (the cure for exploding gradients).
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss = correct = count = 0
    max_grad_norm = 0.0
    start, start_cpu = time.perf_counter(), time.process_time()
    for batch in loader:
        batch = batch.to(device)
        logits = model(batch)
        loss = loss_fn(logits, batch.label)
        optimizer.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm else float("inf"))
        max_grad_norm = max(max_grad_norm, norm.item())
        optimizer.step()
        total_loss += loss.item() * len(batch)
        correct += (logits.argmax(1) == batch.label).sum().item()
        count += len(batch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return {"loss": total_loss / count, "accuracy": correct / count, "max_grad_norm": max_grad_norm,
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
    """Loss, accuracy, and the predictions, labels and genres (rules) of every example, in loader order."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, predictions, labels, genres = 0.0, [], [], []
    for batch in loader:
        batch = batch.to(device)
        logits = model(batch)
        total_loss += loss_fn(logits, batch.label).item()
        predictions += logits.argmax(1).tolist()
        labels += batch.label.tolist()
        genres += batch.genres
    n = max(len(labels), 1)
    return {"loss": total_loss / n, "accuracy": sum(p == y for p, y in zip(predictions, labels)) / n,
            "predictions": predictions, "labels": labels, "genres": genres}


def per_rule_accuracy(result: dict) -> dict[str, float]:
    """Accuracy per genre (the offline corpus's rule; MultiNLI's genre) of an ``evaluate`` result, sorted by name."""
    hits: dict[str, list[int]] = defaultdict(list)
    for p, y, g in zip(result["predictions"], result["labels"], result["genres"]):
        hits[g or "all"].append(int(p == y))
    return {g: sum(v) / len(v) for g, v in sorted(hits.items())}


def fit(model: nn.Module, data: NLIData, device: torch.device, num_epochs: int, lr: float,
        clip_norm: float | None = None, name: str = "model") -> list[dict]:
    """Train with Adam for ``num_epochs``, evaluating on dev after each epoch; prints one line per epoch.

    Returns one dict per epoch: train loss/accuracy, dev loss/accuracy, max gradient norm, seconds.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    # on stdout, so that the per-epoch lines and the bar's final state read in order in a notebook
    with tqdm(total=num_epochs * len(data.loaders["train"]), desc=name, unit="batch", file=sys.stdout) as bar:
        for epoch in range(1, num_epochs + 1):
            stats = train_epoch(model, data.loaders["train"], optimizer, device, clip_norm, bar)
            dev = evaluate(model, data.loaders["dev"], device)
            stats.update(epoch=epoch, dev_loss=dev["loss"], dev_accuracy=dev["accuracy"])
            history.append(stats)
            bar.write(f"{name} epoch {epoch}: train loss {stats['loss']:.3f} acc {stats['accuracy']:.3f} | "
                      f"dev loss {dev['loss']:.3f} acc {dev['accuracy']:.3f} | {stats['seconds']:.1f} s")
    return history
