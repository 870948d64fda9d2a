"""`make run` (scripts/run_dev.py) on a scratch database, with its own redis-server."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_url_is_printed_once_a_page_has_answered(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3",
        "LOCAL_MAILBOX_ROOT": str(tmp_path / "mailboxes"),
        "PYTHONUNBUFFERED": "1",
        "WEB_CONCURRENCY": "1",
    }
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    run = subprocess.Popen(
        [sys.executable, "scripts/run_dev.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    before = []
    try:
        for line in run.stdout:
            if "is running at" in line:
                break
            before.append(line)
        else:
            raise AssertionError("".join(before))
        assert f"http://127.0.0.1:{port}" in line
        # gunicorn's access log: the page was asked for (and answered 200) by run_dev itself,
        # since this test has asked for nothing yet.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as response:
            assert "Iniciar sesión" in response.read().decode()
    finally:
        run.send_signal(signal.SIGTERM)
        rest, _ = run.communicate(timeout=60)
    log = "".join(before) + rest
    assert log.count('"GET /login HTTP/1.1" 200') == 2, log
