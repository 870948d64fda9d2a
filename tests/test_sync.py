"""The sync engine end to end: real Dovecot, real Redis, real RQ work-horses, both databases."""

import json
import uuid

import pytest
from helpers import (
    SHARED_SAMPLES,
    expected_transactions,
    imap_account,
    load,
    new_imap_user,
    run_worker,
    sample_messages,
)

from expense_sync.auth import create_user
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, Expense, SyncSession, UnreadableEmail
from expense_sync.rq_worker import make_worker, redis_connection
from expense_sync.sync import control


def stored_transactions(user_id: int) -> list[tuple]:
    db.session.expire_all()
    return [
        (e.bank, e.kind, f"{e.amount:.2f}", e.currency, e.reference)
        for e in db.session.scalars(db.select(Expense).filter_by(user_id=user_id))
    ]


@pytest.fixture
def user(app):
    with app.app_context():
        user = create_user(f"{uuid.uuid4().hex[:8]}@example.cr", "x" * 12)
        db.session.commit()
        return user.id


def sync(app, user_id) -> str:
    """Start a sync of the user's accounts, run the worker until the queue is empty."""
    with app.app_context():
        token = control.start(_user(user_id)).token
    run_worker(app)
    return token


def _user(user_id):
    from expense_sync.models import User

    return db.session.get(User, user_id)


def test_full_sync_then_nothing_twice_then_only_new_mail(app, dovecot, user):
    mailbox = new_imap_user(dovecot, sample_messages())
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
    token = sync(app, user)
    with app.app_context():
        state = control.state(load(token))
        assert state["status"] == "completed", state
        assert sorted(stored_transactions(user)) == sorted(expected_transactions())
        assert state["detected_expenses"] == sum(
            1 for t in expected_transactions() if t[1] not in ("refund", "transfer_in")
        )
        assert state["processed_emails"] == state["total_emails"] > 0
        assert state["progress_percentage"] == 100
    assert all(b"\\Seen" not in flags for flags in dovecot.flags(mailbox).values())

    second = sync(app, user)
    with app.app_context():
        second = load(second)
        assert (second.status, second.processed_emails, second.detected_expenses) == (
            "completed",
            0,
            0,
        )
        assert len(stored_transactions(user)) == len(expected_transactions())

    new_mail = (
        (SHARED_SAMPLES / "emails" / "00001.eml")
        .read_bytes()
        .replace(b"510560616836", b"999999999999")
        .replace(b"Message-ID: <", b"Message-ID: <new-")
    )
    dovecot.append(mailbox, [new_mail])
    third = sync(app, user)
    with app.app_context():
        third = load(third)
        assert (third.processed_emails, third.detected_expenses) == (1, 1)
        assert len(stored_transactions(user)) == len(expected_transactions()) + 1


def test_uidvalidity_change_leaves_no_duplicates(app, dovecot, user):
    mailbox = new_imap_user(dovecot, sample_messages())
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
    sync(app, user)
    dovecot.reset_uidvalidity(mailbox)
    again = sync(app, user)
    with app.app_context():
        again = load(again)
        assert again.status == "completed"
        assert again.processed_emails > 0  # a full rescan happened
        assert again.detected_expenses == 0
        assert sorted(stored_transactions(user)) == sorted(expected_transactions())
        account = db.session.scalars(db.select(EmailAccount).filter_by(user_id=user)).one()
        assert account.uidvalidity == dovecot.uidvalidity(mailbox)


def test_wrong_password_fails_only_that_account(app, dovecot, user, tmp_path):
    good = new_imap_user(dovecot, sample_messages()[:20])
    bad = new_imap_user(dovecot, sample_messages()[20:40])
    with app.app_context():
        imap_account(user, dovecot, good)
        imap_account(user, dovecot, bad, password="equivocada")
        db.session.commit()
    session = sync(app, user)
    with app.app_context():
        session = load(session)
        rows = {row.email_account.imap_user: row for row in session.accounts}
        assert session.status == "failed"
        assert rows[good].status == "completed" and rows[good].processed_emails > 0
        assert rows[bad].status == "failed" and rows[bad].error_kind == "authentication"
        assert "contraseña" in rows[bad].error_message
        assert "equivocada" not in (session.error_message or "")
        assert len(stored_transactions(user)) > 0


def test_connection_cut_mid_fetch_is_retried(app, dovecot, user):
    from servers import CuttingProxy

    mailbox = new_imap_user(dovecot, sample_messages())
    with CuttingProxy(dovecot.port, cut_after=60_000) as proxy, app.app_context():
        imap_account(user, dovecot, mailbox, port=proxy.port)
        db.session.commit()
        token = control.start(_user(user)).token
        run_worker(app)
        session = load(token)
        assert proxy.cuts == 1
        assert session.status == "completed", session.error_message
        assert sorted(stored_transactions(user)) == sorted(expected_transactions())
        assert session.processed_emails == session.total_emails


def test_unreadable_bank_email_is_recorded_and_counted(app, dovecot, user):
    broken = (SHARED_SAMPLES / "emails" / "00001.eml").read_bytes()
    broken = broken.split(b"\n\n", 1)[0] + b"\n\nNotificacion de transaccion sin datos\n"
    mailbox = new_imap_user(dovecot, [broken])
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
    session = sync(app, user)
    with app.app_context():
        session = load(session)
        assert (session.status, session.error_count) == ("completed", 1)
        unreadable = db.session.scalars(db.select(UnreadableEmail)).one()
        assert unreadable.user_id == user and unreadable.reason


def test_two_users_never_see_each_others_data(app, dovecot):
    messages = sample_messages()
    with app.app_context():
        ana = create_user("ana@example.cr", "x" * 12)
        beto = create_user("beto@example.cr", "x" * 12)
        db.session.flush()
        imap_account(ana.id, dovecot, new_imap_user(dovecot, messages[:60]))
        imap_account(beto.id, dovecot, new_imap_user(dovecot, messages[60:]))
        db.session.commit()
        ana_id, beto_id = ana.id, beto.id
        control.start(_user(ana_id))
        control.start(_user(beto_id))
    run_worker(app)
    with app.app_context():
        both = stored_transactions(ana_id) + stored_transactions(beto_id)
        assert sorted(both) == sorted(expected_transactions())
        for user_id in (ana_id, beto_id):
            owners = {
                e.email_account.user_id
                for e in db.session.scalars(db.select(Expense).filter_by(user_id=user_id))
            }
            assert owners == {user_id}


def test_pause_then_resume_continues_from_checkpoint(app, user, tmp_path):
    from expense_sync.accounts import apply_settings
    from expense_sync.demo import generate_notifications, write_maildir

    generated = list(generate_notifications(600, seed=3, to_address="demo@example.cr"))
    write_maildir(tmp_path / "inbox", generated)
    with app.app_context():
        account = EmailAccount(user_id=user)
        apply_settings(
            account,
            {
                "bank": "bac",
                "address": "demo@example.cr",
                "source_kind": "maildir",
                "local_path": str(tmp_path / "inbox"),
            },
        )
        db.session.add(account)
        db.session.commit()
        token = control.start(_user(user)).token
    worker = make_worker(app, redis_connection(app.config["REDIS_URL"]))
    worker.work(burst=True, max_jobs=1)  # the coordinator: counts, queues the account's job
    with app.app_context():
        control.pause(load(token))
    run_worker(app)
    with app.app_context():
        session = load(token)
        assert session.status == "paused"
        assert [(r.status, r.processed_emails) for r in session.accounts] == [("pending", 0)]
        total = session.accounts[0].total_emails
        assert total > 500
        control.resume(session)
    run_worker(app)
    with app.app_context():
        session = load(token)
        state = control.state(session)
        assert (state["status"], state["processed_emails"], state["total_emails"]) == (
            "completed",
            total,
            total,
        )
        expected = {
            (e["bank"], e["reference"], e["authorization"])
            if e["reference"]
            else (e["bank"], e["kind"], e["amount"], e["currency"], e["occurred_at"])
            for e in (g.expected for g in generated)
            if e["status"] == "transaction"
        }
        assert len(stored_transactions(user)) == len(expected)


def stuck_session(user_id, account_status: str) -> str:
    """A session left `running` by hand, as a lost job or a crash between commits leaves it."""
    from expense_sync.models import SyncSessionAccount, now_utc

    session = SyncSession(user_id=user_id, status="running", started_at=now_utc())
    session.accounts = [
        SyncSessionAccount(email_account=account, status=account_status)
        for account in _user(user_id).accounts
    ]
    db.session.add(session)
    db.session.commit()
    return session.token


def test_a_stuck_session_with_mail_owed_is_served_by_the_next_sync(app, dovecot, user):
    mailbox = new_imap_user(dovecot, sample_messages())
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
        stuck = stuck_session(user, "processing")
        assert control.start(_user(user)).token == stuck  # the same sync, now with its job
    run_worker(app)
    with app.app_context():
        session = load(stuck)
        assert session.status == "completed", session.error_message
        assert sorted(stored_transactions(user)) == sorted(expected_transactions())


def test_a_stuck_session_with_nothing_left_ends_and_the_next_sync_starts(app, dovecot, user):
    mailbox = new_imap_user(dovecot, sample_messages()[:10])
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
        stuck = stuck_session(user, "completed")
        fresh = control.start(_user(user)).token
        assert fresh != stuck
        assert load(stuck).status == "completed"
    run_worker(app)
    with app.app_context():
        assert load(fresh).status == "completed"
        assert len(stored_transactions(user)) > 0


def test_the_watchdog_ends_finished_sessions_and_tells_redis_of_an_unseen_end(
    app, dovecot, user, redis_client
):
    from expense_sync.jobs import reconcile
    from expense_sync.progress import Progress

    with app.app_context():
        imap_account(user, dovecot, new_imap_user(dovecot))
        db.session.commit()
        done = stuck_session(user, "failed")
        progress = Progress(redis_client)
        progress.start_session(
            done, status="running", started_at_ms=0, accounts=[{"id": 1, "status": "processing"}]
        )
        reconcile()
        assert load(done).status == "failed"
        assert progress.snapshot(done)["status"] == "failed"
        # Ended while Redis was away: the keys still say "running" until the watchdog passes.
        progress.set_status(done, "running")
        reconcile()
        assert progress.snapshot(done)["status"] == "failed"
        newest = redis_client.xrevrange(f"es:sync:{done}:events", count=1)
        assert json.loads(newest[0][1][b"data"])["state"]["status"] == "failed"


@pytest.mark.slow
def test_a_locked_database_is_retried_and_announced_not_failed(app, dovecot, user, redis_client):
    """SQLite answers "database is locked" while another process holds its write lock."""
    import sqlite3
    import threading

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the write lock held from outside is SQLite's")
    app.config["JOB_RETRY_INTERVALS"] = [0]
    mailbox = new_imap_user(dovecot, sample_messages())
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
        token = control.start(_user(user)).token
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(7, holder.execute, ["ROLLBACK"]).start()
    run_worker(app)
    holder.close()
    with app.app_context():
        session = load(token)
        assert session.status == "completed", session.error_message
        assert sorted(stored_transactions(user)) == sorted(expected_transactions())
    told = [
        json.loads(fields[b"data"]) for _, fields in redis_client.xrange(f"es:sync:{token}:events")
    ]
    assert any(
        event["message"] == "Reintentando: problema con la base de datos." for event in told
    ), [event["message"] for event in told]


def test_copies_of_an_unreadable_email_count_once(app, dovecot, user):
    """The error counter counts what is stored for the user to review, not every copy seen."""
    broken = (SHARED_SAMPLES / "emails" / "00001.eml").read_bytes()
    broken = broken.split(b"\n\n", 1)[0] + b"\n\nNotificacion de transaccion sin datos\n"
    mutated = broken.replace(b"sin datos", b"sin datos legibles")  # same Message-ID
    mailbox = new_imap_user(dovecot, [broken, broken, mutated, broken])
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
    first = sync(app, user)
    with app.app_context():
        stored = db.session.scalar(db.select(db.func.count()).select_from(UnreadableEmail))
        assert (load(first).error_count, stored) == (1, 1)
        assert control.state(load(first))["error_count"] == 1


def test_a_refusal_on_first_contact_is_a_wrong_server_or_port_not_retried(app, dovecot, user):
    from servers import free_port

    with app.app_context():
        imap_account(user, dovecot, new_imap_user(dovecot), port=free_port())
        db.session.commit()
    session = sync(app, user)
    with app.app_context():
        row = load(session).accounts[0]
        assert (row.status, row.error_kind) == ("failed", "network")
        assert row.error_message.endswith("rechazó la conexión. Revise el servidor y el puerto.")
