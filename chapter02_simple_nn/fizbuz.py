"""FizzBuzz as a classification problem: encoders, data splits, the model, training and saving.

Book: chapter 2, "A simple neural network". Classes (the book's order): 0 = FizzBuzz (divisible by 15), 1 = Buzz
(by 5), 2 = Fizz (by 3), 3 = the number itself. An integer enters the network as its ``input_size``-bit binary
representation, most significant bit first.

Chapter 3 builds its ``FizBuzDataset`` on these encoders; chapter 8 serves the model that ``load_or_train`` returns.
"""
from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import handson

CHAPTER = "chapter02_simple_nn"
LABELS = ("FizzBuzz", "Buzz", "Fizz", "number")
MODEL_PATH = handson.ARTIFACTS_DIR / CHAPTER / "fizbuz.pt"


def fizbuz_label(number: int) -> int:
    """Class index of ``number``: 0 FizzBuzz, 1 Buzz, 2 Fizz, 3 the number itself."""
    if number % 15 == 0:
        return 0
    if number % 5 == 0:
        return 1
    if number % 3 == 0:
        return 2
    return 3


def fizbuz_text(number: int, label: int) -> str:
    """What FizzBuzz says for ``number`` when its class is ``label`` ("FizzBuzz", "Buzz", "Fizz" or the digits)."""
    return str(number) if label == 3 else LABELS[label]


def check_encodable(number: object, input_size: int) -> int:
    """Return ``number`` as an int if ``input_size`` bits can represent it.

    Raises:
        ValueError: ``number`` is not an integer (floats, bools and strings included), is negative, or is
            ``>= 2 ** input_size``.
    """
    if isinstance(number, bool) or not isinstance(number, int):
        if hasattr(number, "__index__") and not isinstance(number, bool):  # NumPy / 0-d tensor integers
            number = number.__index__()
        else:
            raise ValueError(f"expected a non-negative integer, got {number!r} ({type(number).__name__})")
    if number < 0:
        raise ValueError(f"cannot encode negative number {number}")
    if number >= 2 ** input_size:
        raise ValueError(f"{number} needs more than {input_size} bits (largest encodable: {2 ** input_size - 1})")
    return number


def binary_encoder(input_size: int = 10) -> Callable[[int], list[int]]:
    """Return a function mapping an integer to its ``input_size`` bits, most significant first, zero-padded.

    >>> binary_encoder(10)(5)
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 1]

    The returned function raises ``ValueError`` for numbers that ``input_size`` bits cannot represent.
    """
    def wrapper(number: int) -> list[int]:
        number = check_encodable(number, input_size)
        bits = [int(b) for b in f"{number:b}"]
        return [0] * (input_size - len(bits)) + bits
    return wrapper


def decoder(bits: Sequence[int] | torch.Tensor) -> int:
    """Inverse of ``binary_encoder``: bits, most significant first (list or 1-D tensor), to the integer."""
    values = bits.tolist() if isinstance(bits, torch.Tensor) else list(bits)
    return int("".join(str(int(b)) for b in values), 2)


def make_tensors(numbers: Iterable[int], input_size: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode numbers for training.

    Returns:
        x: ``(n, input_size)`` float32 bits; y: ``(n,)`` int64 class indices.
    """
    numbers = list(numbers)
    encode = binary_encoder(input_size)
    x = torch.tensor([encode(n) for n in numbers], dtype=torch.float32)
    y = torch.tensor([fizbuz_label(n) for n in numbers], dtype=torch.int64)
    return x, y


def book_split(start: int = 0, end: int = 1000, test_fraction: float = 0.1,
               seed: int = 0) -> tuple[list[int], list[int]]:
    """The book's data: numbers ``start..end-1`` shuffled with ``seed`` and split 90/10. Returns (train, test)."""
    numbers = list(range(start, end))
    random.Random(seed).shuffle(numbers)
    n_test = int(len(numbers) * test_fraction)
    return numbers[n_test:], numbers[:n_test]


def classic_split(input_size: int = 10) -> tuple[list[int], list[int]]:
    """Joel Grus's benchmark: train on ``101 .. 2**input_size - 1``, test on ``1 .. 100``. Returns (train, test)."""
    return list(range(101, 2 ** input_size)), list(range(1, 101))


class Linear(nn.Module):
    """A hand-written ``nn.Linear``: ``y = x @ weight.T + bias``.

    Initialised exactly like ``nn.Linear`` (Kaiming-uniform weights, uniform bias in ``±1/sqrt(in_features)``) and
    honouring ``bias=False`` — the book's listing left the weights uninitialised and ignored the flag.

    Shapes: input ``(*, in_features)`` -> output ``(*, out_features)``; weight ``(out_features, in_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight.t()
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class FizBuzNet(nn.Module):
    """The book's FizzBuzz network: ``Linear(input_size, hidden_size) -> sigmoid -> Linear(hidden_size, output_size)``.

    Input ``(batch, input_size)`` float bits; output ``(batch, output_size)`` raw logits (use ``CrossEntropyLoss``).
    Book: chapter 2, "The PyTorch way"; hyper-parameters input 10, hidden 100, output 4.
    """

    def __init__(self, input_size: int = 10, hidden_size: int = 100, output_size: int = 4):
        super().__init__()
        self.hidden = nn.Linear(input_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        hidden = torch.sigmoid(self.hidden(batch))
        return self.out(hidden)


def train_fizbuz(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 500, batch_size: int = 64,
                 lr: float = 0.01, seed: int = 0, progress: bool = True) -> list[float]:
    """Train with the book's code: ``CrossEntropyLoss`` + ``Adam(lr)``, shuffled mini-batches.

    ``x`` ``(n, input_size)`` float32 and ``y`` ``(n,)`` int64 are moved to the model's device.
    Returns the mean training loss of every epoch.
    """
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in tqdm(range(epochs), desc="epochs", disable=not progress, mininterval=1.0):
        order = torch.randperm(len(x), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    model.eval()
    return losses


@torch.no_grad()
def predict(model: nn.Module, numbers: Iterable[int], input_size: int = 10) -> list[int]:
    """Predicted class index for each number (eval mode, no gradients)."""
    model.eval()
    device = next(model.parameters()).device
    x, _ = make_tensors(numbers, input_size)
    return model(x.to(device)).argmax(dim=1).tolist()


def accuracy(model: nn.Module, numbers: Sequence[int], input_size: int = 10) -> float:
    """Fraction of ``numbers`` whose FizzBuzz class the model predicts correctly."""
    predictions = predict(model, numbers, input_size)
    return sum(p == fizbuz_label(n) for p, n in zip(predictions, numbers)) / len(numbers)


def save_model(model: FizBuzNet, path: Path = MODEL_PATH) -> Path:
    """Save the state_dict plus the layer sizes (so loaders can rebuild the network) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = {"input_size": model.hidden.in_features, "hidden_size": model.hidden.out_features,
             "output_size": model.out.out_features}
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")  # write then rename: readers never see half a file
    torch.save({"sizes": sizes, "state_dict": model.state_dict()}, partial)
    os.replace(partial, path)
    return path


def load_model(path: Path = MODEL_PATH, device: str | torch.device = "cpu") -> FizBuzNet:
    """Load a model written by ``save_model`` (``weights_only=True``), in eval mode.

    Raises:
        FileNotFoundError: no file at ``path`` (run chapter 2's notebook or ``load_or_train``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no FizzBuzz model at {path}; run chapter02_simple_nn/03_pytorch_way.ipynb "
                                "or call chapter02_simple_nn.fizbuz.load_or_train()")
    saved = torch.load(path, map_location=device, weights_only=True)
    model = FizBuzNet(**saved["sizes"]).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def load_or_train(path: Path = MODEL_PATH, device: str | torch.device = "cpu", epochs: int = 500,
                  seed: int = 0, progress: bool = False) -> FizBuzNet:
    """Return the saved FizzBuzz model, training it on the classic split (101..1023) and saving it first if missing.

    Used by chapter 8 to serve the chapter 2 model. Trains with the ``default`` profile's settings of chapter 2's
    notebook (Adam lr 0.02, batch 128, 500 epochs: 100/100 on 1..100), about 15 s on a 2-core CPU.
    """
    path = Path(path)
    if path.exists():
        return load_model(path, device)
    handson.seed_everything(seed)
    model = FizBuzNet().to(device)
    train_numbers, _ = classic_split()
    train_fizbuz(model, *make_tensors(train_numbers), epochs=epochs, batch_size=128, lr=0.02, seed=seed,
                 progress=progress)
    save_model(model, path)
    return model.eval()
