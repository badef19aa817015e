"""FizzBuzz as a ``torch.utils.data.Dataset``: the chapter 2 encoders behind the standard data API.

Book: chapter 3, "Dataset" and "DataLoader". The book's ``FizBuzDataset`` returned Python lists from
``__getitem__``; the default collate function then builds a *list of per-bit tensors* instead of one
``(batch, input_size)`` tensor. This version returns tensors (``FizBuzListDataset`` keeps the book's behaviour so the
notebook can show the pitfall). Both live in a module, not in a notebook, so that ``DataLoader(num_workers > 0)`` can
find them in its worker processes whatever the multiprocessing start method.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from chapter02_simple_nn.fizbuz import binary_encoder, fizbuz_label


@dataclass
class FizBuzDataset(Dataset):
    """The integers ``start .. end - 1`` with their FizzBuzz classes.

    Item ``i`` is ``(bits, label)`` for the number ``start + i``: ``bits`` a ``(input_size,)`` float32 tensor of 0/1,
    most significant bit first; ``label`` a 0-d int64 tensor (0 FizzBuzz, 1 Buzz, 2 Fizz, 3 the number). A
    ``DataLoader`` stacks them into ``(batch, input_size)`` float32 and ``(batch,)`` int64.

    Raises:
        ValueError: ``end <= start``, ``start < 0`` or ``end - 1`` needs more than ``input_size`` bits (at
            construction).
        IndexError: an index outside ``-len .. len - 1``.
    """

    input_size: int = 10
    start: int = 0
    end: int = 1000

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty range: end ({self.end}) must be greater than start ({self.start})")
        encode = binary_encoder(self.input_size)
        encode(self.start), encode(self.end - 1)  # fail early (ValueError) on a negative start or too few bits

    def encode(self, number: int) -> list[int]:
        """The ``input_size`` bits of ``number``, most significant first (the chapter 2 ``binary_encoder``)."""
        # Not stored as an attribute: the encoder is a closure, which pickle (spawn/forkserver workers) cannot copy.
        return binary_encoder(self.input_size)(number)

    def __len__(self) -> int:
        return self.end - self.start

    def number(self, idx: int) -> int:
        """The integer behind item ``idx`` (negative indices count from the end, like a list)."""
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} numbers")
        return self.start + idx % len(self)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        number = self.number(int(idx))
        x = torch.tensor(self.encode(number), dtype=torch.float32)
        y = torch.tensor(fizbuz_label(number), dtype=torch.int64)
        return x, y


@dataclass
class FizBuzListDataset(FizBuzDataset):
    """The book's version: ``__getitem__`` returns ``(list of input_size ints, int)``.

    Kept only to show the pitfall: the default collate turns a batch of such items into a LIST of ``input_size``
    tensors of shape ``(batch,)`` (one per bit position), not a ``(batch, input_size)`` tensor.
    """

    def __getitem__(self, idx: int) -> tuple[list[int], int]:  # type: ignore[override]
        number = self.number(int(idx))
        return self.encode(number), fizbuz_label(number)


def collate_with_worker_id(batch: list) -> tuple[object, int]:
    """``default_collate(batch)`` plus the id of the ``DataLoader`` worker that built it (-1: the main process).

    Collate functions run inside the worker processes, so this shows which worker made each batch.
    """
    info = get_worker_info()
    return default_collate(batch), -1 if info is None else info.id


@dataclass
class SlowDataset(Dataset):
    """Wrap a dataset and wait ``delay_s`` seconds per item: stands in for slow decoding or augmentation.

    Lets the notebook show what ``num_workers`` buys without needing a slow disk or heavy images.
    """

    dataset: Dataset
    delay_s: float = 0.001

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        time.sleep(self.delay_s)
        return self.dataset[idx]
