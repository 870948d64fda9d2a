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
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()


def store_batch(account: EmailAccount, row: SyncSessionAccount, items: Sequence[tuple],
                uidvalidity: int) -> BatchResult:
    """Store a batch of (uid, key, outcome) and advance the checkpoint in one transaction."""
    detected = errors = 0
    for _uid, key, outcome in items:
        if outcome.status == "transaction":
            tx = outcome.transaction
            result = db.session.execute(_insert(Expense).values(
                user_id=account.user_id, email_account_id=account.id,
                sync_session_id=row.sync_session_id, message_key=key,
                transaction_key=transaction_key(outcome), bank=tx.bank, kind=tx.kind,
                direction=tx.direction, amount_cents=int(tx.amount.scaleb(2)),
                currency=tx.currency, merchant=_clip(tx.merchant, 255),
                occurred_at=tx.occurred_at, card_last4=tx.card_last4,
                authorization=_clip(tx.authorization, 64), reference=_clip(tx.reference, 64),
                created_at=datetime.now(UTC),
            ).returning(Expense.id))
            # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT.
            if result.first() is not None and tx.direction == "out":
                detected += 1
        elif outcome.status == "unparsed":
            errors += 1
            db.session.execute(_insert(UnreadableEmail).values(
                user_id=account.user_id, email_account_id=account.id,
                sync_session_id=row.sync_session_id, message_key=key, bank=outcome.bank,
                sender=_clip(outcome.sender, 254), subject=outcome.subject,
                sent_at=outcome.sent_at, reason=outcome.reason or "sin motivo",
                created_at=datetime.now(UTC),
            ))
    if items:
        account.last_uid = max(account.last_uid, max(uid for uid, _, _ in items))
    account.uidvalidity = uidvalidity
    row.processed_emails += len(items)
    row.detected_expenses += detected
    row.error_count += errors
    db.session.commit()
    return BatchResult(len(items), detected, errors)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
