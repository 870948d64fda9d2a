"""gunicorn settings for the web process (Procfile `web`)."""

import os

# Greenlets need not record who spawned them (gevent's default does, with a stack
# summary): it costs time per request and memory per open event stream.
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "0")

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Each open event stream holds one greenlet connection.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's default access line plus the request id the app logs with and echoes.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)


def post_worker_init(worker):
    """The loaded app's objects live as long as the worker: leave them out of every later
    garbage collection (with 1,000 streams open a full one scanned them for ~150 ms, a
    pause every stream shares)."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """A dead worker's open streams must stop counting (prometheus_client "livesum" gauges)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
