"""Faults injected into real syncs, repeated: does every one end exact, and how soon?

    .venv/bin/python bench/chaos.py [--runs 10] [--messages 1500] [--scenario all]
                                    [--database-url postgresql://...]

Loopback only, bounded: its own Redis and Dovecot (tests/servers.py), real `python worker.py`
processes, generated notices (`expense_sync.demo`) with known expected expenses. Each run
starts a sync of a fresh mailbox, injects one fault at a random point, and waits for the end:

- ``worker-kill``: the worker and its work-horse SIGKILLed; a new worker started at once
  (production retry intervals). Recovery: new worker started -> sync completed.
- ``redis-down``: Redis stopped for 10 s, then started empty (no persistence). Recovery:
  Redis back -> sync completed.
- ``imap-restart``: Dovecot stopped for 5 s, then started again. Recovery: Dovecot back ->
  sync completed.
- ``stuck``: a session left "running" by hand with its account "processing" and no job;
  the user presses "Sincronizar". Recovery: the press -> sync completed.

A run whose sync ended before the fault could hit it is not counted, and another is made.
Prints, per scenario: runs, runs not completed, expenses lost, duplicated and wrong (stored
but not expected), and seconds to recover (median and worst). SQLite (a temp file) unless
--database-url, whose schema ``public`` is DROPPED and recreated first: use a database of its
own. The exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from helpers import identity, stored_identities  # noqa: E402
from servers import DovecotServer, RedisServer, kill_tree  # noqa: E402

from expense_sync import create_app  # noqa: E402
from expense_sync.extensions import db  # noqa: E402

PASSWORD = "chaos-clave-1"
SCENARIOS = ("worker-kill", "redis-down", "imap-restart", "stuck")
END_TIMEOUT = 180  # seconds; a run that has not ended by then counts as not completed


@dataclass
class Tally:
    runs: int = 0
    late: int = 0
    incomplete: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    recovery: list[float] = field(default_factory=list)


class Stack:
    """Redis, Dovecot, the app and its worker processes."""

    def __init__(self, database_url: str | None, workdir: Path):
        from flask_migrate import upgrade

        from expense_sync.config import database_url as driver_url

        self.redis = RedisServer()
        self.imap = DovecotServer()
        uri = driver_url(database_url or f"sqlite:///{workdir / 'chaos.sqlite3'}", "")
        self.app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": uri,
                "REDIS_URL": self.redis.url,
                "RATELIMIT_STORAGE_URI": self.redis.url,
                "LOCAL_MAILBOX_ROOT": str(workdir),
            }
        )
        with self.app.app_context():
            if database_url:
                with db.engine.begin() as conn:
                    conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                    conn.execute(sa.text("CREATE SCHEMA public"))
            upgrade(directory=str(ROOT / "migrations"))
        self.env = {
            **os.environ,
            "DATABASE_URL": uri,
            "REDIS_URL": self.redis.url,
            "EXPENSE_SYNC_ENV": "test",
            "JOB_RETRY_INTERVALS": "10,30,60,120,300",
        }
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def kill_workers(self) -> None:
        for process in self.workers:
            kill_tree(process.pid)
        self.workers.clear()

    def close(self) -> None:
        self.kill_workers()
        self.imap.close()
        self.redis.close()


def new_user_with_mailbox(stack: Stack, messages: int, seed: int) -> tuple[int, set]:
    from expense_sync.accounts import apply_settings
    from expense_sync.auth import create_user
    from expense_sync.demo import generate_notifications
    from expense_sync.models import EmailAccount

    mailbox = f"chaos{uuid.uuid4().hex[:8]}"
    stack.imap.add_user(mailbox, PASSWORD)
    generated = list(
        generate_notifications(messages, seed=seed, to_address=f"{mailbox}@example.cr")
    )
    stack.imap.append(mailbox, [g.raw for g in generated])
    expected = {
        identity(e["bank"], e["kind"], e["amount"], e["currency"], e["reference"], e["occurred_at"])
        for e in (g.expected for g in generated)
        if e["status"] == "transaction"
    }
    with stack.app.app_context():
        user = create_user(f"{mailbox}@example.cr", "x" * 12)
        db.session.flush()
        account = EmailAccount(user_id=user.id)
        apply_settings(
            account,
            {
                "bank": "bac",
                "address": f"{mailbox}@example.cr",
                "source_kind": "imap",
                "imap_host": stack.imap.host,
                "imap_port": stack.imap.port,
                "imap_security": "none",
                "imap_user": mailbox,
                "imap_password": PASSWORD,
                "folder": "INBOX",
            },
        )
        db.session.add(account)
        db.session.commit()
        return user.id, expected


def session_state(stack: Stack, token: str) -> dict:
    from expense_sync.models import SyncSession
    from expense_sync.sync import control

    with stack.app.app_context():
        session = db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()
        return control.state(session)


def wait_until(stack: Stack, token: str, done, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = session_state(stack, token)
        if done(state):
            return state
        time.sleep(0.05)
    return None


def start(stack: Stack, user_id: int) -> str:
    from expense_sync.models import User
    from expense_sync.sync import control

    with stack.app.app_context():
        return control.start(db.session.get(User, user_id)).token


def stored(stack: Stack, user_id: int) -> list[tuple]:
    with stack.app.app_context():
        return stored_identities(user_id)


def one_run(stack: Stack, scenario: str, messages: int, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    user_id, expected = new_user_with_mailbox(stack, messages, seed)
    if not stack.workers:
        stack.start_worker()
    if scenario == "stuck":
        token = stuck_session(stack, user_id)
        recovered_from = time.monotonic()
        assert start(stack, user_id) == token
    else:
        token = start(stack, user_id)
        at = rng.randrange(1, messages // 2)
        if wait_until(stack, token, lambda s: s["processed_emails"] >= at, 60) is None:
            print(f"  {scenario} #{seed}: never reached {at} emails", flush=True)
        time.sleep(rng.random() * 0.08)
        if session_state(stack, token)["status"] in ("completed", "failed"):
            tally.late += 1  # the fault would hit nothing; this run proves nothing
            return
        recovered_from = inject(stack, scenario)
    final = wait_until(stack, token, lambda s: s["status"] in ("completed", "failed"), END_TIMEOUT)
    seconds = time.monotonic() - recovered_from
    rows = stored(stack, user_id)
    tally.runs += 1
    tally.lost += len(expected - set(rows))
    tally.duplicated += len(rows) - len(set(rows))
    tally.wrong += len(set(rows) - expected)
    if final is None or final["status"] != "completed":
        tally.incomplete += 1
        print(f"  {scenario} #{seed}: ended {final and final['status']}", flush=True)
    else:
        tally.recovery.append(seconds)


def inject(stack: Stack, scenario: str) -> float:
    """Inject the fault; returns when recovery could begin (monotonic seconds)."""
    if scenario == "worker-kill":
        stack.kill_workers()
        stack.start_worker()
    elif scenario == "redis-down":
        stack.redis.stop()
        time.sleep(10)
        stack.redis.start()
    elif scenario == "imap-restart":
        stack.imap.stop()
        time.sleep(5)
        stack.imap.start()
    return time.monotonic()


def stuck_session(stack: Stack, user_id: int) -> str:
    from expense_sync.models import SyncSession, SyncSessionAccount, User, now_utc

    with stack.app.app_context():
        user = db.session.get(User, user_id)
        session = SyncSession(user_id=user_id, status="running", started_at=now_utc())
        session.accounts = [
            SyncSessionAccount(email_account=account, status="processing")
            for account in user.accounts
        ]
        db.session.add(session)
        db.session.commit()
        return session.token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    with tempfile.TemporaryDirectory(prefix="chaos-") as workdir:
        stack = Stack(args.database_url, Path(workdir))
        try:
            results = {}
            for scenario in scenarios:
                tally = results[scenario] = Tally()
                seed = 1000 * len(results)
                while tally.runs < args.runs and tally.late <= args.runs:
                    seed += 1
                    one_run(stack, scenario, args.messages, seed, tally)
                report(scenario, tally)
        finally:
            stack.close()
    print(
        f"\n{'scenario':<14}{'runs':>5}{'not done':>9}{'lost':>6}{'dup':>5}{'wrong':>6}"
        f"{'recover median':>16}{'worst':>8}"
    )
    for scenario, tally in results.items():
        recovery = tally.recovery or [float("nan")]
        print(
            f"{scenario:<14}{tally.runs:>5}{tally.incomplete:>9}{tally.lost:>6}"
            f"{tally.duplicated:>5}{tally.wrong:>6}{statistics.median(recovery):>15.1f}s"
            f"{max(recovery):>7.1f}s"
        )
    print(
        f"({args.messages} generated notices per run; "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; load {os.getloadavg()[0]:.2f})"
    )


def report(scenario: str, tally: Tally) -> None:
    print(
        f"{scenario}: {tally.runs} runs ({tally.late} more came too late), "
        f"{tally.incomplete} not completed, "
        f"{tally.lost} lost, {tally.duplicated} duplicated, {tally.wrong} wrong",
        flush=True,
    )


if __name__ == "__main__":
    main()
