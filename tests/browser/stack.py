"""The live stack browser tests drive: gunicorn (gevent), a worker and Redis, on free ports."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "clave-del-navegador"


class LiveStack:
    """Real processes on free ports: what `make run` starts, with a throwaway database."""

    def __init__(self, workdir: Path):
        self.redis = RedisServer()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'live.sqlite3'}",
                    "REDIS_URL": self.redis.url, "PORT": str(self.port),
                    "LOCAL_MAILBOX_ROOT": str(workdir), "EXPENSE_SYNC_ENV": "test",
                    "JOB_RETRY_INTERVALS": "0"}
        self.flask("db", "upgrade")
        self.web = self.worker = None
        self.start_web()
        self.worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def flask(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                              env=self.env, check=True, capture_output=True, text=True).stdout

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1",
             "--bind", f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop_web(self) -> None:
        self.web.send_signal(signal.SIGTERM)
        try:
            self.web.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.web.kill()
            self.web.wait()

    def new_user(self, messages: int) -> str:
        """A user with one local Maildir account holding generated notifications."""
        email = f"{uuid.uuid4().hex[:8]}@example.cr"
        maildir = self.workdir / email
        subprocess.run([sys.executable, "-m", "expense_sync.demo", "maildir", str(maildir),
                        "--count", str(messages), "--seed", "5", "--to", email],
                       cwd=ROOT, check=True, capture_output=True)
        self.flask("create-user", email, "--password", PASSWORD)
        self.flask("add-account", "--user", email, "--bank", "bac", "--address", email,
                   "--maildir", str(maildir))
        return email

    def close(self) -> None:
        for process in (self.web, self.worker):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.redis.close()


def log_in(page, live, email):
    page.goto(live.url + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/sync")
