"""The outcome of parsing one email: the contract the rest of the app codes against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

TRANSACTION = "transaction"
IGNORED = "ignored"
UNPARSED = "unparsed"

KINDS = {
    "purchase": "out",
    "withdrawal": "out",
    "transfer_out": "out",
    "transfer_in": "in",
    "refund": "in",
}
CURRENCIES = ("CRC", "USD")

# Reasons for ignored mail. The first three are the ones samples/expected.jsonl uses;
# marketing and statements keep "not a transaction" because the samples say so.
NOT_A_TRANSACTION = "not a transaction"
DECLINED = "declined"
OWN_CARD_PAYMENT = "own card payment"
ZERO_AMOUNT = "zero amount"
UNTRUSTED_FORWARD = "untrusted forward"

# Reasons for unparsed mail: a bank sent it, it looks like money moved, we could not read it.
UNRECOGNISED = "unrecognised notification format"
UNREADABLE_MESSAGE = "unreadable message"
UNREADABLE_AMOUNT = "amount missing or unreadable"
CONFLICTING_AMOUNTS = "conflicting amounts"
TRUNCATED = "message truncated"
UNKNOWN_TYPE = "unknown transaction type"
MISSING_DATE = "date missing or unreadable"
PARSER_ERROR = "parser error"

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Transaction:
    bank: str
    kind: str
    direction: str
    amount: Decimal
    currency: str
    merchant: str | None
    occurred_at: datetime
    card_last4: str | None
    authorization: str | None
    reference: str | None


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str | None = None
    transaction: Transaction | None = None
    bank: str | None = None
    message_id: str | None = None
    sender: str | None = None
    subject: str | None = None
    sent_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The expected.jsonl shape, without the "file" and "message_id" the caller adds."""
        tx = self.transaction
        if self.status == TRANSACTION and tx is not None:
            return {
                "status": self.status,
                "bank": tx.bank,
                "kind": tx.kind,
                "direction": tx.direction,
                "amount": str(tx.amount.quantize(_CENT)),
                "currency": tx.currency,
                "merchant": tx.merchant,
                "occurred_at": tx.occurred_at.isoformat(),
                "card_last4": tx.card_last4,
                "authorization": tx.authorization,
                "reference": tx.reference,
            }
        if self.status == UNPARSED:
            return {"status": self.status, "reason": self.reason, "bank": self.bank}
        return {"status": self.status, "reason": self.reason}


def ignored(reason: str, bank: str | None = None) -> Outcome:
    return Outcome(status=IGNORED, reason=reason, bank=bank)


def unparsed(reason: str, bank: str | None) -> Outcome:
    return Outcome(status=UNPARSED, reason=reason, bank=bank)
