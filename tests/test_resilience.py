"""Real worker processes killed with SIGKILL, and Redis restarted, in the middle of a sync."""

import json
import random
import time
import uuid

import pytest
import redis
from helpers import (
    identity,
    imap_account,
    load,
    new_imap_user,
    stored_identities,
    wait_for_end,
    wait_for_progress,
)
from servers import DovecotServer, kill_tree

from expense_sync.auth import create_user
from expense_sync.demo import generate_notifications
from expense_sync.extensions import db
from expense_sync.models import User
from expense_sync.progress import TERMINAL_STATES, Progress, events_key
from expense_sync.progress_rows import database_state
from expense_sync.sync import control

# Real processes killed and restarted: minutes in all, so `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

MESSAGES = 1500
WORKER_STARTUP = 10  # seconds for `python worker.py` to import the app, on a slow machine


def mailbox_with_notifications(dovecot, seed: int):
    mailbox = new_imap_user(dovecot)
    # The account's address (see imap_account): forwards the owner made must count.
    generated = list(
        generate_notifications(MESSAGES, seed=seed, to_address=f"{mailbox}@example.cr")
    )
    dovecot.append(mailbox, [g.raw for g in generated])
    expected = {
        identity(e["bank"], e["kind"], e["amount"], e["currency"], e["reference"], e["occurred_at"])
        for e in (g.expected for g in generated)
        if e["status"] == "transaction"
    }
    return mailbox, expected


def start_sync(stack, dovecot, mailbox) -> tuple[int, str]:
    with stack.app_context():
        user = create_user(f"{uuid.uuid4().hex[:8]}@example.cr", "x" * 12)
        db.session.flush()
        imap_account(user.id, dovecot, mailbox)
        db.session.commit()
        return user.id, control.start(user).token


def told_state(stack, token) -> dict:
    """The state a stream (re)connecting now is given: the progress keys' newest event."""
    progress = Progress(redis.Redis.from_url(stack.config["REDIS_URL"]))
    with stack.app_context():
        expected = database_state(load(token))
    newest = progress.redis.xrevrange(events_key(token), count=1)
    assert newest, "no event was published for the session"
    told = json.loads(newest[0][1][b"data"])["state"]
    assert progress.snapshot(token)["status"] == told["status"]
    for key in ("status", "processed_emails", "total_emails", "detected_expenses", "error_count"):
        assert told[key] == expected[key], (key, told, expected)
    return told


def assert_exact(stack, state, user_id, expected) -> None:
    assert state["status"] == "completed", state
    assert state["processed_emails"] == state["total_emails"]
    with stack.app_context():
        rows = stored_identities(user_id)
        assert len(rows) == len(set(rows)), "an expense was stored twice"
        assert set(rows) == expected, "an expense was lost"


@pytest.mark.parametrize("run", range(5))
def test_worker_and_horse_killed_at_random_lose_nothing_and_store_nothing_twice(
    stack, dovecot, run
):
    mailbox, expected = mailbox_with_notifications(dovecot, seed=100 + run)
    user_id, token = start_sync(stack, dovecot, mailbox)
    first = stack.start_worker()
    rng = random.Random(run)
    wait_for_progress(stack, token, minimum=rng.randrange(0, MESSAGES // 2))
    # Somewhere inside a batch (a batch takes ~0.1 s), and never so late that the other
    # half of the mailbox could be done already on a fast machine.
    time.sleep(rng.random() * 0.08)
    kill_tree(first.pid)
    with stack.app_context():
        killed_at = control.state(load(token))
    assert killed_at["status"] not in TERMINAL_STATES, "killed too late to prove anything"
    assert killed_at["status"] == "running", "the widget must show the sync as running"
    # The new worker's first maintenance finds the dead worker's job by itself.
    stack.start_worker()
    assert_exact(stack, wait_for_end(stack, token), user_id, expected)
    told_state(stack, token)


def test_whole_worker_killed_sync_goes_on_soon_after_a_new_worker_starts(stack, dovecot):
    # The retry intervals of production: the retry waits for a scheduler, and the dead
    # worker's scheduler lock must not hold it for a minute.
    intervals = {"JOB_RETRY_INTERVALS": "10,30,60,120,300"}
    mailbox, expected = mailbox_with_notifications(dovecot, seed=31)
    user_id, token = start_sync(stack, dovecot, mailbox)
    first = stack.start_worker(**intervals)
    wait_for_progress(stack, token, minimum=MESSAGES // 4)
    kill_tree(first.pid)
    stack.start_worker(**intervals)
    state = wait_for_end(stack, token, timeout=30 + WORKER_STARTUP)
    assert_exact(stack, state, user_id, expected)


# One run per database here; bench/chaos.py repeats the fault (N=10) on real syncs.
@pytest.mark.parametrize("run", range(1))
def test_redis_down_ten_seconds_mid_batch_sync_completes_exact(stack, dovecot, own_redis, run):
    mailbox, expected = mailbox_with_notifications(dovecot, seed=50 + run)
    user_id, token = start_sync(stack, dovecot, mailbox)
    worker = stack.start_worker()
    rng = random.Random(run)
    wait_for_progress(stack, token, minimum=rng.randrange(1, MESSAGES // 2))
    time.sleep(rng.random() * 0.08)
    own_redis.stop()
    with stack.app_context():  # the pages read the database meanwhile
        during = control.state(load(token))
    assert during["status"] == "running" and during["processed_emails"] < MESSAGES
    time.sleep(10)
    own_redis.start()  # empty: no jobs, no progress keys, no locks
    state = wait_for_end(stack, token, timeout=120)
    assert worker.poll() is None, "the worker died with Redis"
    assert_exact(stack, state, user_id, expected)
    told = told_state(stack, token)
    assert told["status"] == "completed"
    with stack.app_context():  # and the user can sync again at once
        again = control.start(db.session.get(User, user_id))
        assert again.token != token


def test_imap_server_restarted_for_five_seconds_the_account_completes(stack):
    with DovecotServer() as imap:
        mailbox, expected = mailbox_with_notifications(imap, seed=61)
        user_id, token = start_sync(stack, imap, mailbox)
        stack.start_worker()
        wait_for_progress(stack, token, minimum=MESSAGES // 4)
        imap.stop()
        time.sleep(5)
        imap.start()
        state = wait_for_end(stack, token)
        assert_exact(stack, state, user_id, expected)
        with stack.app_context():
            row = load(token).accounts[0]
            assert (row.status, row.error_message) == ("completed", None)


def test_cli_sync_waits_and_prints_the_final_state(stack, dovecot):
    import json

    mailbox, expected = mailbox_with_notifications(dovecot, seed=21)
    with stack.app_context():
        user = create_user("cli@example.cr", "x" * 12)
        db.session.flush()
        imap_account(user.id, dovecot, mailbox)
        broken = create_user("roto@example.cr", "x" * 12)
        db.session.flush()
        imap_account(broken.id, dovecot, mailbox, password="equivocada")
        db.session.commit()
    stack.start_worker()
    runner = stack.test_cli_runner()
    result = runner.invoke(args=["sync", "--user", "cli@example.cr", "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.output.strip().splitlines()[-1])
    assert (state["status"], state["processed_emails"]) == ("completed", state["total_emails"])
    assert state["detected_expenses"] > 0 and len(state["accounts"]) == 1
    failed = runner.invoke(args=["sync", "--user", "roto@example.cr", "--wait"])
    assert failed.exit_code == 1
    assert "Usuario o contraseña incorrectos" in failed.output
