"""Helpers the bank parsers share: labelled fields, card numbers, building the outcome."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from .amounts import value_money
from .mime import Mail
from .model import (
    CONFLICTING_AMOUNTS,
    KINDS,
    MISSING_DATE,
    TRANSACTION,
    TRUNCATED,
    UNREADABLE_AMOUNT,
    ZERO_PREAUTHORIZATION,
    Outcome,
    Transaction,
    ignored,
    unparsed,
)
from .text import Body

Fields = dict[str, list[str]]
Money = tuple[Decimal, str]

_MASKED_CARD = re.compile(r"(?:\*{3,}[\s-]*)+([0-9]{4})(?![0-9])")
_CARD_ENDING = re.compile(r"terminada en ([0-9]{4})(?![0-9])", re.I)
_OTHER_KINDS = ("devolucion", "reversion", "reembolso", "retiro")
_OTHER_KIND = re.compile(r"\b(?:" + "|".join(_OTHER_KINDS) + r")\b", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def read_fields(body: Body, labels: re.Pattern[str], *, anywhere: bool = False) -> Fields:
    """Values by label, whatever the layout the notice arrived in.

    `labels` matches one label (a named group per field) with its separator, on
    accent-folded text. A label starts a line ("Label: value", or a label line followed
    by its value line); with `anywhere`, labels are also found inside a line, so inline
    pairs ("a: 1 / b: 2"), two pairs per line and the flattened one-line text of an
    HTML-to-text conversion read the same: a value ends where the next label starts.
    """
    segments: list[tuple[int, str | None, str]] = []  # (line, label or None, value)
    for index, (line, folded) in enumerate(zip(body.lines, body.folded, strict=True)):
        if anywhere:
            found = [m for m in labels.finditer(folded) if _starts_word(folded, m.start())]
        else:
            match = labels.match(folded)
            found = [match] if match is not None else []
        if not found:
            segments.append((index, None, line))
            continue
        if found[0].start() > 0:
            segments.append((index, None, line[: found[0].start()].strip()))
        for match, following in zip(found, [*found[1:], None], strict=True):
            end = following.start() if following is not None else len(line)
            segments.append((index, match.lastgroup, _trim_value(line[match.end() : end])))
    fields: Fields = {}
    for position, (index, label, value) in enumerate(segments):
        if label is None:
            continue
        if not value and position + 1 < len(segments):
            next_index, next_label, next_value = segments[position + 1]
            # A label alone at the end of its line: the value is the next line's start.
            if next_label is None and next_index == index + 1:
                value = next_value
        if value:
            fields.setdefault(label, []).append(value)
    return fields


def read_flat_fields(body: Body, labels: re.Pattern[str]) -> Fields:
    """Values by label from the whole body as one line: hard wraps may split any value."""
    return read_fields(Body([body.flat]), labels, anywhere=True)


def _starts_word(text: str, start: int) -> bool:
    return start == 0 or not text[start - 1].isalnum()


def _trim_value(value: str) -> str:
    # Inline layouts separate pairs with " / " or " | ": the separator is not the value's.
    return value.strip().rstrip("/|").rstrip()


def first(fields: Fields, key: str) -> str | None:
    values = fields.get(key)
    return values[0] if values else None


def token(value: str | None) -> str | None:
    """The code at the start of a value ("006835", "2025...375366316")."""
    match = _TOKEN.search(value or "")
    return match.group() if match else None


def card_last4(text: str | None) -> str | None:
    """Last four digits of "***********5149", "****-****-****-6728" or "terminada en 0849"."""
    text = text or ""
    match = (_MASKED_CARD.search(text) if "***" in text else None) or _CARD_ENDING.search(text)
    return match.group(1) if match else None


def names_other_kind(folded: str) -> bool:
    """Whether folded text speaks of a refund or a withdrawal, which would not be a purchase."""
    lowered = folded.lower()
    return any(word in lowered for word in _OTHER_KINDS) and bool(_OTHER_KIND.search(folded))


def money_of(values: list[str] | None, currency: str | None = None) -> Money | None:
    """The amount of a field; None when unreadable or when two values of it disagree."""
    readings = {value_money(value, currency) for value in values or []}
    return readings.pop() if len(readings) == 1 else None


def transaction(
    bank: str,
    kind: str,
    money: Money | None,
    when: datetime | None,
    *,
    merchant: str | None = None,
    card: str | None = None,
    authorization: str | None = None,
    reference: str | None = None,
) -> Outcome:
    """The outcome for a notice whose shape was recognised: a transaction if it is whole."""
    if money is None:
        return unparsed(UNREADABLE_AMOUNT, bank)
    amount, currency = money
    if amount == 0:  # a card check or pre-authorization: no money moved
        return ignored(ZERO_PREAUTHORIZATION, bank)
    if when is None:
        return unparsed(MISSING_DATE, bank)
    found = Transaction(
        bank=bank,
        kind=kind,
        direction=KINDS[kind],
        amount=amount,
        currency=currency,
        merchant=merchant or None,
        occurred_at=when,
        card_last4=card,
        authorization=authorization,
        reference=reference,
    )
    return Outcome(status=TRANSACTION, transaction=found, bank=bank)


def read_bodies(mail: Mail, read: Callable[[Body, Mail], Outcome | None]) -> Outcome | None:
    """Read the text and the HTML part; they must agree, or nothing is believed.

    Two parts that disagree on the amount, the currency or the direction make the
    message unparsed. A part the message was cut off in may hold a cut amount
    ("72,00" of "72,000.00"), so it never decides: a message with only such a part
    is unparsed.
    """
    decided: list[Outcome] = []
    cut: list[Outcome] = []
    fallback: Outcome | None = None
    for body in mail.bodies():
        outcome = read(body, mail)
        if outcome is None:
            continue
        if outcome.status == TRANSACTION or outcome.reason == ZERO_PREAUTHORIZATION:
            (decided if body.complete else cut).append(outcome)
        elif fallback is None:
            fallback = outcome
    if not decided:
        return unparsed(TRUNCATED, cut[0].bank) if cut else fallback
    if any(_gist(other) != _gist(decided[0]) for other in decided[1:]):
        return unparsed(CONFLICTING_AMOUNTS, decided[0].bank)
    return decided[0]


def _gist(outcome: Outcome) -> tuple[object, ...]:
    tx = outcome.transaction
    if tx is None:
        return (outcome.status, outcome.reason)
    return (tx.amount, tx.currency, tx.direction)
