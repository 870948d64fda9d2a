"""The sync engine end to end: real Dovecot, real Redis, real RQ work-horses, both databases."""

import json
import uuid

import pytest
from helpers import SHARED_SAMPLES

from expense_sync.auth import create_user
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, Expense, SyncSession, UnreadableEmail
from expense_sync.sync import control
from expense_sync.workers import make_worker, redis_connection

PASSWORD = "imap-clave-1"

pytestmark = pytest.mark.skipif(not SHARED_SAMPLES.exists(), reason="shared samples missing")


def sample_messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted((SHARED_SAMPLES / "emails").glob("*.eml"))]


def expected_transactions() -> set[tuple]:
    rows = [json.loads(line) for line in (SHARED_SAMPLES / "expected.jsonl").open()]
    return {(r["bank"], r["kind"], r["amount"], r["currency"], r["reference"]) for r in rows
            if r["status"] == "transaction"}


def stored_transactions(user_id: int) -> list[tuple]:
    db.session.expire_all()
    return [(e.bank, e.kind, f"{e.amount:.2f}", e.currency, e.reference) for e in
            db.session.scalars(db.select(Expense).filter_by(user_id=user_id))]


def run_worker(app) -> None:
    """Drain the queue with a real worker: each job runs in a forked work-horse."""
    make_worker(app, redis_connection(app.config["REDIS_URL"])).work(burst=True)


def new_imap_user(dovecot, messages=()) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, PASSWORD)
    if messages:
        dovecot.append(name, messages)
    return name


def imap_account(user_id, dovecot, mailbox, password=PASSWORD, port=None) -> EmailAccount:
    from expense_sync.accounts import apply_settings

    account = EmailAccount(user_id=user_id)
    apply_settings(account, {
        "bank": "bac", "address": f"{mailbox}@example.cr", "source_kind": "imap",
        "imap_host": "127.0.0.1", "imap_port": port or dovecot.port, "imap_security": "none",
        "imap_user": mailbox, "imap_password": password, "folder": "INBOX",
    })
    db.session.add(account)
    return account


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


def load(token: str) -> SyncSession:
    db.session.expire_all()
    return db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()


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
            1 for t in expected_transactions() if t[1] not in ("refund", "transfer_in"))
        assert state["processed_emails"] == state["total_emails"] > 0
        assert state["progress_percentage"] == 100
    assert all(b"\\Seen" not in flags for flags in dovecot.flags(mailbox).values())

    second = sync(app, user)
    with app.app_context():
        second = load(second)
        assert (second.status, second.processed_emails, second.detected_expenses) == (
            "completed", 0, 0)
        assert len(stored_transactions(user)) == len(expected_transactions())

    new_mail = (SHARED_SAMPLES / "emails" / "00001.eml").read_bytes().replace(
        b"510560616836", b"999999999999").replace(b"Message-ID: <", b"Message-ID: <new-")
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
            owners = {e.email_account.user_id for e in
                      db.session.scalars(db.select(Expense).filter_by(user_id=user_id))}
            assert owners == {user_id}


def test_pause_then_resume_continues_from_checkpoint(app, user, tmp_path):
    from expense_sync.accounts import apply_settings
    from expense_sync.demo import generate_notifications, write_maildir

    generated = list(generate_notifications(600, seed=3, to_address="demo@example.cr"))
    write_maildir(tmp_path / "inbox", generated)
    with app.app_context():
        account = EmailAccount(user_id=user)
        apply_settings(account, {"bank": "bac", "address": "demo@example.cr",
                                 "source_kind": "maildir", "local_path": str(tmp_path / "inbox")})
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
            "completed", total, total)
        expected = {(e["bank"], e["reference"], e["authorization"]) if e["reference"] else
                    (e["bank"], e["kind"], e["amount"], e["currency"], e["occurred_at"])
                    for e in (g.expected for g in generated) if e["status"] == "transaction"}
        assert len(stored_transactions(user)) == len(expected)
