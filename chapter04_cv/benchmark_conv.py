"""Benchmark: the hand-made convolution and pooling (loop, vectorised) against ``F.conv2d`` / ``F.max_pool2d``.

Book: chapter 4, "Convolutional neural networks" (why the library's layers, not the sliding-window loop, are used).

Times LeNet's layers on a LeNet-sized batch (the book's batch of 100 CIFAR-10 images), forward and forward+backward,
and prints each time as a ratio to the library's own function (1.0 = as fast as PyTorch). Timing: ``rounds`` rounds,
each calling the library function and then the vectorised layer once; the ratio is the median over the rounds of
their quotient. Timing both in turn, rather than one after the other, makes the ratio robust to other programs and
to the machine's speed drifting. The slow loops are timed apart (median of ``loop_rounds`` calls). Forward passes run
under ``torch.no_grad()`` (inference); "fwd+bwd" also computes the gradients of the input and the parameters.

    python -m chapter04_cv.benchmark_conv            # the LeNet-sized batch (about 15 s)
    python -m chapter04_cv.benchmark_conv --no-loop  # the library and the vectorised layers only (seconds)
    OMP_NUM_THREADS=1 python -m chapter04_cv.benchmark_conv   # one CPU thread, as in the chapter's README
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chapter04_cv.layers import Conv, ConvUnfold, MaxPool, MaxPoolUnfold


@dataclass
class BenchConfig:
    batch_size: int = 100  # images per batch (the book's LeNet batch)
    rounds: int = 50  # library / vectorised rounds
    loop_rounds: int = 3  # calls of the (slow) loop versions
    include_loop: bool = True  # also time the didactic loops
    seed: int = 0  # input and weight draws


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _step(layer_fn, x: torch.Tensor, params: list[torch.Tensor], backward: bool):
    """One forward pass (inference: no autograd graph), or forward + gradients of the input and the parameters."""
    def run():
        if backward:
            torch.autograd.grad(layer_fn(x).sum(), [x, *params])
        else:
            with torch.no_grad():
                layer_fn(x)
    return run


def compare(library, vectorised, rounds: int) -> tuple[float, float, float]:
    """``(library seconds, vectorised seconds, ratio)``: medians over ``rounds`` rounds that call both in turn."""
    library(), vectorised()  # warm-up
    times = [(_seconds(library), _seconds(vectorised)) for _ in range(rounds)]
    return (statistics.median(t for t, _ in times), statistics.median(t for _, t in times),
            statistics.median(v / t for t, v in times))


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
    print(f"batch {cfg.batch_size}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"median of {cfg.rounds} rounds")
    print(f"{'layer':22s} {'pass':9s} {'implementation':14s} {'ms':>9s} {'x library':>9s}")
    for name, shape, loop, vectorised, library in cases:
        x = torch.randn(shape, requires_grad=True)
        if library is None:
            vectorised.load_state_dict(loop.state_dict())
            w, b = loop.weight, loop.bias
            library = lambda x, w=w, b=b: F.conv2d(x, w, b)  # noqa: E731
        torch.testing.assert_close(vectorised(x), library(x), rtol=1e-4, atol=1e-4)  # same numbers before timing
        for backward in (False, True):
            pass_name = "fwd+bwd" if backward else "forward"
            # F.conv2d uses the loop layer's weight and bias
            lib_step = _step(library, x, list(loop.parameters()), backward)
            lib_s, vec_s, ratio = compare(lib_step, _step(vectorised, x, list(vectorised.parameters()), backward),
                                          cfg.rounds)
            timed = [("F (PyTorch)", lib_s, 1.0), ("vectorised", vec_s, ratio)]
            if cfg.include_loop:
                loop_step = _step(loop, x, list(loop.parameters()), backward)
                loop_s = statistics.median(_seconds(loop_step) for _ in range(cfg.loop_rounds))
                timed.append(("loop", loop_s, loop_s / lib_s))
            for impl, seconds, ratio in timed:
                row = {"layer": name, "pass": pass_name, "impl": impl, "ms": seconds * 1e3, "ratio": ratio}
                rows.append(row)
                print(f"{name:22s} {pass_name:9s} {impl:14s} {row['ms']:9.3f} {ratio:9.1f}")
    for pass_name in ("forward", "fwd+bwd"):  # LeNet's two convolutions together, as a network would run them
        ms = {impl: sum(r["ms"] for r in rows if r["pass"] == pass_name and r["impl"] == impl
                        and r["layer"].startswith("conv")) for impl in ("F (PyTorch)", "vectorised")}
        print(f"LeNet conv1 + conv2, {pass_name}: vectorised {ms['vectorised'] / ms['F (PyTorch)']:.1f} x library")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny batch, few rounds: seconds")
    parser.add_argument("--batch-size", type=int, default=BenchConfig.batch_size)
    parser.add_argument("--rounds", type=int, default=BenchConfig.rounds)
    parser.add_argument("--no-loop", action="store_true", help="skip the slow didactic loops")
    args = parser.parse_args()
    if args.smoke:
        main(BenchConfig(batch_size=4, rounds=3, loop_rounds=1))
    else:
        main(BenchConfig(batch_size=args.batch_size, rounds=args.rounds, include_loop=not args.no_loop))
