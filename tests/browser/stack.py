"""The live stack browser tests drive: gunicorn (gevent), a worker and Redis, on free ports."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from servers import DovecotServer, RedisServer, free_port, gunicorn_command
from smtp_server import SmtpServer

from expense_sync import create_app
from expense_sync.config import from_environment
from expense_sync.demo import generate_notifications, write_maildir
from expense_sync.extensions import db

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright):
    """Debian's Chromium, headless: how every browser test and the benchmarks start it."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


PASSWORD = "clave-del-navegador"


class LiveStack:
    """Real processes on free ports: what `make run` starts, with a throwaway database.

    The `flask` commands run in the test's process, on an app configured from the same
    environment: as subprocesses each spent ~0.9 s starting Python and importing the app.
    """

    def __init__(self, workdir: Path):
        self.redis = RedisServer()
        self.smtp = SmtpServer()  # registration and password-reset links arrive here
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'live.sqlite3'}",
            "REDIS_URL": self.redis.url,
            "PORT": str(self.port),
            "LOCAL_MAILBOX_ROOT": str(workdir),
            "EXPENSE_SYNC_ENV": "test",
            "JOB_RETRY_INTERVALS": "0",
            "MAIL_SERVER": "127.0.0.1",
            # Every browser test logs in from 127.0.0.1: more than 10 a minute.
            "LOGIN_LIMIT_PER_ADDRESS": "200 per minute",
            "MAIL_PORT": str(self.smtp.port),
            "MAIL_USE_TLS": "false",
        }
        self.cli = create_app(from_environment(str(workdir), self.env)).test_cli_runner()
        self.flask("db", "upgrade")
        self.web = self.worker = None
        self.start_web()
        self.worker = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def flask(self, *args: str) -> str:
        """Run a `flask --app wsgi` command against the stack's database; return its output."""
        result = self.cli.invoke(args=list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def start_web(self) -> None:
        # An open event stream never ends by itself, so on SIGTERM gunicorn waits out its
        # whole graceful timeout (10 s) before it stops the worker and the browser sees the
        # stream cut; with 1 s the browser sees the same cut 9 s sooner.
        self.web = subprocess.Popen(
            gunicorn_command(self.port, "--graceful-timeout", "1"),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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

    def new_user(self, messages: int, imap: DovecotServer | None = None) -> str:
        """A user with one account holding generated notifications: a local Maildir, or
        with `imap` a mailbox of that server, read over plain IMAP."""
        email = f"{uuid.uuid4().hex[:8]}@example.cr"
        # The mail `python -m expense_sync.demo maildir DIR --count N --seed 5 --to EMAIL` writes.
        notices = generate_notifications(messages, seed=5, to_address=email)
        if imap is None:
            maildir = self.workdir / email
            write_maildir(maildir, notices)
            source = ["--maildir", str(maildir)]
        else:
            imap.add_user(email, PASSWORD)
            imap.append(email, (notice.raw for notice in notices))
            source = [
                "--imap-host",
                imap.host,
                "--imap-port",
                str(imap.port),
                "--imap-user",
                email,
                "--imap-password",
                PASSWORD,
                "--imap-security",
                "none",
            ]
        self.flask("create-user", email, "--password", PASSWORD)
        self.flask("add-account", "--user", email, "--bank", "bac", "--address", email, *source)
        return email

    def user_folder(self, email: str) -> Path:
        """The user's own folder of the mailbox root, where their local sources go."""
        from expense_sync.auth import find_user
        from expense_sync.forms import user_folder

        with self.cli.app.app_context():
            return user_folder(str(self.workdir), find_user(email).id)

    def close(self) -> None:
        for process in (self.web, self.worker):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        with self.cli.app.app_context():
            db.engine.dispose()
        self.redis.close()
        self.smtp.close()


def log_in(page, live, email):
    page.goto(live.url + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/sync")


def wait_until(page, expression: str, timeout: float = 60) -> None:
    """Poll a JS expression from Python: wait_for_function would eval() past our CSP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")
