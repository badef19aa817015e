"""Start the FizzBuzz HTTP API under gunicorn (the production WSGI server), from a terminal or from Python.

Book: chapter 8, "Flask" (serving with gunicorn). From the repository root::

    python -m chapter08_production.serve                         # torch backend, 2 workers, http://127.0.0.1:8000
    python -m chapter08_production.serve --backend onnx --port 8001
    curl -s -X POST -H 'Content-Type: application/json' -d '{"input.1": 14}' \
         http://127.0.0.1:8000/predictions/fizbuz_package          # {"NextNumber": "FizBuz"}

The equivalent gunicorn command line is ``gunicorn -c chapter08_production/gunicorn.conf.py
'chapter08_production.app:create_app()'`` with ``FIZBUZ_BACKEND=onnx`` etc. in the environment (see ``app.py``).
``gunicorn_server`` is the same thing as a context manager, for tests, notebooks and the benchmark.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import handson
from chapter02_simple_nn.fizbuz import MODEL_PATH, load_or_train
from chapter08_production.onnx_export import ONNX_PATH, ensure_onnx

CHAPTER = "chapter08_production"
GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"
APP_FACTORY = "chapter08_production.app:create_app()"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_json(url: str, payload: object | None = None, method: str | None = None,
              timeout_s: float = 10.0) -> tuple[int, dict]:
    """Send ``payload`` as JSON (GET without one) and return ``(status, decoded JSON body)``; 4xx/5xx do not raise."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def prepare(backend: str, env: Mapping[str, str] | None = None) -> None:
    """Create the files the server's workers load (model checkpoint, ONNX file) once, before they start, so that
    several workers never train or export at the same time. The paths are the app's: ``FIZBUZ_MODEL_PATH`` and
    ``FIZBUZ_ONNX_PATH`` in ``env`` (default ``os.environ``), else the defaults."""
    env = os.environ if env is None else env
    model_path = Path(env.get("FIZBUZ_MODEL_PATH", MODEL_PATH))
    load_or_train(model_path)
    if backend == "onnx":
        ensure_onnx(Path(env.get("FIZBUZ_ONNX_PATH", ONNX_PATH)), model_path)


def gunicorn_command(host: str, port: int, workers: int) -> list[str]:
    """The gunicorn command line serving ``create_app()`` with our config file."""
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", f"{host}:{port}",
            "--workers", str(workers), APP_FACTORY]


@contextlib.contextmanager
def gunicorn_server(backend: str = "torch", workers: int = 2, port: int | None = None, host: str = "127.0.0.1",
                    env: dict[str, str] | None = None, start_timeout_s: float = 120.0) -> Iterator[str]:
    """Run gunicorn in a child process; yield its base URL (``http://127.0.0.1:PORT``) once ``/health`` answers;
    stop it (SIGTERM, then SIGKILL) on exit. Its log goes to ``artifacts/chapter08_production/gunicorn-PORT.log``
    (deleted when empty).

    ``env`` adds settings such as ``{"FIZBUZ_MODEL_PATH": ...}`` or ``{"FIZBUZ_REDIS_URL": ...}``.

    Raises:
        RuntimeError: the server exits or does not answer within ``start_timeout_s`` (the log's tail is included).
    """
    child_env = {**os.environ, "FIZBUZ_BACKEND": backend, **(env or {})}
    prepare(backend, child_env)
    port = port or free_port(host)
    log_path = handson.artifacts_dir(CHAPTER) / f"gunicorn-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(gunicorn_command(host, port, workers), env=child_env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=handson.REPO_ROOT)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if http_json(f"{url}/health", timeout_s=2.0)[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {start_timeout_s} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_path.exists() and log_path.stat().st_size == 0:  # keep only logs that say something
            log_path.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the FizzBuzz API with gunicorn.")
    parser.add_argument("--backend", choices=("torch", "onnx", "redis"), default="torch", help="inference backend")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (about one per core)")
    parser.add_argument("--redis-url", help="backend redis: the Redis holding the model and the request stream")
    args = parser.parse_args(argv)
    env = {**os.environ, "FIZBUZ_BACKEND": args.backend}
    if args.redis_url:
        env["FIZBUZ_REDIS_URL"] = args.redis_url
    prepare(args.backend, env)
    print(f"serving on http://{args.host}:{args.port} (backend {args.backend}, {args.workers} workers); Ctrl+C stops",
          flush=True)
    command = gunicorn_command(args.host, args.port, args.workers)
    os.execve(command[0], command, env)  # this process becomes gunicorn: signals (Ctrl+C, SIGTERM) reach it directly


if __name__ == "__main__":
    main()
