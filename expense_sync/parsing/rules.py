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

_MOVEMENT_WORDS = (
    r"transacci|compra\b|transferencia|retiro|comprobante|sinpe|devolucion|cargo\b"
    r"|debito|pago\b"
)
# A subject that names a movement of money, or announces a notice, is a notice's: none of
# the subject rules below may judge it (a merchant "PROMOCIONES DEL SUR" is still a purchase).
_NOTICE_SUBJECT = re.compile(rf"\b(?:{_MOVEMENT_WORDS}|alerta|notificacion|aviso)", re.I)
# What a subject names when money moved, even if the body shows no amount (the detail
# only in an attached PDF): such mail stays visible.
_MOVEMENT_SUBJECT = re.compile(rf"\b(?:{_MOVEMENT_WORDS}|pagos\b)", re.I)
# Subjects that say what the message is even though they name a purchase.
_VERIFICATION_SUBJECT = re.compile(
    r"^\W*(?:\w+\W+){0,2}(?:codigo (?:de )?(?:verificacion|seguridad|confirmacion)\b"
    r"|clave dinamica\b)",
    re.I,
)
# A service switched on or off ("Activación de Transferencias Internacionales",
# "Notificación de afiliación SINPE Móvil"): with no amount in it, no money moved.
_SERVICE_SUBJECT = re.compile(
    r"\b(?:activacion|desactivacion|afiliacion"
    r"|desafiliacion|inscripcion|desinscripcion|suscripcion|bloqueo|desbloqueo)\b",
    re.I,
)
_SUBJECT_RULES = (
    (STATEMENT, re.compile(r"^\s*(?:su\s+|tu\s+)?estados? de cuenta\b", re.I)),
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
# The whole sentence of a notice whose subject names a payment like any other ("Comprobante
# de pago de tarjeta"): the payment of one's own card, with its amount and its outcome.
# Words of it in a banner ("Realice el pago de su tarjeta propia desde la App") are not it.
_OWN_CARD_SENTENCE = re.compile(
    r"\bel pago de (?:la|su) tarjeta(?: de credito)? propia por un monto de\s+\S{0,4}\s*"
    r"[0-9][0-9.,]*\s*\S{0,8}\s+se realizo con exito\b",
    re.I,
)
_DECLINED_WORD = r"(?:rechazad|declinad|denegad|negad)[ao]"
# "Transacción rechazada", "Alerta: compra declinada": said near the start of the subject,
# where no merchant's name stands.
_DECLINED_SUBJECT = re.compile(rf"^\W*(?:\w+\W+){{0,4}}{_DECLINED_WORD}\b", re.I)
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
    if _SERVICE_SUBJECT.search(mail.folded_subject):
        return ignored(CARD_SETTINGS, bank)
    if _MOVEMENT_SUBJECT.search(mail.folded_subject):
        return unparsed(UNKNOWN_LAYOUT, bank)
    return ignored(NO_AMOUNT, bank)


def known_non_transaction(mail: Mail) -> str | None:
    """The rule that knows this message moves no money, judged by its subject or sentence.

    Statements, offers and settings are known by their subjects: the same words in a
    banner or footer ("su estado de cuenta está disponible en línea") say nothing of the
    message they sit in.
    """
    subject = mail.folded_subject
    if _VERIFICATION_SUBJECT.search(subject):
        return VERIFICATION_CODE
    if not _NOTICE_SUBJECT.search(subject):
        for reason, rule in _SUBJECT_RULES:
            if rule.search(subject):
                return reason
    if any(_OWN_CARD_SENTENCE.search(body.flat_folded) for body in mail.bodies()):
        return OWN_CARD_PAYMENT
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
