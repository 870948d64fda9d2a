"""Mail that is not from a bank: personal notes and forwarded notifications."""

from datetime import datetime

from . import catalog
from .base import ENGLISH_MONTHS, NOT_FROM_BANK, UNTRUSTED_FORWARD, Ctx, Mail, ignored
from .mime import Part

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NOTES = ("", "", "", "Para el control de gastos.\n\n", "Ojo con este cobro.\n\n", "FYI\n\n")


def personal(ctx: Ctx, when: datetime) -> Mail:
    """A friend's message that mentions money: not a bank, so ignored."""
    rng = ctx.rng
    sender = rng.choice(catalog.FRIENDS)
    subject, note = rng.choice(catalog.FRIEND_NOTES)
    text = note + "\n"
    encoding = "7bit" if text.isascii() else "8bit"
    return Mail(
        sender,
        subject,
        when,
        [Part("plain", text, encoding=encoding)],
        ignored(NOT_FROM_BANK),
        text,
        "other-personal",
    )


def _gmail_date(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {ENGLISH_MONTHS[moment.month - 1]} {moment.day}, "
        f"{moment.year} at {hour}:{moment.minute:02d} {'PM' if moment.hour >= 12 else 'AM'}"
    )


def forward(ctx: Ctx, when: datetime, original: Mail, own: bool) -> Mail:
    """A notification forwarded as plain text, the way Gmail quotes it.

    Forwarded by the mailbox's owner it is the original transaction again (the ingest
    dedupes it by reference); forwarded by anyone else it proves nothing and is ignored.
    """
    rng = ctx.rng
    display, addr = original.sender
    if own:
        sender = (ctx.short_name, ctx.to_address)
        recipient = f"{ctx.short_name} <{ctx.to_address}>"
        expected = dict(original.expected)
        if original.dated_by_header:
            # Gmail quotes the original's Date to the minute, and that is all the parser has.
            expected["occurred_at"] = original.sent_at.replace(second=0).isoformat()
    else:
        sender = rng.choice(catalog.FRIENDS)
        recipient = f"{sender[0]} <{sender[1]}>"
        expected = ignored(UNTRUSTED_FORWARD)
    text = (
        f"{rng.choice(_NOTES)}---------- Forwarded message ---------\n"
        f"From: {display + ' ' if display else ''}<{addr}>\n"
        f"Date: {_gmail_date(original.sent_at)}\n"
        f"Subject: {original.subject}\n"
        f"To: {recipient}\n\n"
        f"{original.plain}"
    )
    prefix = rng.choice(("Fwd: ", "Fwd: ", "RV: ", "FW: "))
    variant = "forward-own" if own else "forward-other"
    return Mail(
        sender, prefix + original.subject, when, [Part("plain", text)], expected, text, variant
    )
