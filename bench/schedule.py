"""What scheduled syncs of unchanged mailboxes cost: IMAP logins, seconds, worker time.

    .venv/bin/python bench/schedule.py [--users 100] [--accounts 3] [--database-url ...]

Starts its own Redis and Dovecot (tests/servers.py), counting logins in Dovecot's own log
(a proxy in between would add its own round trips), gives each user `--accounts` IMAP
mailboxes of a few generated bank notices, syncs them all once, then measures what the
schedule does afterwards, through the product's own path (the dispatcher,
`start_scheduled`, one RQ worker in burst mode, each job in a forked work-horse):

- one user alone, due, `--runs` times: seconds from the dispatcher's run to the session's
  completion, and logins per account (goal: <= 0.5 s and <= 1 login);
- every user due at once: worker wall time per scheduled sync, the figure to size workers.

SQLite always (a temp file); with --database-url also that database, whose schema
``public`` is DROPPED and recreated first. A benchmark reports; its exit status is 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from servers import DovecotServer, RedisServer  # noqa: E402
from sync import PASSWORD, make_app, new_mailbox  # noqa: E402

from expense_sync.extensions import db  # noqa: E402

GOAL_SECONDS = 0.5


def add_users(app, dovecot, port: int, users: int, accounts: int, messages: int) -> list[int]:
    from expense_sync.accounts import apply_settings
    from expense_sync.auth import create_user
    from expense_sync.demo import generate_notifications
    from expense_sync.dispatch import set_interval
    from expense_sync.models import EmailAccount

    ids = []
    with app.app_context():
        for n in range(users):
            user = create_user(f"{uuid.uuid4().hex[:8]}@example.cr", "x" * 12)
            db.session.flush()
            for a in range(accounts):
                address = f"u{n}a{a}@example.cr"
                mail = [
                    g.raw
                    for g in generate_notifications(messages, seed=n * 10 + a, to_address=address)
                ]
                account = EmailAccount(user_id=user.id)
                apply_settings(
                    account,
                    {
                        "bank": "bac",
                        "address": address,
                        "source_kind": "imap",
                        "imap_host": dovecot.host,
                        "imap_port": port,
                        "imap_security": "none",
                        "imap_user": new_mailbox(dovecot, mail),
                        "imap_password": PASSWORD,
                        "folder": "INBOX",
                    },
                )
                db.session.add(account)
            set_interval(user, 60)
            ids.append(user.id)
        db.session.commit()
    return ids


def run_due(app, user_ids: list[int]) -> tuple[float, list]:
    """Make the users due, dispatch, drain with one worker: (wall seconds, their sessions)."""
    from expense_sync.dispatch import dispatch_due_syncs
    from expense_sync.models import SyncSession, User, now_utc
    from expense_sync.rq_worker import make_worker, redis_connection

    with app.app_context():
        db.session.execute(
            sa.update(User)
            .where(User.id.in_(user_ids))
            .values(next_auto_sync_at=now_utc() - timedelta(seconds=1))
        )
        db.session.commit()
        started = time.perf_counter()
        dispatch_due_syncs()
    make_worker(app, redis_connection(app.config["REDIS_URL"])).work(
        burst=True, logging_level="WARNING"
    )
    wall = time.perf_counter() - started
    with app.app_context():
        latest = (
            db.session.execute(
                sa.select(SyncSession)
                .where(SyncSession.user_id.in_(user_ids))
                .order_by(SyncSession.id.desc())
                .limit(len(user_ids))
            )
            .scalars()
            .all()
        )
        db.session.expunge_all()
    return wall, latest


def logins(dovecot) -> int:
    """Successful IMAP logins so far, as Dovecot logged them."""
    return (
        (dovecot.root / "dovecot.log").read_text(errors="replace").count("imap-login: Info: Login:")
    )


def run_backend(name, uri, reset, redis_url, dovecot, workdir, args) -> dict:
    print(f"[{name}] {args.users} users x {args.accounts} accounts", flush=True)
    app = make_app(uri, redis_url, workdir, reset)
    figures = {"name": name}
    users = add_users(app, dovecot, dovecot.port, args.users, args.accounts, args.messages)
    run_due(app, users)  # the first sync reads every notice

    alone, per_account = [], []
    for _ in range(args.runs):
        before = logins(dovecot)
        wall, (session,) = run_due(app, users[:1])
        assert (session.status, session.processed_emails) == ("completed", 0), session
        alone.append(wall)
        per_account.append((logins(dovecot) - before) / args.accounts)
    figures["alone"] = alone
    figures["logins"] = max(per_account)

    before = logins(dovecot)
    wall, sessions = run_due(app, users)
    assert all(s.status == "completed" and s.trigger == "schedule" for s in sessions)
    figures["all_wall"] = wall
    figures["all_logins"] = logins(dovecot) - before
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return figures


def report(args, results: list[dict]) -> None:
    print(
        f"\n{os.cpu_count()} CPUs; load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    per_hour = 1000  # users on "cada hora"
    for r in results:
        median, worst = statistics.median(r["alone"]), max(r["alone"])
        per_sync = r["all_wall"] / args.users
        verdict = "PASS" if median <= GOAL_SECONDS and r["logins"] <= 1 else "MISS"
        print(
            f"[{r['name']}] one user, {args.accounts} unchanged accounts, {args.runs} runs: "
            f"median {median:.3f} s, worst {worst:.3f} s, {r['logins']:.0f} login(s) per "
            f"account (goal <= {GOAL_SECONDS} s, <= 1) {verdict}"
        )
        print(
            f"[{r['name']}] {args.users} users due at once: {r['all_wall']:.2f} s on one "
            f"worker, {per_sync * 1000:.0f} ms per scheduled sync, "
            f"{r['all_logins']} logins ({r['all_logins'] / args.users:.1f} per user)"
        )
        print(
            f"[{r['name']}] 1,000 users x {args.accounts} accounts every hour: "
            f"{per_sync * per_hour:.0f} worker-seconds an hour "
            f"({per_sync * per_hour / 36:.1f} % of one worker), "
            f"{per_hour * args.accounts:,} IMAP logins an hour"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5, help="notices per mailbox")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database-url", help="also this database; schema public RECREATED")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-schedule-"))
    try:
        with RedisServer() as redis_server, DovecotServer() as dovecot:
            targets = [("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}", False)]
            if args.database_url:
                targets.append(("postgresql", args.database_url, True))
            results = [
                run_backend(name, uri, reset, redis_server.url, dovecot, workdir, args)
                for name, uri, reset in targets
            ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
