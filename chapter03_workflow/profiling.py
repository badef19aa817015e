"""What ``python -m torch.utils.bottleneck script.py`` used to do, rebuilt on ``cProfile`` and ``torch.profiler``.

Book: chapter 3, "Bottleneck and profiling". ``torch.utils.bottleneck`` ran a script twice, once under Python's
``cProfile`` and once under the autograd profiler, and printed an environment summary and the top entries of both
profiles. It is no longer shipped with PyTorch (it is absent from torch 2.14; ``torch.profiler`` replaced the autograd
profiler), so this module does the same with today's APIs:

    python -m chapter03_workflow.profiling chapter03_workflow/bottleneck_demo.py --epochs 3
    python -m chapter03_workflow.profiling --top 10 my_script.py --my-arg 1
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import runpy
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def run_script(path: str | Path, args: list[str] | None = None) -> None:
    """Run a Python file as ``__main__`` with ``sys.argv = [path, *args]`` (restored afterwards)."""
    saved = sys.argv
    sys.argv = [str(path), *(args or [])]
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved


def environment_summary() -> str:
    """A few lines on the versions and the hardware the profile was taken on."""
    cuda = torch.version.cuda or "not built with CUDA"
    lines = [f"Python {platform.python_version()}, torch {torch.__version__} (CUDA {cuda}), "
             f"CUDA available: {torch.cuda.is_available()}, CPU threads: {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name()}")
    return "\n".join(lines)


def cprofile_script(path: str | Path, args: list[str] | None = None, top: int = 15, sort: str = "tottime") -> str:
    """Run the script under ``cProfile`` and return the ``top`` functions sorted by ``sort`` as text."""
    profiler = cProfile.Profile()
    profiler.runcall(run_script, path, args)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort)
    stats.print_stats(top)
    return out.getvalue()


def torch_profile_script(path: str | Path, args: list[str] | None = None, top: int = 15) -> str:
    """Run the script under ``torch.profiler`` (CPU, plus CUDA when available) and return the top operators as text.

    Rows are sorted by self CPU time: the time spent in the operator itself, not in the operators it calls.
    """
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        run_script(path, args)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def bottleneck(path: str | Path, args: list[str] | None = None, top: int = 15) -> str:
    """The three reports of the old ``torch.utils.bottleneck``: environment, cProfile, torch.profiler.

    The script runs twice. The torch.profiler run goes first so that the cProfile run does not count the one-time
    imports and initialisation of the script's modules.
    """
    torch_report = torch_profile_script(path, args, top).strip()
    cprofile_report = cprofile_script(path, args, top).strip()
    rule = "-" * 79
    return "\n".join([
        rule, "Environment summary", rule, environment_summary(),
        rule, "cProfile output (sorted by own time)", rule, cprofile_report,
        rule, "torch.profiler output (sorted by self CPU time)", rule, torch_report,
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Profile a script like the old torch.utils.bottleneck did.")
    parser.add_argument("--top", type=int, default=15, help="rows to show in each profile")
    parser.add_argument("script", help="the Python file to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    ns = parser.parse_args(argv)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # silence the profiler library's C++ start/stop log lines
    print(bottleneck(ns.script, ns.args, ns.top))


if __name__ == "__main__":
    main()
