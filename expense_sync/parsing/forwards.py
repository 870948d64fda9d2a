"""Forwarded notifications: find the original inside, and decide whether to believe it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from . import headers
from .dates import parse_datetime
from .mime import Mail
from .text import Body, clean_line, fold

_MAX_NESTING = 5  # forwards of forwards of forwards: real mail stops at two or three
_MARKER = re.compile(
    r"^[-_=*\s]*(?:forwarded message|mensaje reenviado|original message|mensaje original"
    r"|begin forwarded message|inicio del mensaje reenviado)\b",
    re.I,
)
# Gmail, Apple Mail and Outlook, in English and Spanish, maybe bold ("*De:*").
_HEADER = re.compile(
    r"^\**\s*(from|de|date|fecha|sent|enviado(?: el)?|to|para|cc|subject|asunto)\s*\**\s*:\s*\**",
    re.I,
)
_CANONICAL = {
    "de": "from",
    "fecha": "date",
    "sent": "date",
    "enviado": "date",
    "enviado el": "date",
    "para": "to",
    "asunto": "subject",
}


def trusted(mail: Mail, own_addresses: Iterable[str]) -> bool:
    """A forward counts only when sent from the mailbox's own address.

    When the caller knows the mailbox (a sync always does), only that address is trusted:
    anyone can send mail From and To their own address and Bcc the user. Without it (a
    loose file given to `parse-emails`), the message's To stands in, as BANK_FORMATS.md
    allows.
    """
    own = {headers.address(value) for value in own_addresses}
    if not own:
        own.update(mail.to)
    return mail.sender is not None and mail.sender in own


def unwrap(mail: Mail, is_bank: Callable[[str | None], bool]) -> Mail | None:
    """The original message inside a forward (attached or inline), or None.

    Forwarded twice ("RV: RV:"), the first original is itself a forward: the innermost
    original a bank sent is the one that counts.
    """
    inner = _original(mail)
    for _ in range(_MAX_NESTING):
        if inner is None or is_bank(inner.sender):
            break
        deeper = _original(inner)
        if deeper is None:
            break
        inner = deeper
    return inner


def _original(mail: Mail) -> Mail | None:
    for inner in mail.attached:
        if inner.sender:
            if inner.sent_at is None:
                inner.sent_at = mail.sent_at
            return inner
    for body in mail.bodies():
        pasted = _inline_original(body)
        if pasted is not None:
            if pasted.sent_at is None:
                pasted.sent_at = mail.sent_at
            return pasted
    return None


def _inline_original(body: Body) -> Mail | None:
    # Quoted forwards prefix every line with ">".
    lines = [line.lstrip("> ") for line in body.lines]
    folded = [fold(line) for line in lines]
    start = _header_block_start(folded)
    if start is None:
        return None
    found: dict[str, str] = {}
    index = start
    while index < len(lines):
        match = _HEADER.match(folded[index])
        if match is None:
            break
        key = _CANONICAL.get(match.group(1).lower(), match.group(1).lower())
        if key in found:  # a second "Fecha:" is the original body's, not the header's
            break
        found[key] = lines[index][match.end() :].strip()
        index += 1
    sender = headers.address(found.get("from"))
    if sender is None:
        return None
    stamp = found.get("date")
    return Mail(
        sender=sender,
        subject=clean_line(headers.decode_words(found.get("subject", ""))),
        sent_at=headers.header_date(stamp) or parse_datetime(stamp or ""),
        plain="\n".join(lines[index:]),
        plain_complete=body.complete,
    )


def _header_block_start(folded: list[str]) -> int | None:
    for index, line in enumerate(folded):
        if _MARKER.match(line):
            return index + 1
        match = _HEADER.match(line)
        if match and match.group(1).lower() in ("from", "de") and "@" in line:
            # Outlook has no marker line: a From with an address and a Subject close below.
            for later in folded[index + 1 : index + 7]:
                header = _HEADER.match(later)
                if header and header.group(1).lower() in ("subject", "asunto"):
                    return index
    return None
