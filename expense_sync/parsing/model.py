"""The outcome of parsing one email: the contract the rest of the app codes against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Bump whenever the parsers change what they read (a new bank, layout, rule or reason):
# the next sync of every account read by older parsers reads its whole folder again.
# 3: bank mail that gave no expense keeps its text (and unreadable mail its message) for
# the review queue, and ignored bank mail is kept too.
PARSER_VERSION = 3

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

# Why an email is ignored: the rule that decided it, so nothing is dropped without one.
NOT_FROM_BANK = "not_from_bank"  # the sender is no bank and it is no trusted forward of one
UNTRUSTED_FORWARD = "untrusted_forward"  # a bank notice "forwarded" by someone else
MARKETING_SENDER = "marketing_sender"  # a bank's promotions address
MARKETING = "marketing"  # a promotion, known by its subject
STATEMENT = "statement"  # "Estado de cuenta"
OFFER = "offer"  # pre-approved credit
CARD_SETTINGS = "card_settings"  # PIN or password changed, a service switched on or off
DECLINED = "declined"
ZERO_PREAUTHORIZATION = "zero_preauthorization"  # USD .00: a card check, no money moved
OWN_CARD_PAYMENT = "own_card_payment"  # paying one's own card would count purchases twice
CARDLESS_CODE = "cardless_code"  # a cardless-withdrawal code was created, nothing withdrawn
VERIFICATION_CODE = "verification_code"  # a one-time code to confirm a purchase
NO_AMOUNT = "no_amount"  # bank mail that names no amount and no movement of money

# Why a bank email is unparsed: it carries money, and we could not read it whole.
UNKNOWN_LAYOUT = "unknown_layout"
UNKNOWN_TYPE = "unknown_type"
UNREADABLE_AMOUNT = "amount_unreadable"
CONFLICTING_AMOUNTS = "conflicting_amounts"
SEVERAL_TRANSACTIONS = "several_transactions"  # one email, several rows of transactions
TRUNCATED = "truncated"
MISSING_DATE = "date_unreadable"
UNREADABLE_MESSAGE = "unreadable_message"
PARSER_ERROR = "parser_error"

IGNORED_REASONS = (
    NOT_FROM_BANK,
    UNTRUSTED_FORWARD,
    MARKETING_SENDER,
    MARKETING,
    STATEMENT,
    OFFER,
    CARD_SETTINGS,
    DECLINED,
    ZERO_PREAUTHORIZATION,
    OWN_CARD_PAYMENT,
    CARDLESS_CODE,
    VERIFICATION_CODE,
    NO_AMOUNT,
)
UNPARSED_REASONS = (
    UNKNOWN_LAYOUT,
    UNKNOWN_TYPE,
    UNREADABLE_AMOUNT,
    CONFLICTING_AMOUNTS,
    SEVERAL_TRANSACTIONS,
    TRUNCATED,
    MISSING_DATE,
    UNREADABLE_MESSAGE,
    PARSER_ERROR,
)

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
    # For bank mail that gave no transaction, what a person needs to decide about it: its
    # readable text, and for unparsed mail the message itself, to be read again later (the
    # same outcome of other bytes, such as other line endings, is still the same outcome).
    text: str | None = field(default=None, repr=False)
    raw: bytes | None = field(default=None, repr=False, compare=False)

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
