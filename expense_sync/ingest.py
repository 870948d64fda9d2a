"""Idempotent storage of parse outcomes, committed together with the account's checkpoint."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .models import EmailAccount, Expense, SyncSessionAccount, UnreadableEmail
from .parsing import Outcome
from .parsing.model import PARSER_ERROR


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

    Reference and authorization when the notice has them; otherwise what it says of the
    transaction, to the minute: a notice with no date of its own (Banco Popular's debit
    card) takes the Date header's, and a forward's header block shows that to the minute.
    """
    tx = outcome.transaction
    if tx is None:
        return None
    if tx.reference:
        return f"{tx.bank}:{tx.reference}:{tx.authorization or ''}"
    minute = tx.occurred_at.replace(second=0, microsecond=0).isoformat()
    return f"{tx.bank}:{tx.kind}:{tx.amount}:{tx.currency}:{tx.card_last4 or ''}:{minute}"


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
    reconcile(account, [item for item in items if item[0] <= account.reread_until_uid])
    expenses = [expense_row(owner, key, outcome) for _, key, outcome in items
                if outcome.status == "transaction"]
    unreadable = [unreadable_row(owner, key, outcome) for _, key, outcome in items
                  if outcome.status == "unparsed"]
    detected = errors = 0
    # One statement per table per batch (one per email was two thirds of a sync's time).
    # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT. Only rows
    # inserted count, so mail read again adds nothing to the session's figures.
    if expenses:
        inserted = db.session.execute(
            _insert(Expense).returning(Expense.__table__.c.direction), expenses).scalars()
        detected = sum(1 for direction in inserted if direction == "out")
    if unreadable:
        errors = len(db.session.execute(
            _insert(UnreadableEmail).returning(UnreadableEmail.__table__.c.id),
            unreadable).all())
    advance(account, [uid for uid, _, _ in items], uidvalidity)
    row.processed_emails += len(items)
    row.detected_expenses += detected
    row.error_count += errors
    db.session.commit()
    return BatchResult(len(items), detected, errors)


def reconcile(account: EmailAccount, items: Sequence[tuple]) -> None:
    """Redo what older parsers stored of mail read again: each message keeps one outcome.

    Unreadable rows of mail that now reads go and those still unreadable take the new
    reason; expenses of mail that now is no transaction go (an old parser counted the
    creation of a cardless-withdrawal code as a withdrawal). The caller inserts the new
    outcomes, and its ON CONFLICT keeps the rows that are still right.
    """
    if not items:
        return
    readable = [key for _, key, outcome in items if outcome.status != "unparsed"]
    # A parser that crashed on a message says nothing of it: its expense stays.
    no_transaction = [key for _, key, outcome in items
                      if outcome.status != "transaction" and outcome.reason != PARSER_ERROR]
    reasons = [{"key": key, "new_reason": reason_of(outcome)}
               for _, key, outcome in items if outcome.status == "unparsed"]
    expense, unreadable = Expense.__table__.c, UnreadableEmail.__table__.c
    if no_transaction:
        db.session.execute(db.delete(Expense.__table__).where(
            expense.email_account_id == account.id, expense.message_key.in_(no_transaction)))
    if readable:
        db.session.execute(db.delete(UnreadableEmail.__table__).where(
            unreadable.email_account_id == account.id, unreadable.message_key.in_(readable)))
    if reasons:
        db.session.execute(
            db.update(UnreadableEmail.__table__)
            .where(unreadable.email_account_id == account.id,
                   unreadable.message_key == bindparam("key"))
            .values(reason=bindparam("new_reason")), reasons)


def advance(account: EmailAccount, uids: Sequence[int], uidvalidity: int) -> None:
    """Move the checkpoint past the batch, and forget the re-read mark once it is behind."""
    if uids:
        account.last_uid = max(account.last_uid, max(uids))
    if account.last_uid >= account.reread_until_uid:
        account.reread_until_uid = 0
    account.uidvalidity = uidvalidity


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
        "reason": reason_of(outcome),
    }


def reason_of(outcome: Outcome) -> str:
    return outcome.reason or "sin motivo"


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
