"""TorchScript (trace and script) and its successor ``torch.export`` for the chapter 2 FizzBuzz model.

Book: chapter 8, "TorchScript". TorchScript is deprecated in today's PyTorch (``torch.jit.trace``, ``script`` and
``save`` emit a ``FutureWarning``); it is still the format libtorch's C++ ``torch::jit::load`` reads, so we keep it for
the C++ program and silence exactly that warning in ``quiet_torchscript``. ``torch.export`` is the successor.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

import handson

CHAPTER = "chapter08_production"
SCRIPT_PATH = handson.ARTIFACTS_DIR / CHAPTER / "fizbuz_script.pt"
EXPORT_PATH = handson.ARTIFACTS_DIR / CHAPTER / "fizbuz_export.pt2"


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Ignore only the "`torch.jit.*` is deprecated" FutureWarnings inside the block (every other warning shows)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


class ZeroIsFizzBuzz(nn.Module):
    """Wrap a FizzBuzz classifier with a data-dependent branch: an all-zero input (the number 0) is answered
    "FizzBuzz" (0 is divisible by 15) without asking the network.

    Input ``(1, input_size)`` float bits; output ``(1, 4)`` logits. The Python ``if`` on a tensor's value is what
    ``torch.jit.trace`` cannot record: it keeps only the branch the example input took. ``torch.jit.script`` compiles
    the ``if`` and keeps both branches.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if bool(batch.sum() == 0):
            return torch.tensor([[10.0, 0.0, 0.0, 0.0]])  # certain FizzBuzz
        return self.net(batch)


def save_scripted(model: nn.Module, path: Path = SCRIPT_PATH) -> Path:
    """Compile ``model`` with ``torch.jit.script`` (CPU, eval mode) and save it for libtorch's ``torch::jit::load``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(model), str(path))
    return path


def export_fizbuz(model: nn.Module, input_size: int = 10) -> torch.export.ExportedProgram:
    """``torch.export`` the model (moved to CPU, eval mode) with a dynamic batch size.

    The exported program takes ``(batch, input_size)`` float32, batch 1 to 4096, and returns ``(batch, 4)`` logits.
    """
    example = torch.zeros(2, input_size)  # batch 2: an example batch of 1 would be specialised to 1
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model.to("cpu").eval(), (example,), dynamic_shapes=({0: batch},))


def export_program(model: nn.Module, path: Path = EXPORT_PATH, input_size: int = 10) -> Path:
    """Save ``export_fizbuz(model, input_size)`` as a ``.pt2`` archive at ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(export_fizbuz(model, input_size), path)
    return path
