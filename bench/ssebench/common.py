"""The SSE bench's stack (Redis, database, gunicorn), its data and small helpers."""

from __future__ import annotations

import http.client
import os
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The product measured: this checkout, or another one (bench/sse_compare.py --product).
ROOT = Path(os.environ.get("BENCH_PRODUCT_ROOT") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-clave-sse-1"
STREAMS_EMAIL = "streams@bench.example.cr"
BROWSER_EMAIL = "browser@bench.example.cr"
IDLE_EMAIL = "idle@bench.example.cr"  # no sync yet: its dashboards' streams only wait
USER_AGENT = "expense-sync-bench/sse"  # Flask-Login "strong": one UA for login and streams
METRICS_TOKEN = "bench-metrics-token"
BANKS = ("bac", "davibank", "promerica")
ACCOUNT_TOTAL = 200_000  # emails per account: bars move but never reach 100 %
STEP = 37  # emails added to one account per publish

PROBE = "bench/sse_gunicorn_probe.py"  # the product's gunicorn settings, plus probes
GOAL_STREAMS = 10_000
GOAL_KB_PER_STREAM = 24.0
GOAL_KB_PER_IDLE_STREAM = 21.0  # an idle dashboard's stream
HEARTBEAT_EVERY = 15.0  # seconds, as the streams send them
GOAL_P50_MS = 5.0
GOAL_P99_MS = 50.0
GOAL_BROWSER_P95_MS = 5.0

# -- small helpers -------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def quiet_gc() -> None:
    """No collector pauses in the measuring processes (a bounded run; they keep little).

    A full collection of a process holding the app's modules takes ~50-100 ms: in the
    floor subscriber or the stream client it showed up as a latency spike of the product.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.disable()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    from servers import free_port as _free_port

    return _free_port()


def children(pid: int) -> list[int]:
    from servers import children as _children

    return list(_children(pid))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes of the machine have been busy (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed_redis(url: str):
    """A Redis client that notes when it last published on the product's channel
    (`last_publish`, epoch s): the moment a latency counts from."""
    import redis

    from expense_sync.progress import CHANNEL

    class TimedRedis(redis.Redis):
        last_publish = 0.0

        def publish(self, channel, message, **kwargs):
            if channel == CHANNEL:
                self.last_publish = time.time()
            return super().publish(channel, message, **kwargs)

    return TimedRedis.from_url(url)


# -- the stack: Redis, database, gunicorn ---------------------------------------------------


@dataclass
class Data:
    stream_tokens: list[str]
    stream_accounts: list[list[int]]
    browser_token: str
    browser_accounts: list[int]


class Stack:
    def __init__(self, workdir: Path, streams: int):
        from servers import RedisServer

        self.workdir = workdir
        self.redis = RedisServer()
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "REDIS_URL": self.redis.url,
            "EXPENSE_SYNC_ENV": "test",
            "RATELIMIT_ENABLED": "false",
            "WEB_CONCURRENCY": "1",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LOCAL_MAILBOX_ROOT": str(workdir),
            # One login opens every stream; the product lets a user hold 20 per process.
            "MAX_STREAMS_PER_USER": str(streams + 50),
        }
        # gunicorn.conf.py holds 10,000 connections by default; the bench needs a few more.
        if streams + 50 > 10_000:
            self.env["WORKER_CONNECTIONS"] = str(streams + 50)
        self.web: subprocess.Popen | None = None
        self.port = 0
        self.log = workdir / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self):
        from expense_sync import create_app

        os.environ.update(
            {
                k: self.env[k]
                for k in ("DATABASE_URL", "REDIS_URL", "RATELIMIT_ENABLED", "EXPENSE_SYNC_ENV")
            }
        )
        return create_app()

    def start_web(
        self, wsgi: str = "wsgi:app", config: str = "gunicorn.conf.py", env: dict | None = None
    ) -> None:
        self.stop_web()
        self.port = free_port()
        out = self.log.open("ab")
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                config,
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
                wsgi,
            ],
            cwd=ROOT,
            env={**self.env, "PORT": str(self.port), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log.read_text()[-3000:])
            try:
                status, _, _ = request(self.port, "GET", "/healthz")
                if status == 200 and self.worker_pid():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start:\n" + self.log.read_text()[-3000:])

    def worker_pid(self) -> int | None:
        pids = children(self.web.pid) if self.web else []
        return pids[0] if len(pids) == 1 else None

    def stop_web(self) -> None:
        if self.web is None:
            return
        if self.web.poll() is None:
            self.web.send_signal(signal.SIGQUIT)  # quick shutdown: streams do not drain
            try:
                self.web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()
        self.web = None

    def close(self) -> None:
        self.stop_web()
        self.redis.close()


def prepare_data(app, sessions: int) -> Data:
    """Migrate, then write users, accounts and running sessions; seed Redis for each."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from expense_sync.auth import create_user
    from expense_sync.extensions import db
    from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount, now_utc
    from expense_sync.progress_rows import seed_progress

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        # One user holds --sessions running syncs here, which the product forbids (one at a
        # time per user); the throwaway database drops that index so every stream follows the
        # running-session code path while one login serves them all.
        db.session.execute(sa.text("DROP INDEX IF EXISTS uq_sync_session_one_active"))
        db.session.commit()
        started = now_utc()

        def running(user, accounts) -> SyncSession:
            session = SyncSession(user_id=user.id, status="running", started_at=started)
            session.accounts = [
                SyncSessionAccount(
                    email_account=account,
                    status="processing",
                    total_emails=ACCOUNT_TOTAL,
                    started_at=started,
                )
                for account in accounts
            ]
            return session

        def accounts_of(user, email):
            rows = [
                EmailAccount(
                    user_id=user.id,
                    bank=bank,
                    address=f"{bank}.{email}",
                    source_kind="maildir",
                    local_path=f"/nonexistent/{bank}",
                )
                for bank in BANKS
            ]
            db.session.add_all(rows)
            return rows

        create_user(IDLE_EMAIL, PASSWORD)
        streams_user = create_user(STREAMS_EMAIL, PASSWORD)
        browser_user = create_user(BROWSER_EMAIL, PASSWORD)
        db.session.flush()
        stream_accounts = accounts_of(streams_user, STREAMS_EMAIL)
        browser_accounts = accounts_of(browser_user, BROWSER_EMAIL)
        db.session.flush()
        rows = [running(streams_user, stream_accounts) for _ in range(sessions)]
        browser = running(browser_user, browser_accounts)
        db.session.add_all([*rows, browser])
        db.session.commit()
        for session in [*rows, browser]:
            seed_progress(session)
        ids = [a.id for a in stream_accounts]
        return Data(
            [s.token for s in rows],
            [ids] * sessions,
            browser.token,
            [a.id for a in browser_accounts],
        )


# -- HTTP from the orchestrator -------------------------------------------------------------


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    from servers import http_request

    return http_request(port, method, path, body, headers, user_agent=USER_AGENT)


def log_in(port: int, email: str) -> str:
    """Log in through the real form; returns the Cookie header the streams send."""
    from servers import log_in_form

    return log_in_form(port, email, PASSWORD, USER_AGENT)


def read_first_event(port: int, path: str, cookie: str) -> bytes:
    """Open one stream, read up to its first event, close it (warm-up and checks)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "GET",
            path,
            headers={"User-Agent": USER_AGENT, "Cookie": cookie, "Accept": "text/event-stream"},
        )
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream {path}: HTTP {response.status}")
        data = b""
        while b"\n\n" not in data:
            chunk = response.read1(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        conn.close()


def open_streams_gauge(port: int) -> int | None:
    status, _, body = request(
        port, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    if status != 200:
        return None
    match = re.search(rb"^expense_sync_open_streams(?:\{[^}]*\})? ([0-9.e+]+)$", body, re.M)
    return int(float(match.group(1))) if match else None


def redis_clients(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return len(client.client_list())
    finally:
        client.close()
