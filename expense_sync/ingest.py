"""Idempotent storage of parse outcomes, committed together with the account's checkpoint."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .models import EmailAccount, Expense, SyncSessionAccount, UnreadableEmail
from .parsing import Outcome


@dataclass(frozen=True)
class BatchResult:
    processed: int
    detected: int
    errors: int


def message_key(outcome: Outcome, raw: bytes) -> str:
    """Message-ID when the message has one, else a hash of its bytes."""
    if outcome.message_id and len(outcome.message_id) <= 250:
        return outcome.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def transaction_key(outcome: Outcome) -> str | None:
    """The bank's identity of a transaction, so an original and its forward count once.

    Reference and authorization when the notice has them; otherwise what the notice says
    to the second (a cardless withdrawal carries no reference).
    """
    tx = outcome.transaction
    if tx is None:
        return None
    if tx.reference:
        return f"{tx.bank}:{tx.reference}:{tx.authorization or ''}"
    return f"{tx.bank}:{tx.kind}:{tx.amount}:{tx.currency}:{tx.occurred_at.isoformat()}"


def _insert(model):
    # ON CONFLICT DO NOTHING on every unique key: retries and re-syncs add nothing twice.
    # The Core table, executed with a list of rows: one cached statement that SQLAlchemy
    # sends as multi-row batches ("insertmanyvalues"), not an ORM statement per email.
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model.__table__).on_conflict_do_nothing()


def store_batch(account: EmailAccount, row: SyncSessionAccount, items: Sequence[tuple],
                uidvalidity: int) -> BatchResult:
    """Store a batch of (uid, key, outcome) and advance the checkpoint in one transaction."""
    now = datetime.now(UTC)
    owner = {"user_id": account.user_id, "email_account_id": account.id,
             "sync_session_id": row.sync_session_id, "created_at": now}
    expenses = [expense_row(owner, key, outcome) for _, key, outcome in items
                if outcome.status == "transaction"]
    unreadable = [unreadable_row(owner, key, outcome) for _, key, outcome in items
                  if outcome.status == "unparsed"]
    detected = 0
    if expenses:
        # One statement per batch (one per email was two thirds of a sync's time). RETURNING,
        # not rowcount: drivers disagree on rowcount after ON CONFLICT.
        inserted = db.session.execute(
            _insert(Expense).returning(Expense.__table__.c.direction), expenses).scalars()
        detected = sum(1 for direction in inserted if direction == "out")
    if unreadable:
        db.session.execute(_insert(UnreadableEmail), unreadable)
    if items:
        account.last_uid = max(account.last_uid, max(uid for uid, _, _ in items))
    account.uidvalidity = uidvalidity
    row.processed_emails += len(items)
    row.detected_expenses += detected
    row.error_count += len(unreadable)
    db.session.commit()
    return BatchResult(len(items), detected, len(unreadable))


def expense_row(owner: dict, key: str, outcome: Outcome) -> dict:
    tx = outcome.transaction
    cents = tx.amount.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"amount {tx.amount} has more than two decimals")
    return owner | {
        "message_key": key, "transaction_key": transaction_key(outcome), "bank": tx.bank,
        "kind": tx.kind, "direction": tx.direction, "amount_cents": int(cents),
        "currency": tx.currency, "merchant": _clip(tx.merchant, 255),
        "occurred_at": tx.occurred_at, "card_last4": tx.card_last4,
        "authorization": _clip(tx.authorization, 64), "reference": _clip(tx.reference, 64),
    }


def unreadable_row(owner: dict, key: str, outcome: Outcome) -> dict:
    return owner | {
        "message_key": key, "bank": outcome.bank, "sender": _clip(outcome.sender, 254),
        "subject": outcome.subject, "sent_at": outcome.sent_at,
        "reason": outcome.reason or "sin motivo",
    }


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
