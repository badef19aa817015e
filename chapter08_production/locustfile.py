"""Load test for the FizzBuzz API with locust (Book: chapter 8, "Load testing with locust").

The book's tasks: a success task (a random number 0..1000 to the book's endpoint) and failure tasks (an empty body,
a wrong key). A failure task's 4xx answer is what we expect, so ``catch_response`` marks it a success; anything else
(a 200, or any 5xx) is counted as a failure. Run headless against a running server (see serve.py)::

    locust -f chapter08_production/locustfile.py --headless -u 20 -r 20 -t 15s --host http://127.0.0.1:8000

or let ``python -m chapter08_production.benchmark`` start the server and parse the results. ``FizBuzUser`` uses
locust's ``HttpUser`` (python-requests, as in the book); ``FastFizBuzUser`` the same tasks on ``FastHttpUser``
(geventhttpclient), which costs the load generator less CPU — the benchmark's default. Users send requests
back to back (no wait time): the point is the server's capacity. This file must not import torch: locust
monkey-patches the standard library with gevent when it starts.
"""
import random

from locust import FastHttpUser, HttpUser, constant

BOOK_URL = "/predictions/fizbuz_package"


def _expect(response, status: int, key: str | None = None) -> None:
    """Mark ``response`` a success if it has ``status`` (and a JSON body with ``key``), else a failure."""
    if response.status_code != status:
        response.failure(f"expected HTTP {status}, got {response.status_code}: {response.text[:80]}")
    elif key is not None and key not in response.json():
        response.failure(f"no {key!r} in the answer: {response.text[:80]}")
    else:
        response.success()


def book_success(user) -> None:
    """The book's success task: a random number 0..1000 to the book's endpoint."""
    with user.client.post(BOOK_URL, json={"input.1": random.randint(0, 1000)}, name="book: valid number",
                          catch_response=True) as response:
        _expect(response, 200, "NextNumber")


def book_empty_body(user) -> None:
    """The book's failure task: no body at all. The right answer is 400."""
    with user.client.post(BOOK_URL, name="book: empty body (expects 400)", catch_response=True) as response:
        _expect(response, 400, "error")


def book_wrong_key(user) -> None:
    """The book's failure task: a JSON object with the wrong key. The right answer is 400."""
    with user.client.post(BOOK_URL, json={"input": random.randint(0, 1000)}, name="book: wrong key (expects 400)",
                          catch_response=True) as response:
        _expect(response, 400, "error")


def predict_json(user) -> None:
    """Our JSON endpoint: one number 0..1023."""
    with user.client.post("/predict", json={"number": random.randint(0, 1023)}, name="predict: one number",
                          catch_response=True) as response:
        _expect(response, 200, "label")


TASKS = {book_success: 4, book_empty_body: 1, book_wrong_key: 1, predict_json: 4}  # relative weights


class FizBuzUser(HttpUser):
    """The book's user on locust's HttpUser (python-requests)."""
    tasks = TASKS
    wait_time = constant(0)


class FastFizBuzUser(FastHttpUser):
    """The same tasks on FastHttpUser: a cheaper client, so more of the CPU is left to the server."""
    tasks = TASKS
    wait_time = constant(0)
