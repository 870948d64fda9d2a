"""How fast a full sync of a real IMAP mailbox is, against what the IMAP server allows.

    .venv/bin/python bench/sync.py [--messages 10000] [--database-url postgresql://...]

Starts its own Redis and Dovecot (tests/servers.py), appends generated bank notifications
to a fresh mailbox, then measures:

- the raw ceiling: one plain IMAPClient session fetching the messages a sync reads
  (BODY.PEEK[], 200 per UID FETCH) and nothing else;
- a full sync as the product runs it: control.start, then one RQ worker in burst mode
  (each job in a forked work-horse), until the session is completed;
- a second sync of the unchanged mailbox;
- where a full sync's time goes: start_sync and sync_account run in-process under cProfile
  on a fresh account.

SQLite always (a temp file); with --database-url also that database, whose schema
``public`` is DROPPED and recreated first: never point it at a database you care about.
A benchmark reports, it does not fail: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from servers import DovecotServer, RedisServer  # noqa: E402

from expense_sync import create_app  # noqa: E402
from expense_sync.extensions import db, get_queue  # noqa: E402

PASSWORD = "bench-clave-1"
BATCH = 200
GOAL_RATE = 600.0  # emails per second, full sync
GOAL_RATIO = 0.5  # of the raw IMAP ceiling
GOAL_RESYNC = 0.5  # seconds, unchanged mailbox
# A fixed window, so the same seed gives the same mailbox on every run.
WINDOW = (datetime(2024, 11, 1), datetime(2025, 11, 1))


@dataclass
class Backend:
    name: str
    processed: int = 0
    total: int = 0
    expenses: int = 0
    unreadable: int = 0
    ignored: int = 0  # bank mail the rules ignored, kept for the review queue
    status: str = ""
    seconds: float = 0.0
    worker_seconds: float = 0.0
    resync_status: str = ""
    resync_processed: int = 0
    resync_seconds: float = 0.0
    profile_seconds: float = 0.0
    profile: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


# -- mailbox and ceiling -------------------------------------------------------------------


def new_mailbox(dovecot: DovecotServer, messages: list[bytes]) -> str:
    name = f"bench{uuid.uuid4().hex[:8]}"
    dovecot.add_user(name, PASSWORD)
    dovecot.append(name, messages)
    return name


def ceiling(dovecot: DovecotServer, mailbox: str, uids: list[int]) -> tuple[float, int]:
    """Log in, EXAMINE, UID FETCH BODY.PEEK[] 200 at a time: (seconds, bytes)."""
    started = time.perf_counter()
    size = 0
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30) as client:
        client.login(mailbox, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        for start in range(0, len(uids), BATCH):
            response = client.fetch(uids[start : start + BATCH], ["BODY.PEEK[]"])
            size += sum(len(data[b"BODY[]"]) for data in response.values())
    return time.perf_counter() - started, size


def bank_uids(dovecot: DovecotServer, mailbox: str, address: str) -> list[int]:
    """The UIDs a first sync reads: the product's own scan (bank senders and the owner)."""
    from expense_sync.engine import senders_for
    from expense_sync.mailboxes import ImapSettings, open_source
    from expense_sync.models import EmailAccount

    settings = ImapSettings(
        host=dovecot.host, port=dovecot.port, security="none", username=mailbox, password=PASSWORD
    )
    with open_source("imap", imap=settings) as source:
        senders = senders_for(EmailAccount(address=address))
        return source.scan(None, 0, senders).uids


# -- the app -------------------------------------------------------------------------------


def make_app(uri: str, redis_url: str, workdir: Path, reset_schema: bool):
    from flask_migrate import upgrade

    from expense_sync.config import database_url

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url(uri, ""),
            "REDIS_URL": redis_url,
            "RATELIMIT_STORAGE_URI": redis_url,
            "LOCAL_MAILBOX_ROOT": str(workdir),
        }
    )
    with app.app_context():
        if reset_schema:
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
    return app


def new_user_with_account(app, dovecot: DovecotServer, mailbox: str, address: str) -> int:
    from expense_sync.accounts import apply_settings
    from expense_sync.auth import create_user
    from expense_sync.models import EmailAccount

    with app.app_context():
        user = create_user(f"{uuid.uuid4().hex[:8]}@example.cr", "x" * 12)
        db.session.flush()
        account = EmailAccount(user_id=user.id)
        apply_settings(
            account,
            {
                "bank": "bac",
                "address": address,
                "source_kind": "imap",
                "imap_host": dovecot.host,
                "imap_port": dovecot.port,
                "imap_security": "none",
                "imap_user": mailbox,
                "imap_password": PASSWORD,
                "folder": "INBOX",
            },
        )
        db.session.add(account)
        db.session.commit()
        return user.id


def timed_sync(app, user_id: int) -> tuple[object, float, float]:
    """control.start then one burst worker: (session, seconds to completed, worker wall)."""
    from expense_sync.models import SyncSession, User
    from expense_sync.rq_worker import make_worker, redis_connection
    from expense_sync.sync import control

    started = time.time()
    with app.app_context():
        token = control.start(db.session.get(User, user_id)).token
    make_worker(app, redis_connection(app.config["REDIS_URL"])).work(
        burst=True, logging_level="WARNING"
    )
    wall = time.time() - started
    with app.app_context():
        session = db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()
        db.session.expunge(session)
    finished = session.finished_at.timestamp() if session.finished_at else time.time()
    return session, finished - started, wall


def profiled_sync(app, user_id: int, top: int) -> tuple[float, str]:
    """start_sync and sync_account in-process under cProfile: (seconds, report)."""
    from expense_sync.jobs import start_sync, sync_account
    from expense_sync.models import SyncSession, SyncSessionAccount, User
    from expense_sync.sync import control

    profiler = cProfile.Profile()
    with app.app_context():
        session_id = control.start(db.session.get(User, user_id)).id
        started = time.perf_counter()
        profiler.enable()
        start_sync(session_id)
        for row_id in db.session.scalars(
            db.select(SyncSessionAccount.id).filter_by(sync_session_id=session_id)
        ).all():
            sync_account(session_id, row_id)
        profiler.disable()
        seconds = time.perf_counter() - started
        status = db.session.get(SyncSession, session_id).status
        get_queue().empty()  # the jobs control.start and start_sync queued: already done
    out = io.StringIO()
    out.write(f"(in-process, status {status}, {seconds:.2f} s under the profiler)\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    out.write("by own time:\n")
    stats.sort_stats("tottime").print_stats(10)
    return seconds, _trim(out.getvalue())


def _trim(report: str) -> str:
    # pstats opens with a blank line and "Ordered by" headers; keep the tables.
    lines = [
        line
        for line in report.splitlines()
        if line.strip() and not line.strip().startswith(("Ordered by", "List reduced"))
    ]
    return "\n".join(lines)


def count_rows(app, user_id: int) -> tuple[int, int, int]:
    """Expenses, unreadable mail and ignored bank mail stored for the user."""
    from expense_sync.models import Expense, UnreadableEmail

    with app.app_context():
        expenses = db.session.scalar(
            db.select(sa.func.count()).select_from(Expense).filter_by(user_id=user_id)
        )
        kept = dict(
            db.session.execute(
                db.select(UnreadableEmail.status, sa.func.count())
                .filter_by(user_id=user_id)
                .group_by(UnreadableEmail.status)
            ).all()
        )
    return expenses, kept.get("unparsed", 0), kept.get("ignored", 0)


def run_backend(
    name: str,
    uri: str,
    reset: bool,
    redis_url: str,
    dovecot: DovecotServer,
    mailbox: str,
    address: str,
    messages: list[bytes],
    workdir: Path,
    top: int,
) -> Backend:
    result = Backend(name)
    print(f"[{name}] migrating {uri.split('@')[-1]}", flush=True)
    app = make_app(uri, redis_url, workdir, reset)
    try:
        user_id = new_user_with_account(app, dovecot, mailbox, address)
        print(f"[{name}] full sync (control.start + one burst worker)", flush=True)
        session, result.seconds, result.worker_seconds = timed_sync(app, user_id)
        result.status, result.processed = session.status, session.processed_emails
        result.total = session.total_emails
        result.expenses, result.unreadable, result.ignored = count_rows(app, user_id)
        if session.error_message:
            result.notes.append(f"error: {session.error_message}")

        print(f"[{name}] re-sync of the unchanged mailbox", flush=True)
        again, result.resync_seconds, _ = timed_sync(app, user_id)
        result.resync_status, result.resync_processed = again.status, again.processed_emails

        print(f"[{name}] profiled sync of a fresh account and mailbox", flush=True)
        fresh = new_mailbox(dovecot, messages)
        fresh_user = new_user_with_account(app, dovecot, fresh, address)
        result.profile_seconds, result.profile = profiled_sync(app, fresh_user, top)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return result


# -- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    args, ceiling_rate: float, ceiling_note: str, parse_rate: float, backends: list[Backend]
) -> None:
    def row(label: str, cells: list[str], goal: str = "") -> None:
        print(f"{label:34}" + "".join(f"{cell:>16}" for cell in cells) + f"   {goal}")

    print()
    print(f"{args.messages} messages generated; {ceiling_note}")
    # Other work on the machine skews every figure; say how busy it was.
    print(
        f"{os.cpu_count()} CPUs; load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" (at the start: {', '.join(f'{x:.2f}' for x in args.load_at_start)})"
    )
    row("", [b.name for b in backends], "goal")
    row("raw IMAP ceiling, emails/s", [f"{ceiling_rate:.0f}" for _ in backends])
    row("parse only (in-process), emails/s", [f"{parse_rate:.0f}" for _ in backends])
    row(
        "full sync, emails/s",
        [f"{b.rate:.0f} {verdict(b.rate >= GOAL_RATE)}" for b in backends],
        f">= {GOAL_RATE:.0f}",
    )
    row(
        "ratio sync / ceiling",
        [
            f"{b.rate / ceiling_rate:.2f} {verdict(b.rate >= GOAL_RATIO * ceiling_rate)}"
            for b in backends
        ],
        f">= {GOAL_RATIO}",
    )
    row(
        "unchanged re-sync, s",
        [f"{b.resync_seconds:.2f} {verdict(b.resync_seconds < GOAL_RESYNC)}" for b in backends],
        f"< {GOAL_RESYNC}",
    )
    print()
    for b in backends:
        print(
            f"[{b.name}] full sync: {b.status}, {b.processed}/{b.total} emails in "
            f"{b.seconds:.2f} s (worker wall {b.worker_seconds:.2f} s), "
            f"{b.expenses} expenses stored, {b.unreadable} unreadable, {b.ignored} ignored "
            "kept for review; "
            f"re-sync: {b.resync_status}, {b.resync_processed} emails"
        )
        for note in b.notes:
            print(f"[{b.name}] {note}")
    for b in backends:
        print(f"\n== profile, {b.name}: start_sync + sync_account {b.profile}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url", help="also benchmark this database; its schema public is RECREATED"
    )
    parser.add_argument(
        "--ceiling-runs",
        type=int,
        default=3,
        help="ceiling fetches; the fastest counts (the first one warms caches)",
    )
    parser.add_argument("--top", type=int, default=15, help="profile entries to print")
    args = parser.parse_args()
    args.load_at_start = os.getloadavg()
    logging.basicConfig(level=logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        with RedisServer() as redis_server, DovecotServer() as dovecot:
            figures = measure(args, redis_server, dovecot, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, *figures)
    return 0


def measure(args, redis_server: RedisServer, dovecot: DovecotServer, workdir: Path) -> tuple:
    from expense_sync.config import database_url
    from expense_sync.demo import generate_notifications
    from expense_sync.parsing import parse_message

    mailbox = f"bench{uuid.uuid4().hex[:8]}"
    address = f"{mailbox}@example.cr"
    started = time.perf_counter()
    generated = generate_notifications(
        args.messages, seed=args.seed, start=WINDOW[0], end=WINDOW[1], to_address=address
    )
    messages = [g.raw for g in generated]
    took = time.perf_counter() - started
    dovecot.add_user(mailbox, PASSWORD)
    started = time.perf_counter()
    dovecot.append(mailbox, messages)
    print(
        f"generated {len(messages)} messages in {took:.1f} s, "
        f"appended in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    started = time.perf_counter()
    for raw in messages:
        parse_message(raw, own_addresses=[address])
    parse_rate = len(messages) / (time.perf_counter() - started)

    uids = bank_uids(dovecot, mailbox, address)
    runs = [ceiling(dovecot, mailbox, uids) for _ in range(max(1, args.ceiling_runs))]
    best, size = min(runs)
    ceiling_note = (
        f"a sync reads {len(uids)} ({size / len(uids) / 1024:.1f} KiB each); "
        "ceiling fetch runs: " + ", ".join(f"{seconds:.2f} s" for seconds, _ in runs)
    )
    print(ceiling_note, flush=True)

    targets = [("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}", False)]
    if args.database_url:
        name = sa.make_url(database_url(args.database_url, "")).get_backend_name()
        targets.append((name, args.database_url, name == "postgresql"))
    backends = [
        run_backend(
            name,
            uri,
            reset,
            redis_server.url,
            dovecot,
            mailbox,
            address,
            messages,
            workdir,
            args.top,
        )
        for name, uri, reset in targets
    ]
    return len(uids) / best, ceiling_note, parse_rate, backends


if __name__ == "__main__":
    sys.exit(main())
