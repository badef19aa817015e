"""gunicorn settings for the FizzBuzz API (Book: chapter 8, "Flask": serve with a production WSGI server).

Use: gunicorn -c chapter08_production/gunicorn.conf.py 'chapter08_production.app:create_app()'
Command-line flags (--bind, --workers) override these values; FIZBUZ_* environment variables configure the app.
"""
import os

bind = os.environ.get("FIZBUZ_BIND", "127.0.0.1:8000")  # loopback only; put a reverse proxy in front for the outside
workers = int(os.environ.get("FIZBUZ_WORKERS", "2"))    # processes; about one per CPU core for CPU-bound inference
worker_class = "sync"        # one request at a time per process: inference is CPU-bound, nothing to overlap
timeout = 30                 # seconds before a stuck worker is killed and replaced
graceful_timeout = 10        # seconds to finish in-flight requests on SIGTERM
keepalive = 5                # seconds an idle keep-alive connection stays open (load generators reuse connections)
preload_app = False          # every worker loads the model itself after the fork (no state shared across forks)
accesslog = None             # no per-request log line: it costs throughput; errors still go to the error log
loglevel = "warning"


def post_fork(server, worker):
    """One intra-op thread per worker: the processes, not threads, use the cores (avoids oversubscription)."""
    os.environ.setdefault("FIZBUZ_NUM_THREADS", "1")
