"""parse_message: one raw email in, exactly one Outcome out, whatever the input."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from . import forwards, headers, rules
from .amounts import has_money
from .mime import Mail, read_message
from .model import (
    DECLINED,
    MARKETING_SENDER,
    NOT_FROM_BANK,
    PARSER_ERROR,
    TRANSACTION,
    UNKNOWN_LAYOUT,
    UNPARSED,
    UNREADABLE_MESSAGE,
    UNTRUSTED_FORWARD,
    Outcome,
    ignored,
    unparsed,
)
from .registry import BankParser, bank_for_sender, banks_named_in

# A notice is a few hundred characters; what lies beyond this is footers and disclaimers.
MAX_REVIEW_TEXT = 20_000
_RAW_FROM = re.compile(rb"^from:[ \t]*([^\r\n]*)", re.I | re.M)


def parse_message(raw: bytes, *, own_addresses: Iterable[str] = ()) -> Outcome:
    """Classify one raw email. Never raises.

    own_addresses are the synced mailbox's own addresses: a forwarded notification
    counts only when it was sent from one of them (or from the message's To).
    """
    try:
        mail = read_message(_as_bytes(raw))
    except Exception:
        return _unreadable(raw)
    try:
        own = [own_addresses] if isinstance(own_addresses, str) else list(own_addresses)
        outcome = _classify(mail, own)
    except Exception:
        bank = _bank_code(mail.sender)
        outcome = unparsed(PARSER_ERROR, bank) if bank else ignored(NOT_FROM_BANK)
    kept = outcome.status != TRANSACTION and outcome.bank is not None
    return Outcome(
        status=outcome.status,
        reason=outcome.reason,
        transaction=outcome.transaction,
        bank=outcome.bank,
        message_id=mail.message_id,
        sender=mail.sender,
        subject=mail.subject,
        sent_at=mail.sent_at,
        text=readable_text(mail) if kept else None,
        raw=_as_bytes(raw) if kept and outcome.status == UNPARSED else None,
    )


def readable_text(mail: Mail) -> str:
    """The message's text as a person reads it (the HTML part as text), for review."""
    try:
        text = "\n".join(mail.first_body().lines)
    except Exception:
        return ""
    return text[:MAX_REVIEW_TEXT]


def _classify(mail: Mail, own_addresses: list[str]) -> Outcome:
    bank = bank_for_sender(mail.sender)
    if bank is not None:
        return _read_bank_mail(bank, mail)
    inner = forwards.unwrap(mail, is_bank=lambda sender: bank_for_sender(sender) is not None)
    if inner is not None:
        inner_bank = bank_for_sender(inner.sender)
        if inner_bank is None:
            return ignored(NOT_FROM_BANK)
        if not forwards.trusted(mail, own_addresses):
            return ignored(UNTRUSTED_FORWARD, inner_bank.code)
        return _read_bank_mail(inner_bank, inner)
    if mail.subject != mail.bare_subject and forwards.trusted(mail, own_addresses):
        return _read_pasted(mail)
    return ignored(NOT_FROM_BANK)


def _read_bank_mail(bank: BankParser, mail: Mail) -> Outcome:
    """The outcome of a message from one of the bank's senders (or a trusted forward)."""
    if bank.markets_from(mail.sender):  # promotions: never a notification
        return ignored(MARKETING_SENDER, bank.code)
    outcome = _template_outcome(bank, mail)
    return outcome if outcome is not None else rules.unrecognised(mail, bank.code)


def _template_outcome(bank: BankParser, mail: Mail) -> Outcome | None:
    """What the bank's templates read of a message, or None when none of them knows it."""
    try:
        outcome = bank.parse(mail)
    except Exception:
        return unparsed(PARSER_ERROR, bank.code)
    if outcome is not None and outcome.status == TRANSACTION and rules.declined(mail):
        return ignored(DECLINED, bank.code)
    return outcome


def _read_pasted(mail: Mail) -> Outcome:
    """A manual forward with no header block: the bank's text pasted under "FW: ...".

    The template names its bank ("DAVIbank le notifica", "Banco Nacional"); each bank the
    text names is tried, the first named first. A named bank's text with an amount that no
    template reads stays visible as unparsed.
    """
    named = banks_named_in(mail)
    for bank in named:
        outcome = _template_outcome(bank, mail)
        if outcome is not None:
            return outcome
    if named and any(has_money(body.flat) for body in mail.bodies()):
        return unparsed(UNKNOWN_LAYOUT, named[0].code)
    return ignored(NOT_FROM_BANK)


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    raise TypeError(f"expected bytes, got {type(raw).__name__}")


def _bank_code(sender: str | None) -> str | None:
    try:
        bank = bank_for_sender(sender)
    except Exception:
        return None
    return bank.code if bank is not None else None


def _unreadable(raw: object) -> Outcome:
    """The email package gave up: a bank's message is still kept visible as unparsed."""
    try:
        data = _as_bytes(raw)
        found = _RAW_FROM.search(data[:65536])
        sender = headers.address(found.group(1).decode("latin-1")) if found else None
        bank = _bank_code(sender)
    except Exception:
        data, sender, bank = None, None, None
    if bank is not None:
        return replace(unparsed(UNREADABLE_MESSAGE, bank), sender=sender, raw=data)
    return replace(ignored(NOT_FROM_BANK), sender=sender)
