"""`make run`: its own Redis when REDIS_URL is unset, migrations, demo data, web, worker and
scheduler.

Everything started here is stopped on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import RedisServer  # noqa: E402  the tests' throwaway redis-server


def wait_for_page(url: str, web: subprocess.Popen, limit: float = 60) -> None:
    """Wait until the login page answers.

    gunicorn listens at once, but each worker imports the app after it forks (about a
    second each on a quiet machine, several on a busy one): printed earlier, the URL led
    to a page that hung until then.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if web.poll() is not None:
            raise SystemExit("gunicorn exited before it answered")
        try:
            with urllib.request.urlopen(url + "/login", timeout=5) as response:
                response.read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no page answered at {url} within {limit:.0f} s")


def flask(*args: str, env: dict) -> None:
    subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C in a terminal, or SIGTERM from a supervisor: stop everything we started.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    processes: list[subprocess.Popen] = []
    env = dict(os.environ)
    port = env.setdefault("PORT", "5000")
    redis_server = None
    try:
        if not env.get("REDIS_URL"):
            # Debian's redis-server on a free port, without persistence: a demo's data.
            redis_server = RedisServer()
            env["REDIS_URL"] = redis_server.url
            print(f"Own Redis at {env['REDIS_URL']}")
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            # /metrics then adds up web workers and the RQ worker (fresh each run, as required).
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="expense-sync-metrics-")
        flask("db", "upgrade", env=env)
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                env.get("WEB_CONCURRENCY", "2"),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        processes.append(web)
        # The demo's mail is written while gunicorn's workers import the app.
        flask("seed-demo", env=env)
        url = f"http://127.0.0.1:{port}"
        wait_for_page(url, web)
        # Started once the pages answer, so its own import does not slow theirs down; a sync
        # started meanwhile waits in the queue.
        processes.append(
            subprocess.Popen(
                [str(BIN / "python"), "worker.py"], cwd=ROOT, env=env, start_new_session=True
            )
        )
        # Scheduled syncs: RQ's cron scheduler queues the dispatcher every minute.
        processes.append(
            subprocess.Popen(
                [str(BIN / "python"), "scheduler.py"], cwd=ROOT, env=env, start_new_session=True
            )
        )
        mail = (
            f"  Mail goes through {env['MAIL_SERVER']}."
            if env.get("MAIL_SERVER")
            else "  MAIL_SERVER is not set: registration and password-reset links are written\n"
            '  to this log (look for "this message was not sent").'
        )
        print(
            f"\n  expense_sync is running at {url}\n"
            "  Demo login: demo@expense-sync.cr / demo-expense-sync\n"
            "  The demo user's mail syncs by itself every 15 minutes, first in about 30 s.\n"
            f"{mail}\n  Ctrl-C stops it.\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # Newest first, so web and worker finish while Redis still answers; each runs in its
        # own process group, which also holds what it forked (the RQ scheduler, gunicorn's
        # workers).
        for process in reversed(processes):
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
        if redis_server is not None:
            redis_server.close()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
