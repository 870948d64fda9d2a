"""Pieces every bank template shares: the mailbox context, drafts, amounts, outcomes."""

import random
from bisect import bisect
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from typing import Generic, TypeVar

from ..parsing.dates import COSTA_RICA
from ..parsing.model import (
    CARD_SETTINGS,
    DECLINED,
    MARKETING,
    MARKETING_SENDER,
    NO_AMOUNT,
    NOT_FROM_BANK,
    OFFER,
    OWN_CARD_PAYMENT,
    STATEMENT,
    UNTRUSTED_FORWARD,
    ZERO_PREAUTHORIZATION,
)
from .catalog import Merchant
from .mime import Part

CR_TZ = COSTA_RICA
SPANISH_MONTHS = (
    "ene",
    "feb",
    "mar",
    "abr",
    "may",
    "jun",
    "jul",
    "ago",
    "sep",
    "oct",
    "nov",
    "dic",
)
ENGLISH_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
# Why the demo's ignored mail is ignored, as the parser's codes: every one of them appears.
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
    NO_AMOUNT,
)

T = TypeVar("T")


class Picker(Generic[T]):
    """Weighted choice with the cumulative weights computed once, not on every draw."""

    def __init__(self, weighted: list[tuple[float, T]]) -> None:
        self.items = [item for _, item in weighted]
        self.cumulative = list(accumulate(weight for weight, _ in weighted))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> T:
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True)
class Card:
    brand: str  # as BAC labels it: VISA, MASTER, AMEX
    last4: str


@dataclass
class Mail:
    """A notification before it becomes bytes, with the outcome it must parse to."""

    sender: tuple[str | None, str]  # display name, address
    subject: str
    sent_at: datetime
    parts: list[Part]
    expected: dict
    plain: str  # the text a mail client quotes when the user forwards it
    variant: str
    # The body has no date, so the transaction's moment is the Date header; a forward
    # quotes that header only to the minute.
    dated_by_header: bool = False


@dataclass
class Ctx:
    """One mailbox's owner and the state that must stay coherent across its messages."""

    rng: random.Random
    given: str
    surnames: str
    short_name: str
    to_address: str
    cards: dict[str, list[Card]]
    crc_iban: str  # masked as BAC prints them: CR8401XXXXXXXXXXXX6111
    usd_iban: str
    scotiabank_until: datetime  # Scotiabank's senders before this moment, DAVIbank's after
    recent: deque[Mail] = field(default_factory=lambda: deque(maxlen=40))
    # What a bank's templates draw once, on first use, and then repeat (account numbers).
    memo: dict[str, object] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.given} {self.surnames}"

    def card(self, bank: str) -> Card:
        cards = self.cards[bank]
        # Most people use one main card and take the second out now and then.
        if len(cards) == 1 or self.rng.random() < 0.75:
            return cards[0]
        return self.rng.choice(cards[1:])


def us_amount(cents: int) -> str:
    """Format as 72,000.00."""
    return f"{cents // 100:,}.{cents % 100:02d}"


def european_amount(cents: int) -> str:
    """Format as 72.000,00, BAC's outgoing-transfer style."""
    return f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}"


def plain_amount(cents: int) -> str:
    """Format as the exact decimal the parser reports: 72000.00."""
    return f"{cents // 100}.{cents % 100:02d}"


def ticket(rng: random.Random, merchant: Merchant) -> tuple[str, int]:
    """Draw a realistic (currency, cents) for one purchase at this merchant."""
    if merchant.prices:
        return ("CRC" if merchant.country == "CR" else "USD"), rng.choice(merchant.prices)
    in_usd = merchant.usd is not None and (
        merchant.crc is None or rng.random() < merchant.usd_share
    )
    if in_usd:
        assert merchant.usd is not None
        low, high = merchant.usd
        dollars = low * (high / low) ** rng.random()
        if rng.random() < 0.12:  # some dollar prices are whole: "USD 15"
            return "USD", max(1, round(dollars)) * 100
        return "USD", max(100, int(dollars * 100))
    assert merchant.crc is not None
    low, high = merchant.crc
    colones = low * (high / low) ** rng.random()
    if rng.random() < 0.85:  # colones prices rarely carry céntimos
        step = merchant.round_to
        return "CRC", max(step, round(colones / step) * step) * 100
    return "CRC", int(colones * 100)


def transaction(
    bank: str,
    kind: str,
    cents: int,
    currency: str,
    occurred_at: datetime,
    *,
    merchant: str | None = None,
    card_last4: str | None = None,
    authorization: str | None = None,
    reference: str | None = None,
) -> dict:
    """The expected outcome of a money movement, shaped like a line of expected.jsonl."""
    return {
        "status": "transaction",
        "bank": bank,
        "kind": kind,
        "direction": "in" if kind in ("transfer_in", "refund") else "out",
        "amount": plain_amount(cents),
        "currency": currency,
        "merchant": merchant,
        "occurred_at": occurred_at.isoformat(),
        "card_last4": card_last4,
        "authorization": authorization,
        "reference": reference,
    }


def ignored(reason: str) -> dict:
    return {"status": "ignored", "reason": reason}


def digits(rng: random.Random, count: int) -> str:
    """A number of exactly `count` digits, leading zeros allowed (authorizations have them)."""
    return f"{rng.randrange(10**count):0{count}d}"


def html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def twelve_hour(moment: datetime) -> str:
    """Format as 02:55 PM, the clock DAVIbank and SINPE notices use."""
    hour = moment.hour % 12 or 12
    return f"{hour:02d}:{moment.minute:02d} {'PM' if moment.hour >= 12 else 'AM'}"
