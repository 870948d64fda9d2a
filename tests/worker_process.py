"""Run the RQ worker in a process of its own, configured only by its environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRAIN = (
    "from worker import app\n"
    "from expense_sync.rq_worker import make_worker, redis_connection\n"
    "make_worker(app, redis_connection(app.config['REDIS_URL'])).work(burst=True)\n"
)


def run_worker_process(app, **env: str) -> subprocess.CompletedProcess:
    """Drain the queue with `worker.py`'s app, as production starts it: from the environment.

    A process of its own is the only way to start with settings that Python modules read at
    import (PROMETHEUS_MULTIPROC_DIR), and to capture everything it and its forked
    work-horses log.
    """
    environment = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "LOCAL_MAILBOX_ROOT": app.config["LOCAL_MAILBOX_ROOT"],
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", DRAIN],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done
