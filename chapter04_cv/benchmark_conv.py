"""Benchmark: the hand-made convolution and pooling (loop, vectorised) against ``F.conv2d`` / ``F.max_pool2d``.

Book: chapter 4, "Convolutional neural networks" (why the library's layers, not the sliding-window loop, are used).

Times LeNet's layers on a LeNet-sized batch (the book's batch of 100 CIFAR-10 images), forward and forward+backward,
and prints each time as a ratio to the library's own function (1.0 = as fast as PyTorch). Timing: the minimum over
``repeats`` runs of the mean of ``number`` calls, which is the least sensitive to other programs on the machine.
Forward passes run under ``torch.no_grad()`` (inference); "fwd+bwd" also computes the gradients of the input and the
parameters (training).

    python -m chapter04_cv.benchmark_conv            # the LeNet-sized batch (about a minute)
    python -m chapter04_cv.benchmark_conv --smoke    # a tiny batch, seconds (what the tests run)
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chapter04_cv.layers import Conv, ConvUnfold, MaxPool, MaxPoolUnfold


@dataclass
class BenchConfig:
    batch_size: int = 100  # images per batch (the book's LeNet batch)
    number: int = 1  # calls per timing
    repeats: int = 30  # timings; the fastest is kept
    loop_repeats: int = 3  # timings for the (slow) loop versions
    include_loop: bool = True  # also time the didactic loops
    seed: int = 0  # input and weight draws


def _time(fn, number: int, repeats: int) -> float:
    """Seconds per call: the minimum over ``repeats`` of the mean over ``number`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def _step(layer_fn, x: torch.Tensor, params: list[torch.Tensor], backward: bool):
    """One forward pass (inference: no autograd graph), or forward + gradients of the input and the parameters."""
    def run():
        if backward:
            torch.autograd.grad(layer_fn(x).sum(), [x, *params])
        else:
            with torch.no_grad():
                layer_fn(x)
    return run


def main(config: BenchConfig | None = None) -> list[dict]:
    """Run the benchmark, print a table, return its rows ``{"layer", "pass", "impl", "ms", "ratio"}``."""
    cfg = config or BenchConfig()
    torch.manual_seed(cfg.seed)
    cases = [  # (name, input shape, our loop, our vectorised, the library)
        ("conv1 3->6 k5 32x32", (cfg.batch_size, 3, 32, 32), Conv(3, 6, 5), ConvUnfold(3, 6, 5), None),
        ("conv2 6->16 k5 14x14", (cfg.batch_size, 6, 14, 14), Conv(6, 16, 5), ConvUnfold(6, 16, 5), None),
        ("maxpool k2 6x28x28", (cfg.batch_size, 6, 28, 28), MaxPool(2), MaxPoolUnfold(2), lambda x: F.max_pool2d(x, 2)),
    ]
    rows = []
    print(f"batch {cfg.batch_size}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'layer':22s} {'pass':9s} {'implementation':14s} {'ms':>9s} {'x library':>9s}")
    for name, shape, loop, vectorised, library in cases:
        x = torch.randn(shape, requires_grad=True)
        if library is None:
            vectorised.load_state_dict(loop.state_dict())
            w, b = loop.weight, loop.bias
            library = lambda x, w=w, b=b: F.conv2d(x, w, b)  # noqa: E731
        torch.testing.assert_close(vectorised(x), library(x), rtol=1e-4, atol=1e-4)  # same numbers before timing
        for backward in (False, True):
            # (name, function, its parameters, calls per timing); F.conv2d uses the loop layer's weight and bias
            impls = [("F (PyTorch)", library, list(loop.parameters()), cfg.repeats),
                     ("vectorised", vectorised, list(vectorised.parameters()), cfg.repeats)]
            if cfg.include_loop:
                impls.append(("loop", loop, list(loop.parameters()), cfg.loop_repeats))
            base = None
            for impl, fn, params, repeats in impls:
                seconds = _time(_step(fn, x, params, backward), cfg.number, repeats)
                base = base or seconds
                row = {"layer": name, "pass": "fwd+bwd" if backward else "forward", "impl": impl,
                       "ms": seconds * 1e3, "ratio": seconds / base}
                rows.append(row)
                print(f"{name:22s} {row['pass']:9s} {impl:14s} {row['ms']:9.3f} {row['ratio']:9.1f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny batch, one repeat: seconds")
    parser.add_argument("--batch-size", type=int, default=BenchConfig.batch_size)
    parser.add_argument("--no-loop", action="store_true", help="skip the slow didactic loops")
    args = parser.parse_args()
    if args.smoke:
        main(BenchConfig(batch_size=4, repeats=1, loop_repeats=1))
    else:
        main(BenchConfig(batch_size=args.batch_size, include_loop=not args.no_loop))
