"""Helpers the bank parsers share: labelled fields, card numbers, building the outcome."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from .amounts import find_money
from .mime import Mail
from .model import (
    CONFLICTING_AMOUNTS,
    KINDS,
    MISSING_DATE,
    TRANSACTION,
    TRUNCATED,
    UNREADABLE_AMOUNT,
    ZERO_AMOUNT,
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


def read_fields(body: Body, labels: re.Pattern[str], *, inline: bool = False) -> Fields:
    """Values by label, from "Label: value" lines or a label line followed by its value.

    `labels` matches one label (a named group per field) plus its separator at the start
    of an accent-folded line. With `inline`, lines of "a: 1 / b: 2" pairs are split first.
    """
    lines, folded = body.lines, body.folded
    if inline:
        lines, folded = _split_inline(lines, folded, labels)
    matches = [labels.match(line) for line in folded]
    fields: Fields = {}
    for index, match in enumerate(matches):
        if match is None or match.lastgroup is None:
            continue
        value = lines[index][match.end() :].strip()
        following = index + 1
        if not value and following < len(lines) and matches[following] is None:
            value = lines[following]
        if value:
            fields.setdefault(match.lastgroup, []).append(value)
    return fields


def _split_inline(
    lines: list[str], folded: list[str], labels: re.Pattern[str]
) -> tuple[list[str], list[str]]:
    out_lines: list[str] = []
    out_folded: list[str] = []
    for line, folded_line in zip(lines, folded, strict=True):
        folded_parts = folded_line.split(" / ")
        if len(folded_parts) < 2 or sum(1 for part in folded_parts if labels.match(part)) < 2:
            out_lines.append(line)
            out_folded.append(folded_line)
            continue
        start = len(out_lines)
        for part, folded_part in zip(line.split(" / "), folded_parts, strict=True):
            # A piece that starts with no label belongs to the value before it
            # (a merchant called "A / B").
            if len(out_lines) > start and not labels.match(folded_part):
                out_lines[-1] += " / " + part
                out_folded[-1] += " / " + folded_part
            else:
                out_lines.append(part)
                out_folded.append(folded_part)
    return out_lines, out_folded


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
    readings = {find_money(value, currency) for value in values or []}
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
        return ignored(ZERO_AMOUNT, bank)
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
        if outcome.status == TRANSACTION or outcome.reason == ZERO_AMOUNT:
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
