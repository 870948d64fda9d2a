"""Rules that hold across banks: what to ignore before reading, what to flag after."""

from __future__ import annotations

import re

from .amounts import has_money
from .mime import Mail
from .model import (
    DECLINED,
    NOT_A_TRANSACTION,
    OWN_CARD_PAYMENT,
    UNRECOGNISED,
    Outcome,
    ignored,
    unparsed,
)

# All patterns run on accent-folded text.
_NOT_TRANSACTION_SUBJECT = re.compile(
    r"\bestados? de cuenta\b|\bpre-?aprobad[oa]s?\b|\bpromocion(?:es)?\b", re.I
)
# Statements, offers and settings; promotions quote amounts ("compras desde CRC 10,000").
_NOT_TRANSACTION_BODY = re.compile(
    r"\bestados? de cuenta\b|\bpre-?aprobad[oa]s?\b|\bpromocion(?:es)?\b"
    r"|\bcambio de (?:pin|clave)\b|\bdescuentos?\b|\baprovech|\bofertas?\b|\bsorteo",
    re.I,
)
# Paying your own card moves money you already counted as purchases.
_OWN_CARD = re.compile(r"\bpago\b[^.]{0,80}?\btarjeta(?: de credito)? propia\b", re.I)
_DECLINED_WORD = r"(?:rechazad|declinad|denegad)[ao]"
_DECLINED_SENTENCE = re.compile(rf"\b(?:fue|ha sido|esta)\s+{_DECLINED_WORD}\b", re.I)
# A status on its own line or after a label: "Rechazada", "Estado: Rechazada".
_DECLINED_STATUS = re.compile(rf"^(?:[^:]{{0,40}}:\s*)?{_DECLINED_WORD}\.?$", re.I | re.M)
_DECLINED_SUBJECT = re.compile(rf"\b{_DECLINED_WORD}\b", re.I)
_NOTICE_SUBJECT = re.compile(
    r"\b(?:transaccion|compra|transferencia|retiro|comprobante|sinpe|devolucion|cargo|debito)",
    re.I,
)
# In a body, words that only a notice of money moved uses (not "compra": offers say it).
_NOTICE_BODY = re.compile(
    r"\b(?:transaccion|transferencia|retiro|comprobante|sinpe|devolucion|autorizacion"
    r"|referencia)",
    re.I,
)


def reason_to_ignore(mail: Mail) -> str | None:
    """Why a bank's message moves no money of its own, judged before any parser reads it."""
    subject = mail.folded_subject
    if _NOT_TRANSACTION_SUBJECT.search(subject):
        return NOT_A_TRANSACTION
    if _DECLINED_SUBJECT.search(subject):
        return DECLINED
    for body in mail.bodies():
        # Plain substring tests first: they rule out almost every message for free.
        lowered = body.lower
        if "propia" in lowered and _OWN_CARD.search(body.flat_folded):
            return OWN_CARD_PAYMENT
        if "rechazad" in lowered or "declinad" in lowered or "denegad" in lowered:
            if _DECLINED_SENTENCE.search(body.flat_folded):
                return DECLINED
            if _DECLINED_STATUS.search("\n".join(body.folded)):
                return DECLINED
    return None


def unrecognised(mail: Mail, bank: str) -> Outcome:
    """A bank message no rule read: unparsed if it looks like money moved, else ignored."""
    subject = mail.folded_subject
    body = mail.first_body()
    if _NOT_TRANSACTION_BODY.search(body.flat_folded):
        return ignored(NOT_A_TRANSACTION, bank)
    if _NOTICE_SUBJECT.search(subject):
        return unparsed(UNRECOGNISED, bank)
    if _NOTICE_BODY.search(body.flat_folded) and has_money(body.flat):
        return unparsed(UNRECOGNISED, bank)
    return ignored(NOT_A_TRANSACTION, bank)
