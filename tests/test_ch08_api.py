"""Chapter 8 HTTP API: the book's contract, our JSON endpoint, every malformed request (Flask test client and a real
gunicorn on a free loopback port), and the ONNX Runtime backend answering like the PyTorch one."""
import http.client
import json

import pytest
import torch

import handson
from chapter02_simple_nn.fizbuz import LABELS, FizBuzNet, fizbuz_text, make_tensors, save_model
from chapter08_production.app import BOOK_ANSWERS, create_app
from chapter08_production.onnx_export import export_onnx
from chapter08_production.serve import gunicorn_server

BOOK = "/predictions/fizbuz_package"
JSON = "application/json"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """An untrained (seeded) FizzBuzz model and its ONNX export: the API must answer what the model says."""
    folder = tmp_path_factory.mktemp("ch08_api")
    handson.seed_everything(0)
    model = FizBuzNet().eval()
    model_path = save_model(model, folder / "fizbuz.pt")
    export_onnx(model, folder / "fizbuz.onnx")
    return model, model_path, folder / "fizbuz.onnx"


@pytest.fixture(scope="module")
def client(model_files):
    _, model_path, _ = model_files
    return create_app({"MODEL_PATH": str(model_path), "NUM_THREADS": 1}).test_client()


def expected_labels(model, numbers):
    with torch.no_grad():
        return model(make_tensors(numbers)[0]).argmax(1).tolist()


def test_book_contract_answers_for_next_number(client, model_files):
    model = model_files[0]
    numbers = list(range(0, 1023, 7)) + [1022]
    for n, label in zip(numbers, expected_labels(model, [n + 1 for n in numbers])):
        response = client.post(BOOK, json={"input.1": n})
        assert response.status_code == 200 and response.is_json
        assert response.get_json() == {"NextNumber": BOOK_ANSWERS[label] if label < 3 else n + 1}


def test_predict_single_and_batch_cover_every_number(client, model_files):
    numbers = list(range(1024))
    labels = expected_labels(model_files[0], numbers)
    batch = client.post("/predict", json={"numbers": numbers}).get_json()["predictions"]
    assert [p["label"] for p in batch] == labels
    assert batch[15] == {"number": 15, "label": labels[15], "name": LABELS[labels[15]],
                         "answer": fizbuz_text(15, labels[15])}
    assert client.post("/predict", json={"number": 15}).get_json() == batch[15]
    assert client.post("/predict", json={"number": 0}).status_code == 200  # 0 is a valid number


def test_health(client):
    assert client.get("/health").get_json() == {"status": "ok", "backend": "torch", "input_size": 10,
                                                "max_number": 1023}


MALFORMED = [  # (id, method, path, request kwargs, status, fragment of the message)
    ("missing body", "post", BOOK, {}, 400, "empty"),
    ("invalid json", "post", BOOK, {"data": "{'input.1': 3", "content_type": JSON}, 400, "not valid JSON"),
    ("not an object", "post", BOOK, {"json": [3]}, 400, "JSON object"),
    ("wrong key", "post", BOOK, {"json": {"input": 3}}, 400, "unknown key"),
    ("no key", "post", BOOK, {"json": {}}, 400, "missing key"),
    ("extra key", "post", BOOK, {"json": {"input.1": 3, "x": 1}}, 400, "unknown key"),
    ("null", "post", BOOK, {"json": {"input.1": None}}, 422, "got null"),
    ("bool", "post", BOOK, {"json": {"input.1": True}}, 422, "got boolean"),
    ("float", "post", BOOK, {"json": {"input.1": 3.0}}, 422, "got number"),
    ("string", "post", BOOK, {"json": {"input.1": "3"}}, 422, "got string"),
    ("negative", "post", BOOK, {"json": {"input.1": -1}}, 422, "from 0 to 1022"),
    ("1023 overflows n + 1", "post", BOOK, {"json": {"input.1": 1023}}, 422, "from 0 to 1022"),
    ("huge", "post", BOOK, {"json": {"input.1": 10 ** 40}}, 422, "41-digit"),
    ("too many digits", "post", BOOK, {"data": '{"input.1": ' + "9" * 5000 + "}", "content_type": JSON}, 400,
     "too many digits"),
    ("NaN", "post", BOOK, {"data": '{"input.1": NaN}', "content_type": JSON}, 400, "NaN"),
    ("infinity", "post", BOOK, {"data": '{"input.1": 1e999}', "content_type": JSON}, 422, "Infinity"),
    ("deep nesting", "post", BOOK, {"data": "[" * 5000 + "]" * 5000, "content_type": JSON}, 400, "nested"),
    ("oversized body", "post", BOOK, {"data": '{"input.1": 3, "pad": "' + "x" * 20000 + '"}', "content_type": JSON},
     413, "larger than"),
    ("wrong method", "get", BOOK, {}, 405, "use POST"),
    ("wrong content type", "post", BOOK, {"data": "input.1=3", "content_type": "application/x-www-form-urlencoded"},
     415, "application/json"),
    ("text/plain json", "post", BOOK, {"data": '{"input.1": 3}', "content_type": "text/plain"}, 415, "Content-Type"),
    ("unknown path", "post", "/predictions/other", {"json": {"input.1": 3}}, 404, "not found"),
    ("predict 1024", "post", "/predict", {"json": {"number": 1024}}, 422, "from 0 to 1023"),
    ("predict both keys", "post", "/predict", {"json": {"number": 1, "numbers": [1]}}, 400, "only one"),
    ("predict empty batch", "post", "/predict", {"json": {"numbers": []}}, 422, "1 to 1024"),
    ("predict batch too big", "post", "/predict", {"json": {"numbers": [1] * 1025}}, 422, "1 to 1024"),
    ("predict bad item", "post", "/predict", {"json": {"numbers": [1, None]}}, 422, "numbers[1]"),
    ("predict not a list", "post", "/predict", {"json": {"numbers": 5}}, 422, "array"),
]


@pytest.mark.parametrize("method, path, kwargs, status, fragment", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_4xx_json_and_server_keeps_serving(client, method, path, kwargs, status, fragment):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.content_type == JSON
    body = response.get_json()
    assert body["status"] == status and fragment.lower() in body["message"].lower(), body
    assert client.post(BOOK, json={"input.1": 14}).status_code == 200


def test_onnx_backend_answers_like_torch(client, model_files):
    _, model_path, onnx_path = model_files
    onnx_client = create_app({"BACKEND": "onnx", "MODEL_PATH": str(model_path), "ONNX_PATH": str(onnx_path),
                              "NUM_THREADS": 1}).test_client()
    assert onnx_client.get("/health").get_json()["backend"] == "onnx"
    numbers = {"numbers": list(range(1024))}
    assert onnx_client.post("/predict", json=numbers).get_json() == client.post("/predict", json=numbers).get_json()


def test_unknown_backend_is_a_clear_error(model_files):
    with pytest.raises(ValueError, match="unknown BACKEND"):
        create_app({"BACKEND": "mxnet", "MODEL_PATH": str(model_files[1])})


def raw_request(port, method, path, body=b"", headers=None):
    """One request on a fresh connection with full control over the bytes; returns (status, JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_real_gunicorn_serves_and_survives_malformed_requests(model_files):
    model, model_path, _ = model_files
    with gunicorn_server("torch", workers=1, env={"FIZBUZ_MODEL_PATH": str(model_path)}) as url:
        port = int(url.rsplit(":", 1)[1])
        assert url.startswith("http://127.0.0.1:")
        ok = {"Content-Type": JSON}
        label = expected_labels(model, [15])[0]
        status, body = raw_request(port, "POST", BOOK, b'{"input.1": 14}', ok)
        assert status == 200 and body == {"NextNumber": BOOK_ANSWERS[label] if label < 3 else 15}
        cases = [("POST", BOOK, b"", ok, 400), ("POST", BOOK, b"{bad", ok, 400),
                 ("POST", BOOK, b'{"input": 1}', ok, 400), ("POST", BOOK, b'{"input.1": 1023}', ok, 422),
                 ("POST", BOOK, b'{"input.1": 3}', {"Content-Type": "text/plain"}, 415),
                 ("POST", BOOK, b'{"input.1": "' + b"x" * 20000 + b'"}', ok, 413),
                 ("GET", BOOK, b"", {}, 405), ("DELETE", "/predict", b"", {}, 405)]
        for method, path, body, headers, status in cases:
            got, answer = raw_request(port, method, path, body, headers)
            assert (got, answer["status"]) == (status, status), (method, path, body[:30], answer)
        status, body = raw_request(port, "POST", "/predict", b'{"numbers": [3, 5, 15]}', ok)
        assert status == 200 and [p["label"] for p in body["predictions"]] == expected_labels(model, [3, 5, 15])
