"""Mail read by older parsers, read again: real Dovecot, Redis, RQ workers, both databases."""

import json
import random
import time
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from helpers import (
    FIXTURES,
    imap_account,
    load,
    new_imap_user,
    run_worker,
    wait_for_end,
    wait_for_progress,
)
from servers import kill_tree

from expense_sync import engine
from expense_sync.auth import create_user
from expense_sync.demo import generate_notifications
from expense_sync.extensions import db
from expense_sync.ingest import message_key
from expense_sync.models import (
    EmailAccount,
    Expense,
    SyncSession,
    UnreadableEmail,
    User,
    now_utc,
)
from expense_sync.parsing import PARSER_VERSION, parse_message
from expense_sync.parsing.model import PARSER_ERROR, TRANSACTION, UNPARSED
from expense_sync.progress import TERMINAL_STATES
from expense_sync.rq_worker import make_worker, redis_connection
from expense_sync.sync import control

ROOT = Path(__file__).resolve().parents[1]
OLD_UNREADABLE = "unrecognised notification format"  # what the first parsers stored
# Mail a bank sent that is no transaction (so the scan fetches it).
BANK_IGNORED = {"declined", "zero_preauthorization", "own_card_payment", "statement", "offer"}

# The app on its own Redis with real `python worker.py` processes to kill.


@pytest.fixture
def user(app):
    with app.app_context():
        user = create_user("ana@example.cr", "x" * 12)
        db.session.commit()
        return user.id


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def keyed(raw: bytes, address: str) -> tuple[str, object]:
    """The message key the sync stores a message under, and its outcome now."""
    outcome = parse_message(raw, own_addresses=[address])
    return message_key(outcome, raw), outcome


def stored(user_id: int) -> tuple[list, list]:
    """Every expense and unreadable email of the user, duplicates included."""
    db.session.expire_all()
    expenses = sorted(
        (e.message_key, e.transaction_key, e.kind, e.direction, e.amount_cents, e.currency)
        for e in db.session.scalars(db.select(Expense).filter_by(user_id=user_id))
    )
    unreadable = sorted(
        (u.message_key, u.reason)
        for u in db.session.scalars(db.select(UnreadableEmail).filter_by(user_id=user_id))
    )
    return expenses, unreadable


def account_of(user_id: int) -> EmailAccount:
    db.session.expire_all()
    return db.session.scalars(db.select(EmailAccount).filter_by(user_id=user_id)).one()


def sync_counted_first(app, user_id: int) -> tuple[str, int]:
    """Run the coordinator alone, note the total it counted, then the account's job."""
    with app.app_context():
        token = control.start(db.session.get(User, user_id)).token
    make_worker(app, redis_connection(app.config["REDIS_URL"])).work(burst=True, max_jobs=1)
    with app.app_context():
        counted = control.state(load(token))["total_emails"]
    run_worker(app)
    return token, counted


class OldParser:
    """Leaves in the database what the first parsers would have stored for some messages."""

    def __init__(self, account: EmailAccount):
        self.account = account

    def read_as_unparsed(self, key: str) -> None:
        self.never_stored(key)
        db.session.add(
            UnreadableEmail(
                user_id=self.account.user_id,
                message_key=key,
                email_account_id=self.account.id,
                bank="bac",
                reason=OLD_UNREADABLE,
            )
        )

    def never_stored(self, key: str) -> None:
        """Ignored by mistake, or from a bank whose senders the scan did not know yet."""
        found = db.session.execute(
            db.delete(Expense).where(
                Expense.email_account_id == self.account.id, Expense.message_key == key
            )
        )
        assert found.rowcount == 1, key

    def read_as_withdrawal(self, key: str) -> None:
        db.session.add(
            Expense(
                user_id=self.account.user_id,
                email_account_id=self.account.id,
                message_key=key,
                transaction_key=f"bac:withdrawal:old:{key}",
                bank="bac",
                kind="withdrawal",
                direction="out",
                amount_cents=2_000_000,
                currency="CRC",
                occurred_at=now_utc(),
            )
        )

    def old_reason(self, key: str) -> None:
        row = db.session.scalars(
            db.select(UnreadableEmail).filter_by(email_account_id=self.account.id, message_key=key)
        ).one()
        row.reason = OLD_UNREADABLE

    def done(self) -> None:
        self.account.parser_version = 1
        db.session.commit()


def test_sync_rereads_what_older_parsers_stored_and_stores_nothing_twice(app, dovecot, user):
    mailbox = new_imap_user(dovecot)
    address = f"{mailbox}@example.cr"
    # More than one batch of 200, and the new layouts and banks at the end.
    generated = [g.raw for g in generate_notifications(260, seed=11, to_address=address)]
    cardless = fixture("bac_cardless_code_created_nfd_subject.eml")  # a code, no money
    new_bank = fixture("bcr_sinpemovil_debitado_html_cells.eml")
    new_layout = fixture("bac_purchase_flattened_outlook_text.eml")
    unknown = fixture("bac_unknown_layout_with_amount.eml")
    dovecot.append(mailbox, [*generated, cardless, new_bank, new_layout, unknown])
    with app.app_context():
        imap_account(user, dovecot, mailbox)
        db.session.commit()
    first = sync_counted_first(app, user)[0]

    keys = {
        name: keyed(raw, address)
        for name, raw in (
            ("cardless", cardless),
            ("new_bank", new_bank),
            ("new_layout", new_layout),
            ("unknown", unknown),
        )
    }
    assert keys["cardless"][1].status != TRANSACTION
    assert keys["unknown"][1].status == UNPARSED
    assert all(keys[name][1].transaction.direction == "out" for name in ("new_bank", "new_layout"))
    with app.app_context():
        total = load(first).total_emails
        fresh = stored(user)
        spent = {row[0] for row in fresh[0] if row[3] == "out"}
        first_batch = [keyed(raw, address) for raw in generated[:150]]
        early = next(key for key, _ in first_batch if key in spent)
        declined = next(key for key, outcome in first_batch if outcome.reason in BANK_IGNORED)
        old = OldParser(account_of(user))
        old.read_as_unparsed(early)
        old.read_as_unparsed(keys["new_layout"][0])
        old.never_stored(keys["new_bank"][0])
        old.read_as_withdrawal(keys["cardless"][0])
        old.read_as_withdrawal(declined)
        old.old_reason(keys["unknown"][0])
        old.done()
        last_uid = account_of(user).last_uid
        assert stored(user) != fresh
    later = fixture("bn_voucher_digital_24h_usd.eml")  # arrived after the last sync
    dovecot.append(mailbox, [later])

    token, counted = sync_counted_first(app, user)
    with app.app_context():
        again = load(token)
        assert again.status == "completed"
        assert counted == again.total_emails == again.processed_emails == total + 1
        expenses, unreadable = stored(user)
        added = [row for row in expenses if row not in fresh[0]]
        assert [row[0] for row in added] == [keyed(later, address)[0]]
        assert (expenses, unreadable) == (sorted(fresh[0] + added), fresh[1])
        assert OLD_UNREADABLE not in {reason for _, reason in unreadable}
        # Only rows inserted count: early, new_layout, new_bank and the later mail.
        assert (again.detected_expenses, again.error_count) == (4, 0)
        account = account_of(user)
        assert (account.parser_version, account.reread_until_uid) == (PARSER_VERSION, 0)
        assert account.last_uid == last_uid + 1
        after = stored(user)

    third = sync_counted_first(app, user)[0]
    with app.app_context():
        third = load(third)
        assert (third.status, third.total_emails, third.detected_expenses, third.error_count) == (
            "completed",
            0,
            0,
            0,
        )
        assert stored(user) == after


@pytest.mark.slow
def test_reread_killed_midway_resumes_from_its_checkpoint(stack, dovecot):
    mailbox = new_imap_user(dovecot)
    address = f"{mailbox}@example.cr"
    generated = [g.raw for g in generate_notifications(1500, seed=31, to_address=address)]
    dovecot.append(mailbox, generated)
    with stack.app_context():
        user = create_user("relectura@example.cr", "x" * 12)
        db.session.flush()
        user_id = user.id
        imap_account(user_id, dovecot, mailbox)
        db.session.commit()
        token = control.start(db.session.get(User, user_id)).token
    run_worker(stack)
    total = wait_for_end(stack, token)["total_emails"]
    with stack.app_context():
        fresh = stored(user_id)
        old = OldParser(account_of(user_id))
        for key in [row[0] for row in fresh[0]][::25]:  # spread over every batch
            old.read_as_unparsed(key)
        ignored = [
            key
            for key, outcome in (keyed(raw, address) for raw in generated)
            if outcome.reason in BANK_IGNORED
        ]
        for key in ignored:
            old.read_as_withdrawal(key)
        old.done()
        token = control.start(db.session.get(User, user_id)).token
    worker = stack.start_worker()
    rng = random.Random(31)
    wait_for_progress(stack, token, minimum=rng.randrange(250, 900))
    time.sleep(rng.random() * 0.08)  # somewhere inside a batch
    kill_tree(worker.pid)
    with stack.app_context():
        assert control.state(load(token))["status"] not in TERMINAL_STATES, "killed too late"
        account = account_of(user_id)
        assert account.parser_version == PARSER_VERSION  # the scan was committed
        assert 0 < account.last_uid < account.reread_until_uid
    stack.start_worker()  # its first maintenance finds the dead worker's job
    state = wait_for_end(stack, token)
    assert (state["status"], state["processed_emails"], state["total_emails"]) == (
        "completed",
        total,
        total,
    )
    with stack.app_context():
        assert stored(user_id) == fresh
        assert account_of(user_id).reread_until_uid == 0


def test_reparse_command_rereads_and_prints_the_state_as_sync_does(stack, dovecot):
    mailbox = new_imap_user(dovecot)
    address = f"{mailbox}@example.cr"
    generated = [g.raw for g in generate_notifications(120, seed=5, to_address=address)]
    dovecot.append(mailbox, generated)
    with stack.app_context():
        user = create_user("reparse@example.cr", "x" * 12)
        db.session.flush()
        user_id = user.id
        imap_account(user_id, dovecot, mailbox)
        db.session.commit()
    stack.start_worker()
    runner = stack.test_cli_runner()
    synced = runner.invoke(args=["sync", "--user", "reparse@example.cr", "--json"])
    assert synced.exit_code == 0, synced.output
    with stack.app_context():
        fresh = stored(user_id)
        spent = next(row[0] for row in fresh[0] if row[3] == "out")
        OldParser(account_of(user_id)).read_as_unparsed(spent)
        db.session.commit()  # the account stays at the current version: reparse must say

    result = runner.invoke(args=["reparse", "--user", "reparse@example.cr", "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.output.strip().splitlines()[-1])
    first = json.loads(synced.output.strip().splitlines()[-1])
    assert set(state) == set(first) and set(state["accounts"][0]) == set(first["accounts"][0])
    assert (state["status"], state["processed_emails"]) == ("completed", first["total_emails"])
    assert (state["detected_expenses"], state["error_count"]) == (1, 0)
    with stack.app_context():
        assert stored(user_id) == fresh
        assert account_of(user_id).parser_version == PARSER_VERSION


def test_reparse_refuses_while_a_sync_runs(app, runner, user):
    with app.app_context():
        email = db.session.get(User, user).email
        account = EmailAccount(
            user_id=user, bank="bac", address=email, source_kind="mbox", local_path="/nonexistent"
        )
        db.session.add(account)
        db.session.commit()
        control.start(db.session.get(User, user))  # no worker: it stays pending
    result = runner.invoke(args=["reparse", "--user", email])
    assert result.exit_code == 1
    assert "running" in result.output
    with app.app_context():
        assert account_of(user).parser_version == PARSER_VERSION
        assert db.session.scalar(db.select(db.func.count()).select_from(SyncSession)) == 1


def test_reparse_help_is_one_line(runner):
    result = runner.invoke(args=["reparse", "--help"])
    assert result.exit_code == 0
    assert "--user" in result.output and "re-read" in result.output


MIGRATIONS = str(ROOT / "migrations")


def test_migration_rewrites_old_reasons_and_marks_accounts_read_by_version_1(app):
    old_reasons = {
        "unrecognised notification format": "unknown_layout",
        "amount missing or unreadable": "amount_unreadable",
        "error interno del lector": "parser_error",
        "parser error": "parser_error",
        "algo que nadie conoce": "algo que nadie conoce",
    }
    with app.app_context():
        db.session.remove()
        downgrade(directory=MIGRATIONS, revision="bea467c521aa")
        try:
            insert_before_versions(old_reasons)
        finally:
            upgrade(directory=MIGRATIONS)
        reasons = dict(
            db.session.execute(db.text("SELECT message_key, reason FROM unreadable_email")).all()
        )
        assert reasons == {f"<{old}>": new for old, new in old_reasons.items()}
        account = db.session.scalars(db.select(EmailAccount)).one()
        assert (account.parser_version, account.reread_until_uid) == (1, 0)
        fresh = EmailAccount(user_id=account.user_id, bank="bac", address="b@example.cr")
        db.session.add(fresh)
        db.session.commit()
        assert fresh.parser_version == PARSER_VERSION


def insert_before_versions(reasons) -> None:
    """Rows as the first schema held them, written with plain SQL (the models are newer)."""
    now = now_utc()
    user_id = db.session.execute(
        db.text(
            'INSERT INTO "user" (email, password_hash, is_admin, session_nonce, created_at)'
            " VALUES ('a@example.cr', 'x', false, 'n', :now) RETURNING id"
        ),
        {"now": now},
    ).scalar()
    account_id = db.session.execute(
        db.text(
            "INSERT INTO email_account (user_id, bank, address, source_kind, folder, last_uid,"
            " uidvalidity_changes, created_at)"
            " VALUES (:user, 'bac', 'a@example.cr', 'imap', 'INBOX', 40, 0, :now) RETURNING id"
        ),
        {"user": user_id, "now": now},
    ).scalar()
    db.session.execute(
        db.text(
            "INSERT INTO unreadable_email (user_id, email_account_id, message_key, reason,"
            " created_at) VALUES (:user, :account, :key, :reason, :now)"
        ),
        [
            {
                "user": user_id,
                "account": account_id,
                "key": f"<{reason}>",
                "reason": reason,
                "now": now,
            }
            for reason in reasons
        ],
    )
    db.session.commit()
    db.session.remove()


def test_a_parser_crash_is_recorded_with_the_parser_error_code(monkeypatch):
    def crash(raw, own_addresses):
        raise RuntimeError("a bug")

    monkeypatch.setattr(engine, "parse_message", crash)
    outcome = engine.safe_parse(b"From: a@b.cr\r\n\r\nhola", "a@b.cr")
    assert (outcome.status, outcome.reason) == (UNPARSED, PARSER_ERROR)
