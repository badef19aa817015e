"""Build and run the C++ FizzBuzz predictor (``cpp/predict.cpp``) against the libtorch inside the installed torch wheel.

Book: chapter 8, "TorchScript" (the C++ loader built with CMake and ``find_package(Torch)``).

Command line (from the repository root)::

    python -m chapter08_production.build_cpp              # configure + build (artifacts/chapter08_production/cpp_build)
    python -m chapter08_production.build_cpp --run 14 15  # ... then save the TorchScript model and run the program

The build folder is kept, so a second build only re-links what changed (the first takes about a minute: the libtorch
headers are large). A CUDA build of the wheel makes ``find_package(Torch)`` look for the CUDA toolkit; we pass
``-DCUDA_TOOLKIT_ROOT_DIR`` when one is installed and otherwise configure with ``-DFIZBUZ_CPU_ONLY=ON`` (links the
wheel's CPU libraries directly; see ``cpp/CMakeLists.txt``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

import handson
from chapter02_simple_nn.fizbuz import load_or_train
from chapter08_production.torchscript_export import save_scripted

CHAPTER = "chapter08_production"
SOURCE_DIR = Path(__file__).resolve().parent / "cpp"
BUILD_DIR = handson.ARTIFACTS_DIR / CHAPTER / "cpp_build"
LINE_RE = re.compile(r"number=(\d+) label=(\d) text=(\S+) logits=\[([^\]]*)\]")


@dataclass
class CppPrediction:
    """One line of the C++ program's output: the number, its predicted class and the raw logits ``(4,)``."""
    number: int
    label: int
    text: str
    logits: list[float]


def missing_tools() -> list[str]:
    """Names of the build tools (``cmake``, a C++ compiler) that are not on ``PATH``; empty when we can build."""
    missing = [] if shutil.which("cmake") else ["cmake"]
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        missing.append("a C++ compiler (g++ or clang++)")
    return missing


def cuda_toolkit_root() -> Path | None:
    """The CUDA toolkit folder (``$CUDA_HOME`` or ``/usr/local/cuda``) if it has ``nvcc``, else None."""
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    return None


def configure_command(build_dir: Path = BUILD_DIR, cpu_only: bool | None = None) -> list[str]:
    """The ``cmake`` configure command line. ``cpu_only=None`` picks CPU-only linking when no CUDA toolkit is found."""
    command = ["cmake", "-S", str(SOURCE_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
               f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    cuda = cuda_toolkit_root()
    if cpu_only is None:
        cpu_only = torch.version.cuda is not None and cuda is None
    if cpu_only:
        command.append("-DFIZBUZ_CPU_ONLY=ON")
    else:
        command.append("-DFIZBUZ_CPU_ONLY=OFF")
        if cuda is not None:
            command.append(f"-DCUDA_TOOLKIT_ROOT_DIR={cuda}")
        nvrtc = nvrtc_library()
        if nvrtc is not None:  # TorchConfig links nvrtc; a CUDA wheel carries its own copy
            command += [f"-DCUDA_nvrtc_LIBRARY={nvrtc}", f"-DCUDA_NVRTC_LIB={nvrtc}"]
    return command


def nvrtc_library() -> Path | None:
    """The NVRTC library that ships with the torch wheel (``site-packages/nvidia/*/lib/libnvrtc.so*``), if any."""
    site_packages = Path(torch.__file__).resolve().parent.parent
    candidates = sorted(site_packages.glob("nvidia/*/lib/libnvrtc.so*")) + sorted(
        site_packages.glob("nvidia/*/*/lib/libnvrtc.so*"))
    candidates = [c for c in candidates if "builtins" not in c.name and "alt" not in c.name]
    return candidates[0] if candidates else None


def build(build_dir: Path = BUILD_DIR, cpu_only: bool | None = None, verbose: bool = False) -> Path:
    """Configure (once) and build the ``predict`` program; return the executable's path.

    With ``cpu_only=None``, a failed ``find_package(Torch)`` configure (e.g. a CUDA toolkit that does not match the
    wheel) is retried once with CPU-only linking.

    Raises:
        RuntimeError: cmake or a C++ compiler is missing, or configuring/building fails (with the tool's output).
    """
    try:
        return _build(Path(build_dir), cpu_only, verbose)
    except _ConfigureError:
        if cpu_only is not None or "-DFIZBUZ_CPU_ONLY=ON" in configure_command(Path(build_dir), cpu_only):
            raise
        print("find_package(Torch) failed: retrying with -DFIZBUZ_CPU_ONLY=ON")
        return _build(Path(build_dir), True, verbose)


class _ConfigureError(RuntimeError):
    """cmake's configure step failed."""


def _build(build_dir: Path, cpu_only: bool | None, verbose: bool) -> Path:
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"cannot build the C++ predictor: {' and '.join(missing)} not found "
                           "(Debian/Ubuntu: apt-get install cmake g++)")
    steps = []
    configure = configure_command(build_dir, cpu_only)
    stamp = build_dir / "configure-command.txt"  # re-configure only when the command changes
    if not (build_dir / "CMakeCache.txt").exists() or not stamp.exists() or stamp.read_text() != " ".join(configure):
        steps.append(configure)
    steps.append(["cmake", "--build", str(build_dir), "--parallel", "2"])
    for command in steps:
        result = subprocess.run(command, capture_output=True, text=True)
        if verbose or result.returncode:
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        if result.returncode:
            if command is configure:  # a failed configure must not leave a half-written cache behind
                shutil.rmtree(build_dir, ignore_errors=True)
                raise _ConfigureError(f"cmake configure failed with status {result.returncode}; see the output above")
            raise RuntimeError(f"{' '.join(command[:2])} failed with status {result.returncode}; see the output above")
        if command is configure:
            stamp.write_text(" ".join(configure))
    return build_dir / "predict"


def run_predict(executable: Path, model_path: Path, numbers: list[int]) -> list[CppPrediction]:
    """Run the C++ program on ``numbers`` and parse its lines.

    Raises:
        RuntimeError: the program exits with a non-zero status (its stderr is in the message).
    """
    result = subprocess.run([str(executable), str(model_path), *map(str, numbers)], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"predict exited with status {result.returncode}: {result.stderr.strip()}")
    predictions = []
    for match in LINE_RE.finditer(result.stdout):
        number, label, text, logits = match.groups()
        predictions.append(CppPrediction(int(number), int(label), text, [float(v) for v in logits.split(",")]))
    return predictions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="CMake build folder (kept between builds)")
    parser.add_argument("--cpu-only", action="store_true", help="link the wheel's CPU libraries without find_package")
    parser.add_argument("--run", type=int, nargs="*", metavar="N", help="save the TorchScript model and predict N...")
    parser.add_argument("--verbose", action="store_true", help="print CMake's output")
    args = parser.parse_args(argv)
    executable = build(args.build_dir, cpu_only=True if args.cpu_only else None, verbose=args.verbose)
    print(f"built {executable}")
    if args.run:
        model_path = save_scripted(load_or_train())
        for prediction in run_predict(executable, model_path, args.run):
            print(prediction)


if __name__ == "__main__":
    main()
