"""The outcome rule for bank mail no template read, and the rules that hold across banks.

Bank mail that carries an amount with a currency is `unparsed` unless a rule positively
knows that very notice moves no money: its subject ("Estado de cuenta disponible"), or
its own sentence ("Su estado de cuenta ... está disponible"). A word somewhere in a body
never decides: BAC's card footer says "promociones", Promerica's "promociones
exclusivas", and a notice with such a footer is still a notice.
"""

from __future__ import annotations

import re

from .amounts import has_money
from .mime import Mail
from .model import (
    CARD_SETTINGS,
    MARKETING,
    NO_AMOUNT,
    OFFER,
    OWN_CARD_PAYMENT,
    STATEMENT,
    UNKNOWN_LAYOUT,
    VERIFICATION_CODE,
    Outcome,
    ignored,
    unparsed,
)

# All patterns run on accent-folded text.

# A subject that names a movement of money is a notice's: none of the subject rules below
# may judge it (a merchant called "PROMOCIONES DEL SUR" is still a purchase).
_NOTICE_SUBJECT = re.compile(
    r"\b(?:transacci|compra\b|transferencia|retiro|comprobante|sinpe|devolucion|cargo\b"
    r"|debito|pago\b|alerta|notificacion|aviso)",
    re.I,
)
# Subjects that say what the message is even though they name a purchase.
_VERIFICATION_SUBJECT = re.compile(
    r"\bcodigo (?:de )?(?:verificacion|seguridad|confirmacion)\b|\bclave dinamica\b", re.I
)
# What a subject names when money moved, even if the body shows no amount (the detail
# only in an attached PDF): such mail stays visible.
_MOVEMENT_SUBJECT = re.compile(
    r"\b(?:transacci|compra\b|transferencia|retiro|comprobante|sinpe|devolucion|cargo\b"
    r"|debito|pago\b|pagos\b)",
    re.I,
)
_SUBJECT_RULES = (
    (STATEMENT, re.compile(r"^\s*(?:su\s+)?estados? de cuenta\b", re.I)),
    (OFFER, re.compile(r"\b(?:credito|prestamo|tarjeta)s?\s+pre-?aprobad[oa]s?\b", re.I)),
    (CARD_SETTINGS, re.compile(r"^\s*cambio de (?:pin|clave|contrasena)\b", re.I)),
    (
        MARKETING,
        re.compile(
            r"\bpromocion|\bdescuentos?\b|\baprovech|\bofertas?\b|\bsorteo|\bblack friday\b"
            r"|\bcyber ?monday\b|\bgane\b|\bparticipe\b|\bbeneficios?\b|\d\s?%",
            re.I,
        ),
    ),
)
# Sentences that say what the message is, for when the subject does not. A message says it
# first thing; the same words in a footer ("su estado de cuenta está disponible en línea")
# say nothing of the message, so only the head of the body is read.
_HEAD_CHARS = 400
_SENTENCE_RULES = (
    (STATEMENT, re.compile(r"\bsu estado de cuenta\b[^.]{0,80}?\besta disponible\b", re.I)),
    (OFFER, re.compile(r"\btiene un (?:credito|prestamo) pre-?aprobado\b", re.I)),
    (
        CARD_SETTINGS,
        re.compile(r"\bel cambio de (?:pin|clave)\b[^.]{0,80}?\bse realizo correctamente", re.I),
    ),
    (
        OWN_CARD_PAYMENT,
        re.compile(r"\bel pago de (?:la|su) tarjeta(?: de credito)? propia\b", re.I),
    ),
)
_DECLINED_WORD = r"(?:rechazad|declinad|denegad|negad)[ao]"
_DECLINED_SUBJECT = re.compile(rf"\b{_DECLINED_WORD}\b", re.I)
# A status on its own line or after a label: "Rechazada", "Estado: Rechazada".
_DECLINED_STATUS = re.compile(
    rf"^(?:(?:estado|estatus|resultado)\s*:?\s*)?{_DECLINED_WORD}\.?$", re.I | re.M
)


def unrecognised(mail: Mail, bank: str) -> Outcome:
    """The outcome of bank mail that no template of the bank read."""
    reason = known_non_transaction(mail)
    if reason is not None:
        return ignored(reason, bank)
    if has_money(mail.bare_subject) or any(has_money(body.flat) for body in mail.bodies()):
        return unparsed(UNKNOWN_LAYOUT, bank)
    if _MOVEMENT_SUBJECT.search(mail.folded_subject):
        return unparsed(UNKNOWN_LAYOUT, bank)
    return ignored(NO_AMOUNT, bank)


def known_non_transaction(mail: Mail) -> str | None:
    """The rule that knows this message moves no money, judged by its subject or sentence."""
    subject = mail.folded_subject
    if _VERIFICATION_SUBJECT.search(subject):
        return VERIFICATION_CODE
    if not _NOTICE_SUBJECT.search(subject):
        for reason, rule in _SUBJECT_RULES:
            if rule.search(subject):
                return reason
    for body in mail.bodies():
        for reason, rule in _SENTENCE_RULES:
            if rule.search(body.flat_folded, 0, _HEAD_CHARS):
                return reason
    return None


def declined(mail: Mail) -> bool:
    """Whether a notice a template read says the bank refused it (no money moved)."""
    if _DECLINED_SUBJECT.search(mail.folded_subject):
        return True
    for body in mail.bodies():
        # "negad" covers "denegada" too; the substring test rules out most mail for free.
        if "rechazad" in body.lower or "declinad" in body.lower or "negad" in body.lower:
            if _DECLINED_STATUS.search("\n".join(body.folded)):
                return True
    return False
