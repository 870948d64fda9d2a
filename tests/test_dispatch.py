"""Scheduled syncs: RQ's CronScheduler, the dispatcher's claims, real workers and Dovecot."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import (
    SHARED_SAMPLES,
    imap_account,
    load,
    new_imap_user,
    run_worker,
    sample_messages,
)
from imap_proxy import ImapProxy
from rq.registry import ScheduledJobRegistry

from expense_sync import dispatch
from expense_sync.auth import create_user
from expense_sync.extensions import db, get_queue
from expense_sync.models import SyncSession, User, now_utc
from expense_sync.rq_worker import redis_connection
from expense_sync.sync import control

ROOT = Path(__file__).resolve().parents[1]
LOGIN = re.compile(rb"^(LOGIN|AUTHENTICATE)\b", re.I)
# A BAC notice that no mailbox holds yet (as in test_sync).
NEW_MAIL = (
    (SHARED_SAMPLES / "emails" / "00001.eml")
    .read_bytes()
    .replace(b"510560616836", b"999999999999")
    .replace(b"Message-ID: <", b"Message-ID: <new-")
)


def scheduled_user(app, dovecot, accounts=1, port=None, due=None) -> tuple[int, list[str]]:
    """A user on "cada 15 min" whose next scheduled sync is due (a second ago by default)."""
    with app.app_context():
        user = create_user(f"s{os.urandom(4).hex()}@example.cr", "x" * 12)
        db.session.flush()
        mailboxes = [new_imap_user(dovecot, sample_messages()[:5]) for _ in range(accounts)]
        for mailbox in mailboxes:
            imap_account(user.id, dovecot, mailbox, port=port)
        dispatch.set_interval(user, 15)
        user.next_auto_sync_at = due or now_utc() - timedelta(seconds=1)
        db.session.commit()
        return user.id, mailboxes


def sessions(user_id: int) -> list[SyncSession]:
    db.session.expire_all()
    return db.session.scalars(db.select(SyncSession).filter_by(user_id=user_id)).all()


def make_due(user_id: int) -> None:
    db.session.get(User, user_id).next_auto_sync_at = now_utc() - timedelta(seconds=1)
    db.session.commit()


def test_slots_spread_ten_thousand_users_over_the_interval():
    after = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    starts = [dispatch.next_slot(uid, 15, after) for uid in range(1, 10_001)]
    assert all(after < start <= after + timedelta(minutes=15) for start in starts)
    per_second = Counter(int(start.timestamp()) for start in starts)
    # 10,000 over 900 s is 11.1 a second; the id's phase alone keeps every second near it.
    assert len(per_second) == 900
    assert max(per_second.values()) <= 13
    # Each user's next slot is one interval on, whatever the jitter of the last one.
    again = dispatch.next_slot(7, 15, starts[6] + timedelta(seconds=29), jitter=5)
    assert again - starts[6] == timedelta(minutes=15, seconds=5)


def test_cron_scheduler_dispatches_a_scheduled_sync_that_a_worker_runs(app, client, auth, dovecot):
    user_id, _ = scheduled_user(app, dovecot, accounts=2)
    with app.app_context():
        connection = redis_connection(app.config["REDIS_URL"])
        scheduler = dispatch.make_scheduler(app, connection)
        assert [job.func_name for job in scheduler.enqueue_jobs()] == [
            "expense_sync.dispatch.dispatch_due_syncs"
        ]
        assert scheduler.enqueue_jobs() == []  # the next one is a minute away
    run_worker(app)  # the dispatcher, the user's start, then the sync's own jobs
    with app.app_context():
        (session,) = sessions(user_id)
        assert (session.trigger, session.status) == ("schedule", "completed")
        assert session.processed_emails == session.total_emails > 0
        state = control.state(session)
        assert state["trigger"] == "schedule"
        user = db.session.get(User, user_id)
        assert user.next_auto_sync_at > now_utc() + timedelta(minutes=7)
        email = user.email
    auth.login(email, "x" * 12)
    html = client.get("/sync").get_data(as_text=True)
    assert "Sincronización automática" in html
    history = client.get("/sync_sessions").get_data(as_text=True)
    assert 'data-trigger="schedule">Automática<' in history


def test_a_scheduled_sync_of_unchanged_mail_logs_in_once_per_account(app, dovecot):
    with ImapProxy(dovecot.port) as proxy:
        user_id, mailboxes = scheduled_user(app, dovecot, accounts=3, port=proxy.port)
        with app.app_context():
            dispatch.dispatch_due_syncs()
        run_worker(app)  # the first sync reads the five messages of each mailbox
        first = sum(1 for command in proxy.commands if LOGIN.match(command))
        assert first == 6  # counting, then each account's own job

        proxy.commands.clear()
        with app.app_context():
            make_due(user_id)
            assert dispatch.dispatch_due_syncs() == 1
        run_worker(app)
        with app.app_context():
            latest = sessions(user_id)[-1]
            assert (latest.trigger, latest.status, latest.processed_emails) == (
                "schedule",
                "completed",
                0,
            )
            assert all(row.status == "completed" for row in latest.accounts)
        assert sum(1 for command in proxy.commands if LOGIN.match(command)) == 3

        # New mail in one mailbox: that account's job logs in again to fetch it.
        proxy.commands.clear()
        dovecot.append(mailboxes[1], [NEW_MAIL])
        with app.app_context():
            make_due(user_id)
            dispatch.dispatch_due_syncs()
        run_worker(app)
        with app.app_context():
            assert sessions(user_id)[-1].processed_emails == 1
        assert sum(1 for command in proxy.commands if LOGIN.match(command)) == 4


def test_two_dispatchers_at_once_start_one_sync(app, dovecot):
    user_id, _ = scheduled_user(app, dovecot)
    with app.app_context():
        horizon = now_utc() + timedelta(minutes=1)
        # Both saw the user due; only the first conditional update claims the slot.
        ((_, minutes, due),) = dispatch.due_users(horizon)
        assert dispatch.due_users(horizon) == [(user_id, minutes, due)]
        assert dispatch.claim(user_id, minutes, due, now_utc(), horizon) is True
        assert dispatch.claim(user_id, minutes, due, now_utc(), horizon) is False
        make_due(user_id)

    barrier = threading.Barrier(2)
    claimed = []

    def dispatcher():
        with app.app_context():
            barrier.wait()
            claimed.append(dispatch.dispatch_due_syncs())
            db.session.remove()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [0, 1]
    run_worker(app)
    with app.app_context():
        assert [s.trigger for s in sessions(user_id)] == ["schedule"]


def test_a_user_with_a_sync_running_is_skipped_until_the_next_slot(app, dovecot):
    user_id, _ = scheduled_user(app, dovecot)
    with app.app_context():
        manual = control.start(db.session.get(User, user_id))  # queued, not yet run
        assert dispatch.dispatch_due_syncs() == 1
        assert dispatch.start_scheduled(user_id) == "busy"
        assert [s.id for s in sessions(user_id)] == [manual.id]
        assert db.session.get(User, user_id).next_auto_sync_at > now_utc()
        assert dispatch.dispatch_due_syncs() == 0  # claimed once per slot
    run_worker(app)
    with app.app_context():
        assert [(s.trigger, s.status) for s in sessions(user_id)] == [("manual", "completed")]


def test_a_start_due_later_in_the_minute_waits_in_rqs_scheduler(app, dovecot):
    due = (now_utc() + timedelta(seconds=40)).replace(microsecond=0)
    user_id, _ = scheduled_user(app, dovecot, due=due)
    with app.app_context():
        assert dispatch.dispatch_due_syncs() == 1
        queue = get_queue()
        assert queue.count == 0
        registry = ScheduledJobRegistry(queue=queue)
        (job_id,) = registry.get_job_ids()
        assert registry.get_scheduled_time(job_id) == due
        assert queue.fetch_job(job_id).args == (user_id,)


def test_turning_it_off_after_the_claim_starts_nothing(app, dovecot):
    user_id, _ = scheduled_user(app, dovecot)
    with app.app_context():
        dispatch.dispatch_due_syncs()
        dispatch.set_interval(db.session.get(User, user_id), None)
        db.session.commit()
    run_worker(app)
    with app.app_context():
        assert sessions(user_id) == []


def test_a_cli_sync_says_so(app, runner, dovecot):
    user_id, _ = scheduled_user(app, dovecot)
    with app.app_context():
        email = db.session.get(User, user_id).email
    result = runner.invoke(args=["sync", "--user", email])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert load(result.output.strip()).trigger == "cli"


def test_the_scheduler_process_queues_the_dispatcher(app, dovecot):
    user_id, _ = scheduled_user(app, dovecot)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "EXPENSE_SYNC_ENV": "test",
    }
    process = subprocess.Popen(
        [sys.executable, "scheduler.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        with app.app_context():
            queue = get_queue()
            # It queues the dispatcher as soon as it starts: wait for that, or for its end.
            deadline = time.monotonic() + 60
            while queue.count == 0 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [job.func_name for job in queue.get_jobs()] == [
                "expense_sync.dispatch.dispatch_due_syncs"
            ]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert "registering death" in errors, errors
    run_worker(app)
    with app.app_context():
        assert [(s.trigger, s.status) for s in sessions(user_id)] == [("schedule", "completed")]


def test_a_waiting_scheduled_start_does_not_hide_a_lost_sync_job(app, dovecot):
    # The user's start waits in RQ's scheduler with the user's id; a session with the
    # same id whose start_sync job was lost must still be queued again by the watchdog.
    user_id, _ = scheduled_user(app, dovecot, due=now_utc() + timedelta(seconds=40))
    with app.app_context():
        from expense_sync.jobs import reconcile

        dispatch.dispatch_due_syncs()
        session = control.start(db.session.get(User, user_id))
        assert session.id == user_id
        get_queue().empty()  # its start_sync job is lost
        session.created_at = now_utc() - timedelta(minutes=1)
        db.session.commit()
        assert reconcile() == 1
