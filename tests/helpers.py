"""Test helpers shared by test modules (conftest.py holds only fixtures); no test module
imports another."""

import json
import re
import time
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from expense_sync.extensions import db

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures" / "emails"
# The shared notification samples (BANK_FORMATS.md) beside the repository when they are
# there, else the copy the tests carry (tests/fixtures/shared).
SHARED = next(
    path
    for path in (TESTS.parents[1] / "shared", TESTS / "fixtures" / "shared")
    if (path / "samples").is_dir()
)
SHARED_SAMPLES = SHARED / "samples"


def csrf_token(client, path="/login") -> str:
    """Read the CSRF token the page puts in its meta tag (valid for this client's session)."""
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


class AuthActions:
    def __init__(self, app, client):
        self._app = app
        self._client = client

    def create(self, email="ana@example.cr", password="contraseña-segura", admin=False):
        from expense_sync.auth import create_user

        with self._app.app_context():
            user = create_user(email, password, admin=admin)
            db.session.commit()
            return user.id

    def login(self, email="ana@example.cr", password="contraseña-segura"):
        token = csrf_token(self._client)
        return self._client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self):
        token = csrf_token(self._client, "/accounts")
        return self._client.post("/logout", data={"csrf_token": token})


def identity(bank, kind, amount, currency, reference, occurred_at) -> tuple:
    """What makes a transaction itself: two withdrawals of the same amount differ in time.

    Without a reference the time counts to the minute, as the app's transaction key: a
    forward of a notice dated by its Date header shows that date to the minute only.
    """
    when = str(occurred_at) if reference else str(occurred_at)[:16]
    return tuple(str(field) for field in (bank, kind, amount, currency, reference, when))


def sse_events(response):
    """Parse a streamed body into (id, event, data) tuples and comments, as they come."""
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if not text:
            continue  # the stream yields an empty chunk after each event
        assert text.endswith("\n\n"), text
        if text.startswith(":"):
            yield ("comment", text.strip())
            continue
        fields = {"id": None, "event": None, "data": []}
        for line in text.strip("\n").split("\n"):
            name, _, value = line.partition(": ")
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
        # An event with no name is a "message" (the widget fragment).
        yield (fields["id"], fields["event"] or "message", "\n".join(fields["data"]))


def stored_identities(user_id: int) -> list[tuple]:
    """The identity of every expense stored for the user, fresh from the database."""
    from expense_sync.models import Expense
    from expense_sync.parsing.dates import COSTA_RICA

    db.session.expire_all()
    return [
        identity(
            e.bank,
            e.kind,
            f"{e.amount:.2f}",
            e.currency,
            e.reference,
            e.occurred_at.astimezone(COSTA_RICA).isoformat(),
        )
        for e in db.session.scalars(db.select(Expense).filter_by(user_id=user_id))
    ]


# -- syncing from a real Dovecot ------------------------------------------------------------

IMAP_PASSWORD = "imap-clave-1"


def sample_messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted((SHARED_SAMPLES / "emails").glob("*.eml"))]


def expected_transactions() -> set[tuple]:
    rows = [json.loads(line) for line in (SHARED_SAMPLES / "expected.jsonl").open()]
    return {
        (r["bank"], r["kind"], r["amount"], r["currency"], r["reference"])
        for r in rows
        if r["status"] == "transaction"
    }


def run_worker(app) -> None:
    """Drain the queue with a real worker: each job runs in a forked work-horse."""
    from expense_sync.rq_worker import make_worker, redis_connection

    make_worker(app, redis_connection(app.config["REDIS_URL"])).work(burst=True)


def new_imap_user(dovecot, messages=()) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, IMAP_PASSWORD)
    if messages:
        dovecot.append(name, messages)
    return name


def imap_account(user_id, dovecot, mailbox, password=IMAP_PASSWORD, port=None):
    from expense_sync.accounts import apply_settings
    from expense_sync.models import EmailAccount

    account = EmailAccount(user_id=user_id)
    apply_settings(
        account,
        {
            "bank": "bac",
            "address": f"{mailbox}@example.cr",
            "source_kind": "imap",
            "imap_host": "127.0.0.1",
            "imap_port": port or dovecot.port,
            "imap_security": "none",
            "imap_user": mailbox,
            "imap_password": password,
            "folder": "INBOX",
        },
    )
    db.session.add(account)
    return account


def load(token: str):
    """The session by token, fresh from the database."""
    from expense_sync.models import SyncSession

    db.session.expire_all()
    return db.session.execute(db.select(SyncSession).filter_by(token=token)).scalar_one()


def wait_for_end(app, token, timeout=90) -> dict:
    """The session's state once it has ended; fails after timeout seconds."""
    from expense_sync.progress import TERMINAL_STATES
    from expense_sync.sync import control

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            state = control.state(load(token))
            if state["status"] in TERMINAL_STATES:
                return state
            time.sleep(0.2)
    raise AssertionError(f"sync did not end in {timeout} s: {state}")


def wait_for_progress(app, token, minimum=1, timeout=60) -> dict:
    """The session's state once it has processed `minimum` emails; fails after timeout."""
    from expense_sync.sync import control

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            state = control.state(load(token))
            if state["processed_emails"] >= minimum:
                return state
            time.sleep(0.02)
    raise AssertionError(f"the sync did not reach {minimum} emails in {timeout} s: {state}")


# -- mail sources ---------------------------------------------------------------------------

APP_PASSWORD = "clave-de-aplicacion-123"  # what a provider's app password looks like
BAC = "alerta@baccredomatic.com"
SENDERS = ["baccredomatic.com", "davibank.cr"]


def email(sender: str = BAC, subject: str = "Notificación de transacción") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "cliente@example.cr"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.cr")
    message.set_content("Comercio: AUTOMERCADO\nMonto: CRC 12,500.00\n")
    return message.as_bytes()


def settings(dovecot, user, **overrides):
    """IMAP settings for a Dovecot user, as a saved account would give them."""
    from expense_sync.mailboxes import ImapSettings

    values = {"host": dovecot.host, "port": dovecot.port, "security": "none"}
    values |= {"username": user, "password": APP_PASSWORD, "timeout": 5.0}
    return ImapSettings(**(values | overrides))


# -- the review queue -----------------------------------------------------------------------

UNKNOWN_TYPE = "bac_unparsed_unknown_type.eml"  # HOTEL PLAYA, USD 310.00, type "ANULACION"
PURCHASE = "bac_purchase_html_spanish_month.eml"  # AUTOMERCADO LOS YOSES, ₡12 500


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sync_row(user_id: int):
    """An account being synced, as the engine holds it while storing batches."""
    from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount

    account = EmailAccount(
        user_id=user_id,
        bank="bac",
        source_kind="mbox",
        local_path="x.mbox",
        address=f"{uuid.uuid4().hex[:6]}@example.cr",
    )
    session = SyncSession(user_id=user_id, status="completed")  # several may exist
    row = SyncSessionAccount(sync_session=session, email_account=account, status="processing")
    db.session.add(row)
    db.session.commit()
    return row


def store(row, *messages: bytes, first_uid: int = 1):
    from expense_sync.ingest import message_key, store_batch
    from expense_sync.parsing import parse_message

    items = []
    for uid, message in enumerate(messages, first_uid):
        outcome = parse_message(message, own_addresses=[row.email_account.address])
        items.append((uid, message_key(outcome, message), outcome))
    return store_batch(row.email_account, row, items, uidvalidity=7)
