"""Idempotent storage of parse outcomes, committed together with the account's checkpoint."""

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .models import EmailAccount, Expense, SyncSessionAccount, UnreadableEmail
from .parsing import Outcome, parse_message
from .parsing.model import IGNORED, PARSER_ERROR, TRANSACTION, UNPARSED

# Raw messages larger than this are not kept for "Volver a leer" (their text still is).
MAX_KEPT_RAW = 4 * 1024 * 1024


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


def store_batch(
    account: EmailAccount, row: SyncSessionAccount, items: Sequence[tuple], uidvalidity: int
) -> BatchResult:
    """Store a batch of (uid, key, outcome) and advance the checkpoint in one transaction."""
    now = datetime.now(UTC)
    owner = {
        "user_id": account.user_id,
        "email_account_id": account.id,
        "sync_session_id": row.sync_session_id,
        "created_at": now,
    }
    again = [item for item in items if item[0] <= account.reread_until_uid]
    dismissed = reconcile(account, again)
    expenses = [
        expense_row(owner, key, outcome)
        for _, key, outcome in items
        if outcome.status == TRANSACTION and key not in dismissed
    ]
    kept = [
        unreadable_row(owner, key, outcome) for _, key, outcome in items if kept_for_review(outcome)
    ]
    detected = errors = 0
    # One statement per table per batch (one per email was two thirds of a sync's time).
    # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT. Only rows
    # inserted count, so mail read again adds nothing to the session's figures.
    if expenses:
        inserted = db.session.execute(
            _insert(Expense).returning(Expense.__table__.c.direction), expenses
        ).scalars()
        detected = sum(1 for direction in inserted if direction == "out")
    if kept:
        inserted = db.session.execute(
            _insert(UnreadableEmail).returning(UnreadableEmail.__table__.c.status), kept
        ).scalars()
        errors = sum(1 for status in inserted if status == UNPARSED)
    advance(account, [uid for uid, _, _ in items], uidvalidity)
    row.processed_emails += len(items)
    row.detected_expenses += detected
    row.error_count += errors
    db.session.commit()
    return BatchResult(len(items), detected, errors)


def reconcile(account: EmailAccount, items: Sequence[tuple]) -> set[str]:
    """Redo what older parsers stored of mail read again: each message keeps one outcome.

    Kept rows of mail that now reads go, and those still kept take the new outcome (the
    user's decision on them stays); expenses the parser stored of mail that now is no
    transaction go (an old parser counted the creation of a cardless-withdrawal code as a
    withdrawal), but never one the user registered, typed or added to. The caller inserts
    the new outcomes, and its ON CONFLICT keeps the rows that are still right.

    Returns the keys of mail the user said is no movement: it stays so, and gets no
    expense, whatever a newer parser reads in it.
    """
    if not items:
        return set()
    gone = [key for _, key, outcome in items if not kept_for_review(outcome)]
    # A parser that crashed on a message says nothing of it: its expense stays.
    no_transaction = [
        key
        for _, key, outcome in items
        if outcome.status != TRANSACTION and outcome.reason != PARSER_ERROR
    ]
    redone = [
        {"key": key} | review_fields(outcome)
        for _, key, outcome in items
        if kept_for_review(outcome)
    ]
    expense, kept = Expense.__table__.c, UnreadableEmail.__table__.c
    dismissed = set(
        db.session.scalars(
            db.select(kept.message_key).where(
                kept.email_account_id == account.id,
                kept.decision == "dismissed",
                kept.message_key.in_([key for _, key, _ in items]),
            )
        )
    )
    if no_transaction:
        # What the user added to an expense (a correction, a category, a note) keeps it.
        db.session.execute(
            db.delete(Expense.__table__).where(
                expense.email_account_id == account.id,
                expense.origin == "mail",
                expense.corrected_at.is_(None),
                expense.category.is_(None),
                expense.note.is_(None),
                expense.message_key.in_(no_transaction),
            )
        )
    gone = [key for key in gone if key not in dismissed]
    if gone:
        db.session.execute(
            db.delete(UnreadableEmail.__table__).where(
                kept.email_account_id == account.id, kept.message_key.in_(gone)
            )
        )
    if redone:
        db.session.execute(
            db.update(UnreadableEmail.__table__)
            .where(kept.email_account_id == account.id, kept.message_key == bindparam("key"))
            .values({name: bindparam(name) for name in REVIEW_FIELDS}),
            redone,
        )
    return dismissed


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
        "message_key": key,
        "transaction_key": transaction_key(outcome),
        "bank": tx.bank,
        "kind": tx.kind,
        "direction": tx.direction,
        "amount_cents": int(cents),
        "currency": tx.currency,
        "merchant": _clip(tx.merchant, 255),
        "occurred_at": tx.occurred_at,
        "card_last4": tx.card_last4,
        "authorization": _clip(tx.authorization, 64),
        "reference": _clip(tx.reference, 64),
    }


def reread(mail: UnreadableEmail) -> Outcome | None:
    """Read a kept mail again with today's parsers and store what they say of it now.

    None when its message was not kept (ignored mail, or rows from before it was kept).
    A notice that now reads becomes an expense like any synced one; an expense the user
    already registered from it wins (the unique key on account and message).
    """
    if mail.raw_message is None:
        return None
    account = mail.email_account
    outcome = parse_message(zlib.decompress(mail.raw_message), own_addresses=[account.address])
    if outcome.status == TRANSACTION:
        owner = {
            "user_id": mail.user_id,
            "email_account_id": account.id,
            "sync_session_id": mail.sync_session_id,
            "created_at": datetime.now(UTC),
        }
        db.session.execute(_insert(Expense), [expense_row(owner, mail.message_key, outcome)])
    if kept_for_review(outcome):
        for name, value in review_fields(outcome).items():
            setattr(mail, name, value)
    else:
        db.session.delete(mail)
    return outcome


def kept_for_review(outcome: Outcome) -> bool:
    """Bank mail that gave no expense: unreadable, or ignored by a rule the user may overrule."""
    return outcome.status == UNPARSED or (outcome.status == IGNORED and outcome.bank is not None)


REVIEW_FIELDS = ("status", "reason", "text", "raw_message")


def review_fields(outcome: Outcome) -> dict:
    """What a parse says of a kept mail; the rest of its row is who it is and the user's say."""
    raw = outcome.raw if outcome.raw is not None and len(outcome.raw) <= MAX_KEPT_RAW else None
    return {
        "status": outcome.status,
        "reason": reason_of(outcome),
        "text": outcome.text,
        "raw_message": zlib.compress(raw) if raw is not None else None,
    }


def unreadable_row(owner: dict, key: str, outcome: Outcome) -> dict:
    return (
        owner
        | review_fields(outcome)
        | {
            "message_key": key,
            "bank": outcome.bank,
            "sender": _clip(outcome.sender, 254),
            "subject": outcome.subject,
            "sent_at": outcome.sent_at,
        }
    )


def reason_of(outcome: Outcome) -> str:
    return outcome.reason or "sin motivo"


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
