"""All that is stored about one user: gathered for download, or erased for good.

The database cascades deletes on PostgreSQL; SQLite enforces no foreign keys here, so the
rows go explicitly, children first, the same on both.
"""

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from flask import current_app

from .export import csv_chunks, expense_record, spreadsheet_safe
from .extensions import db
from .models import (
    EmailAccount,
    Expense,
    SyncSession,
    SyncSessionAccount,
    UnreadableEmail,
    User,
)

ACCOUNT_FIELDS = (
    "id",
    "bank",
    "address",
    "source_kind",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_user",
    "folder",
    "local_path",
    "last_synced_at",
    "created_at",
)
SYNC_FIELDS = (
    "token",
    "status",
    "total_emails",
    "processed_emails",
    "detected_expenses",
    "error_count",
    "error_message",
    "created_at",
    "started_at",
    "finished_at",
)
MAIL_FIELDS = (
    "id",
    "email_account_id",
    "status",
    "bank",
    "sender",
    "subject",
    "sent_at",
    "reason",
    "decision",
    "decided_at",
    "text",
    "created_at",
)


def _shown_path(user: User, stored: str | None) -> str | None:
    """A local source's path as its user knows it (in their folder), never the server's."""
    from .forms import user_folder

    if not stored:
        return stored
    path, own = Path(stored), user_folder(current_app.config["LOCAL_MAILBOX_ROOT"], user.id)
    return str(path.relative_to(own)) if path.is_relative_to(own) else path.name


def _plain(row, fields) -> dict:
    values = {}
    for name in fields:
        value = getattr(row, name)
        values[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def document(user: User) -> dict:
    """The user's data as one JSON-ready document (passwords and keys are never in it)."""

    def rows(model, order):
        return db.session.scalars(db.select(model).filter_by(user_id=user.id).order_by(order))

    return {
        "usuario": {"email": user.email, "created_at": user.created_at.isoformat()},
        "cuentas": [
            _plain(a, ACCOUNT_FIELDS) | {"local_path": _shown_path(user, a.local_path)}
            for a in user.accounts
        ],
        "sincronizaciones": [
            _plain(s, SYNC_FIELDS)
            | {
                "cuentas": [
                    {
                        "email_account_id": r.email_account_id,
                        "status": r.status,
                        "processed_emails": r.processed_emails,
                        "error_message": r.error_message,
                    }
                    for r in s.accounts
                ]
            }
            for s in rows(SyncSession, SyncSession.created_at)
        ],
        "gastos": [
            expense_record(e) | {"id": e.id, "eliminado": e.deleted_at is not None}
            for e in rows(Expense, Expense.occurred_at)
        ],
        "correos_guardados": [
            _plain(m, MAIL_FIELDS) for m in rows(UnreadableEmail, UnreadableEmail.id)
        ],
    }


def files(user: User) -> Iterator[tuple[str, str]]:
    """The download: the whole document as JSON, and each list as a CSV for spreadsheets."""
    data = document(user)
    yield "datos.json", json.dumps(data, ensure_ascii=False, indent=2)
    expenses = db.session.scalars(
        db.select(Expense).filter_by(user_id=user.id, deleted_at=None).order_by(Expense.occurred_at)
    )
    yield "gastos.csv", "".join(csv_chunks(expenses))
    for name, key in (
        ("cuentas.csv", "cuentas"),
        ("sincronizaciones.csv", "sincronizaciones"),
        ("correos_guardados.csv", "correos_guardados"),
    ):
        yield name, _csv(data[key])


def _csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    buffer.write("\ufeff")
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\r\n")
        writer.writeheader()
        # Subjects, senders and texts of kept mail come from whoever sent the mail.
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in records)
    return buffer.getvalue()


def _cell(value):
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    return spreadsheet_safe(value) if isinstance(value, str) else value


def erase(user: User) -> tuple[list[str], list[int]]:
    """Delete the user and everything of theirs; returns the sync tokens and row ids whose
    Redis keys the caller deletes. The caller's transaction is committed."""
    sessions = db.select(SyncSession.id).filter_by(user_id=user.id)
    tokens = list(db.session.scalars(db.select(SyncSession.token).filter_by(user_id=user.id)))
    rows = list(
        db.session.scalars(
            db.select(SyncSessionAccount.id).where(SyncSessionAccount.sync_session_id.in_(sessions))
        )
    )
    for model in (UnreadableEmail, Expense):
        db.session.execute(db.delete(model).where(model.user_id == user.id))
    db.session.execute(
        db.delete(SyncSessionAccount).where(SyncSessionAccount.sync_session_id.in_(sessions))
    )
    db.session.execute(db.delete(SyncSession).where(SyncSession.user_id == user.id))
    db.session.execute(db.delete(EmailAccount).where(EmailAccount.user_id == user.id))
    db.session.execute(db.delete(User).where(User.id == user.id))
    db.session.commit()
    return tokens, rows


def erase_account(account: EmailAccount) -> None:
    """Delete an email account with its expenses, kept mail and sync rows; the caller commits."""
    for model in (UnreadableEmail, Expense, SyncSessionAccount):
        db.session.execute(db.delete(model).where(model.email_account_id == account.id))
    db.session.delete(account)
