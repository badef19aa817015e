"""Chapter 8 Redis-backed serving against a real ``redis-server`` started here on a free loopback port: tensors
with dtype and shape, AI.SCRIPTRUN's addition, AI.MODELRUN equal to PyTorch, client timeouts, the HTTP API's redis
backend, and a worker killed mid-request whose requests another worker completes (nothing lost)."""
import shutil
import threading
import time

import numpy as np
import pytest
import torch

import handson
from chapter02_simple_nn.fizbuz import FizBuzNet, make_tensors
from chapter08_production import redis_serving as rs

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed (apt-get install redis-server)")


@pytest.fixture(scope="module")
def redis_url():
    with rs.redis_server(shutil.which("redis-server")) as url:
        yield url


@pytest.fixture
def client(redis_url):
    client = rs.connect(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def model():
    handson.seed_everything(3)
    return FizBuzNet().eval()


@pytest.fixture(scope="module")
def onnx_blob(model):
    from chapter08_production.onnx_export import export_onnx
    return export_onnx(model, path=None).SerializeToString()


@pytest.fixture
def thread_worker(client):
    """Workers in threads of this process (fast to start); stopped after the test."""
    workers = []

    def start(name="worker-t", **kwargs):
        worker = rs.Worker(rs.connect(rs.url_of(client)), rs.WorkerConfig(name=name, **kwargs))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        workers.append((worker, thread))
        return worker
    yield start
    for worker, thread in workers:
        worker.stop()
        thread.join(timeout=10)


@pytest.mark.parametrize("array", [np.arange(10, dtype=np.float32).reshape(1, 10), np.array(3.5),
                                   np.arange(24, dtype=np.int64).reshape(2, 3, 4), np.array([True, False]),
                                   np.zeros((0, 4), dtype=np.uint8)], ids=["float 1x10", "scalar", "int64 2x3x4",
                                                                           "bool", "empty"])
def test_tensorset_tensorget_keep_dtype_and_shape(client, array):
    rs.tensorset(client, "t", array)
    got = rs.tensorget(client, "t")
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert client.hget("t", "dtype") in {b"FLOAT", b"DOUBLE", b"INT64", b"BOOL", b"UINT8"}


def test_tensor_errors(client):
    with pytest.raises(KeyError, match="no tensor"):
        rs.tensorget(client, "missing")
    with pytest.raises(TypeError, match="unsupported tensor dtype"):
        rs.tensorset(client, "t", np.array(["a"]))
    with pytest.raises(ValueError, match="unknown backend"):
        rs.modelset(client, "m", "MXNET", b"")


def test_scriptrun_adds_the_books_tensors(client, thread_worker):
    thread_worker()
    rs.tensorset(client, "a", np.array([[1, 2], [3, 4]], dtype=np.float32))
    rs.tensorset(client, "b", np.array([[2, 4], [3, 4]], dtype=np.float32))
    rs.scriptset(client, "myscript", "def addtwo(a, b):\n    return a + b\n")
    rs.scriptrun(client, "myscript", "addtwo", ["a", "b"], ["c"])
    np.testing.assert_array_equal(rs.tensorget(client, "c"), [[3, 6], [6, 8]])


@pytest.mark.parametrize("backend", ["ONNX", "TORCH"])
def test_modelrun_equals_pytorch(client, thread_worker, model, onnx_blob, backend):
    blob = onnx_blob if backend == "ONNX" else rs.torch_blob(model)
    assert rs.modelset(client, "fizbuz", backend, blob) == 1
    thread_worker()
    x, _ = make_tensors(range(1024))
    with torch.no_grad():
        expected = model(x)
    rs.tensorset(client, "in", x.numpy())
    rs.modelrun(client, "fizbuz", ["in"], ["out"], timeout_s=30)
    torch.testing.assert_close(torch.from_numpy(rs.tensorget(client, "out")), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(rs.predict_logits(client, x[:1].numpy(), timeout_s=30)), expected[:1],
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(rs.RequestFailed, match="no model or script at key 'nope'"):
        rs.modelrun(client, "nope", ["in"], ["out"], timeout_s=30)
    with pytest.raises(rs.RequestFailed, match="no tensor at key 'absent'"):
        rs.modelrun(client, "fizbuz", ["absent"], ["out"], timeout_s=30)


def test_client_times_out_with_a_clear_error_and_withdraws_the_request(client):
    rs.tensorset(client, "in", np.zeros((1, 10), dtype=np.float32))
    started = time.monotonic()
    with pytest.raises(rs.RequestTimeout, match="no worker answered within 0.3 s"):
        rs.modelrun(client, "fizbuz", ["in"], ["out"], timeout_s=0.3)
    assert time.monotonic() - started < 5
    assert client.xlen(rs.STREAM) == 0


def test_http_api_redis_backend(client, thread_worker, model, onnx_blob):
    from chapter08_production.app import create_app
    rs.modelset(client, "fizbuz", "ONNX", onnx_blob)
    app = create_app({"BACKEND": "redis", "REDIS_URL": rs.url_of(client), "REDIS_TIMEOUT_S": 0.5})
    api = app.test_client()
    answer = api.post("/predict", json={"number": 15})
    assert answer.status_code == 503 and "did not answer" in answer.get_json()["message"]  # no worker yet
    thread_worker()
    app.extensions["fizbuz_backend"].timeout_s = 30  # workers are running now: give them time
    with torch.no_grad():
        labels = model(make_tensors(range(1024))[0]).argmax(1).tolist()
    got = api.post("/predict", json={"numbers": list(range(1024))}).get_json()["predictions"]
    assert [p["label"] for p in got] == labels


def test_killed_worker_loses_no_request(client, model, onnx_blob, thread_worker):
    """Worker 1 (a process, slowed down) takes 5 queued requests and is killed; worker 2 takes them over."""
    rs.modelset(client, "fizbuz", "ONNX", onnx_blob)
    x, _ = make_tensors(range(5))
    results, errors = {}, []

    def ask(i):
        try:
            own_client = rs.connect(rs.url_of(client))
            results[i] = rs.predict_logits(own_client, x[i:i + 1].numpy(), timeout_s=180)
        except Exception as error:  # reported below
            errors.append(error)
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    while client.xlen(rs.STREAM) < 5:  # the 5 requests are queued before any worker runs
        time.sleep(0.01)
    rs.ensure_group(client)
    slow = rs.start_workers(rs.url_of(client), 1, delay_s=600)
    try:
        deadline = time.monotonic() + 120
        while client.xpending(rs.STREAM, rs.GROUP)["pending"] < 5:  # worker 1 read all 5 in one batch
            assert time.monotonic() < deadline, "worker 1 did not take the requests"
            time.sleep(0.05)
        consumers = client.xpending(rs.STREAM, rs.GROUP)["consumers"]
        assert {c["name"]: c["pending"] for c in consumers} == {b"worker-1": 5}
        slow[0].kill()  # SIGKILL mid-request: no clean-up, no acknowledgement
        slow[0].wait()
        thread_worker("worker-2", claim_idle_ms=300)
        for t in threads:
            t.join(timeout=180)
    finally:
        rs.stop_workers(slow)
    assert not errors and sorted(results) == list(range(5))
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(np.concatenate([results[i] for i in range(5)])), expected,
                               atol=1e-5, rtol=1e-5)
    assert client.xpending(rs.STREAM, rs.GROUP)["pending"] == 0 and client.xlen(rs.STREAM) == 0
