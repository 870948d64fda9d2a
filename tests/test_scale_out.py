"""Scaled out: two web processes behind HAProxy, two workers, PostgreSQL, and Redis with a
replica and three Sentinels, each a real process on its own port. A web process is killed
under 100 open streams, then the Redis primary mid-sync: every stream comes back through
the proxy with its Last-Event-ID and shows the end, and the sync ends with exact counts."""

import http.client
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from helpers import IMAP_PASSWORD, imap_account
from servers import (
    HAProxy,
    RedisServer,
    SentinelServer,
    free_port,
    gunicorn_command,
    http_request,
    kill_tree,
    log_in_form,
)

from expense_sync import create_app
from expense_sync.demo import generate_notifications
from expense_sync.extensions import db
from expense_sync.models import Expense, SyncSession, SyncSessionAccount, User
from expense_sync.sync import control

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "expense-sync"
STREAMS = 100
MESSAGES = 8000  # per account, two accounts: the sync runs through both failures
USER_AGENT = "scale-out-test"
PASSWORD = "clave-de-prueba-1"
SESSION_STATUS = re.compile(r'id="sync-progress"[^>]* data-status="([^"]*)"')


class Web:
    """One web host: gunicorn with the product's settings, one gevent worker."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.process = subprocess.Popen(
            gunicorn_command(self.port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def kill(self) -> None:
        kill_tree(self.process.pid)


def request(port, method, path):
    return http_request(port, method, path, user_agent=USER_AGENT)


def log_in(port: int, email: str) -> str:
    """The real login form, through the proxy; returns the Cookie header."""
    return log_in_form(port, email, PASSWORD, USER_AGENT)


class Watcher(threading.Thread):
    """A dashboard's stream through the proxy, reconnecting with Last-Event-ID as htmx's
    SSE extension does, until it shows the sync's end."""

    def __init__(self, port: int, cookie: str, deadline: float):
        super().__init__(daemon=True)
        self.port, self.cookie, self.deadline = port, cookie, deadline
        self.last_id: str | None = None
        self.connections = self.resumed = 0
        self.widget = ""  # the newest whole widget shown
        self.end: str | None = None
        self.first_event = threading.Event()

    def run(self) -> None:
        while self.end is None and time.monotonic() < self.deadline:
            headers = {"User-Agent": USER_AGENT, "Cookie": self.cookie}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/sync/stream", headers=headers)
                response = conn.getresponse()
                if response.status == 200:
                    self.connections += 1
                    self.resumed += "Last-Event-ID" in headers
                    self._read(response)
                conn.close()
            except (OSError, http.client.HTTPException):
                pass  # refused, reset or cut: try again, as a browser does
            time.sleep(0.2)

    def _read(self, response) -> None:
        event: dict = {"data": []}
        while self.end is None:
            line = response.readline()
            if not line:
                return  # the connection ended: reconnect
            line = line.decode().rstrip("\r\n")
            if line:
                name, _, value = line.partition(": ")
                if name == "data":
                    event["data"].append(value)
                else:
                    event[name] = value
                continue
            self.first_event.set()
            if "id" in event:
                self.last_id = event["id"]
            html = "\n".join(event["data"])
            if "event" not in event and html.startswith('<section id="sync-widget"'):
                self.widget = html
                if SESSION_STATUS.search(html).group(1) in ("completed", "failed"):
                    self.end = html
            event = {"data": []}


@pytest.fixture
def cluster(app, dovecot):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the scale-out runs on PostgreSQL (TEST_DATABASE_URL)")
    servers: list = []
    processes: list = []
    try:
        primary = RedisServer()
        servers.append(primary)
        redis.Redis(port=primary.port).config_set("repl-diskless-sync-delay", 0)
        replica = RedisServer(replica_of=primary.port)
        servers.append(replica)
        wait_for(lambda: replication(replica.port)["master_link_status"] == "up", "the replica")
        sentinels = [SentinelServer(primary.port, SERVICE) for _ in range(3)]
        servers += sentinels
        addresses = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        url = f"redis+sentinel://{addresses}/{SERVICE}"
        env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": url,
            "EXPENSE_SYNC_ENV": "test",
            "RATELIMIT_ENABLED": "false",  # one login opens every stream
            "MAX_STREAMS_PER_USER": str(STREAMS * 2),
            "JOB_RETRY_INTERVALS": "0",
        }
        webs = [Web(env) for _ in range(2)]
        processes += [w.process for w in webs]
        proxy = HAProxy([w.port for w in webs])
        servers.append(proxy)
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "worker.py"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        cluster_app = create_app({**app.config, "REDIS_URL": url, "RATELIMIT_STORAGE_URI": url})
        cluster_app.webs, cluster_app.proxy = webs, proxy
        cluster_app.primary, cluster_app.replica = primary, replica
        cluster_app.sentinels = sentinels
        yield cluster_app
    finally:
        for process in processes:
            kill_tree(process.pid)
        for server in reversed(servers):
            server.close()


def replication(port: int) -> dict:
    client = redis.Redis(port=port)
    try:
        return client.info("replication")
    finally:
        client.close()


def wait_for(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def session_row(cluster, token: str) -> SyncSession:
    with cluster.app_context():
        return db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()


def emails_stored(cluster, token: str) -> int:
    """What the accounts' committed batches hold so far (the session adds them up at the end)."""
    with cluster.app_context():
        return db.session.scalar(
            db.select(db.func.coalesce(db.func.sum(SyncSessionAccount.processed_emails), 0))
            .join(SyncSession)
            .where(SyncSession.token == token)
        )


def test_a_web_host_and_the_redis_primary_die_mid_sync(cluster, dovecot):
    from expense_sync.auth import create_user

    email = "escala@example.cr"
    mailboxes = []
    transactions = expenses = 0
    for seed in (11, 12):
        name = f"escala{seed}"
        # No forwarded copies: every transaction in the mailboxes is stored exactly once.
        notices = [
            n
            for n in generate_notifications(MESSAGES, seed=seed, to_address=email)
            if not n.variant.startswith("forward")
        ]
        read = [n.expected for n in notices if n.expected["status"] == "transaction"]
        transactions += len(read)
        expenses += sum(1 for t in read if t["direction"] == "out")
        dovecot.add_user(name, IMAP_PASSWORD)
        dovecot.append(name, [n.raw for n in notices])
        mailboxes.append(name)
    with cluster.app_context():
        user = create_user(email, PASSWORD)
        db.session.flush()
        for name in mailboxes:
            imap_account(user.id, dovecot, name)
        db.session.commit()
        user_id = user.id

    port = cluster.proxy.port
    cookie = log_in(port, email)
    deadline = time.monotonic() + 240
    watchers = [Watcher(port, cookie, deadline) for _ in range(STREAMS)]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        assert watcher.first_event.wait(30), "a stream did not open through the proxy"

    with cluster.app_context():
        token = control.start(db.session.get(User, user_id)).token
    wait_for(lambda: emails_stored(cluster, token) > 0, "the sync's first batch", timeout=60)

    # A web host dies under its streams, and the Redis primary right after: the streams
    # come back through the proxy, on the other host, which meanwhile follows the
    # Sentinels to the promoted replica; the workers wait for Redis and go on.
    cluster.webs[0].kill()
    assert session_row(cluster, token).status == "running", "the sync ended too soon"
    cluster.primary.stop()
    wait_for(lambda: replication(cluster.replica.port)["role"] == "master", "the failover")
    wait_for(lambda: sum(w.connections > 1 for w in watchers) >= STREAMS // 4, "reconnects")

    wait_for(
        lambda: session_row(cluster, token).status in ("completed", "failed"),
        "the sync's end",
        timeout=max(1.0, deadline - time.monotonic()),
    )
    for watcher in watchers:
        watcher.join(timeout=max(1.0, deadline - time.monotonic()))

    session = session_row(cluster, token)
    assert session.status == "completed", session.status
    assert session.processed_emails == session.total_emails > 2 * MESSAGES * 0.9
    assert session.detected_expenses == expenses
    with cluster.app_context():
        stored = db.session.scalar(
            db.select(db.func.count()).select_from(Expense).filter_by(user_id=user_id)
        )
    assert stored == transactions  # nothing lost, nothing stored twice
    moved = [w for w in watchers if w.connections > 1]
    assert moved and all(w.resumed for w in moved)
    for watcher in watchers:
        assert watcher.end is not None, (watcher.connections, watcher.widget[:200])
        assert SESSION_STATUS.search(watcher.end).group(1) == "completed"
        assert f'data-processed="{session.processed_emails}"' in watcher.end
