"""Load-test the FizzBuzz API with locust: gunicorn on a free loopback port, locust headless for a bounded time.

Book: chapter 8, "Load testing with locust". For each target it starts the services, runs ``locustfile.py`` headless
(``--run-time``), parses locust's CSV and prints requests/s, p50/p99 latency (ms) and failures per request type.

- ``torch``: gunicorn + eager PyTorch; ``onnx``: gunicorn + ONNX Runtime;
- ``redis``: gunicorn queues each request on Redis, ``--redis-workers`` worker processes run the model (the
  RedisAI-style path of ``redis_serving.py``; a throw-away ``redis-server`` on a free port).

Usage (from the repository root)::

    python -m chapter08_production.benchmark                    # all targets, 15 s each
    python -m chapter08_production.benchmark --targets torch --run-time-s 5 --users 8
    python -m chapter08_production.benchmark --smoke            # 3 s, torch only

Everything binds 127.0.0.1; the load never leaves the machine. Locust and the server share the CPU: on a 2-core
machine the load generator takes a large part of it, so the numbers are a floor for the server alone.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import handson
from chapter08_production import redis_serving as rs
from chapter08_production.serve import gunicorn_server

CHAPTER = "chapter08_production"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
TARGETS = ("torch", "onnx", "redis")


@dataclass
class BenchmarkConfig:
    targets: tuple[str, ...] = TARGETS  # which serving paths to load
    users: int = 16                     # concurrent locust users, each sending requests back to back
    run_time_s: int = 15                # seconds of load per target (after all users have started)
    server_workers: int = 2             # gunicorn worker processes
    redis_workers: int = 2              # target redis: model worker processes next to Redis
    user_class: str = "FastFizBuzUser"  # locustfile class: FastFizBuzUser (cheap client) or FizBuzUser (HttpUser)


def run_locust(url: str, users: int, run_time_s: int, user_class: str, csv_prefix: Path) -> list[dict]:
    """Run locust headless against ``url``; return one row per request name plus ``Aggregated``: requests,
    failures, server_errors (5xx), req_per_s, p50_ms, p99_ms.

    Raises:
        RuntimeError: locust did not write its statistics (its output's tail is in the message).
    """
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(users),
               "--spawn-rate", str(users), "--run-time", f"{run_time_s}s", "--host", url, "--csv", str(csv_prefix),
               "--only-summary", "--stop-timeout", "2", "--loglevel", "WARNING", "--exit-code-on-error", "0",
               user_class]
    result = subprocess.run(command, capture_output=True, text=True, timeout=run_time_s + 120,
                            cwd=handson.REPO_ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    stats = Path(f"{csv_prefix}_stats.csv")
    if result.returncode or not stats.exists():
        raise RuntimeError(f"locust failed (status {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    server_errors: dict[str, int] = {}
    with open(f"{csv_prefix}_failures.csv") as f:
        for row in csv.DictReader(f):
            if re.search(r"got 5\d\d", row["Error"]):  # our locustfile's message for an unexpected 5xx
                server_errors[row["Name"]] = server_errors.get(row["Name"], 0) + int(row["Occurrences"])
    rows = []
    with open(stats) as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            rows.append({"name": name, "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                         "server_errors": sum(server_errors.values()) if name == "Aggregated"
                         else server_errors.get(name, 0),
                         "req_per_s": float(row["Requests/s"]), "p50_ms": float(row["50%"]),
                         "p99_ms": float(row["99%"])})
    return rows


@contextlib.contextmanager
def serving(target: str, config: BenchmarkConfig) -> Iterator[str]:
    """Start what ``target`` needs; yield the API's base URL."""
    if target != "redis":
        with gunicorn_server(target, workers=config.server_workers) as url:
            yield url
        return
    with rs.redis_server() as redis_url:
        client = rs.connect(redis_url)
        rs.store_fizbuz(client)
        with rs.running_workers(client, config.redis_workers), \
                gunicorn_server("redis", workers=config.server_workers, env={"FIZBUZ_REDIS_URL": redis_url}) as url:
            yield url


def format_table(rows: list[dict]) -> str:
    """The results as an aligned text table."""
    header = (f"{'target':<7} {'request':<32} {'requests':>8} {'fail':>5} {'5xx':>4} {'req/s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['target']:<7} {r['name']:<32} {r['requests']:>8} {r['failures']:>5} {r['server_errors']:>4} "
                     f"{r['req_per_s']:>8.1f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}")
    return "\n".join(lines)


def main(config: BenchmarkConfig) -> list[dict]:
    """Benchmark every target in ``config.targets``; print and return the rows (one per target and request type)."""
    out_dir = handson.artifacts_dir(CHAPTER, "locust")
    results: list[dict] = []
    for target in config.targets:
        with serving(target, config) as url:
            rows = run_locust(url, config.users, config.run_time_s, config.user_class, out_dir / target)
        results += [{"target": target, **row} for row in rows]
    print(format_table(results))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--run-time-s", type=int, default=15)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--redis-workers", type=int, default=2)
    parser.add_argument("--user-class", choices=("FastFizBuzUser", "FizBuzUser"), default="FastFizBuzUser")
    parser.add_argument("--smoke", action="store_true", help="a 3 s run of the torch target only")
    args = parser.parse_args()
    cfg = BenchmarkConfig(tuple(args.targets), args.users, args.run_time_s, args.server_workers, args.redis_workers,
                          args.user_class)
    if args.smoke:
        cfg.targets, cfg.run_time_s, cfg.users = ("torch",), 3, 4
    main(cfg)
