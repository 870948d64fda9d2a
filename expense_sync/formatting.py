"""es-CR formatting of money and dates, as Jinja filters."""

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from babel.dates import TIMEDELTA_UNITS, format_datetime, format_timedelta
from babel.numbers import format_decimal
from flask import Flask

from .models import now_utc
from .parsing.dates import COSTA_RICA

LOCALE = "es_CR"
SYMBOLS = {"CRC": "₡", "USD": "$"}


def money(amount: Decimal, currency: str) -> str:
    """Format an amount as colones (₡) or dollars ($) the way Costa Ricans write them."""
    # CLDR's es_CR symbol for dollars is "USD"; people and banks write "$".
    sign = "-" if amount < 0 else ""
    number = format_decimal(abs(amount), "#,##0.00", locale=LOCALE)
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{number}"


# Babel takes tens of microseconds per call; the widget formats the same few values again
# on every update, so the pure formatters remember their answers.
@lru_cache(maxsize=4096)
def number(value: int | None) -> str:
    """Format a count with es-CR digit grouping, e.g. "12 059"."""
    return format_decimal(value or 0, locale=LOCALE)


def local_datetime(value: datetime | None, fmt: str = "d MMM y, HH:mm") -> str:
    """Format a timezone-aware datetime in Costa Rica time."""
    if value is None:
        return ""
    return format_datetime(value.astimezone(COSTA_RICA), fmt, locale=LOCALE)


def time_ago(value: datetime | None) -> str:
    """Say how long ago something happened, e.g. "hace 5 minutos"."""
    if value is None:
        return ""
    return format_timedelta(value - now_utc(), add_direction=True, threshold=1.1, locale=LOCALE)


def remaining(seconds: int | None) -> str:
    """Say how long a sync still needs, e.g. "Tiempo restante: ~3 minutos"."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "Tiempo restante: menos de un minuto"
    # Every update has a new estimate, but few words: Babel's choice of unit and count
    # (format_timedelta's own rule) is the key the answer is remembered by.
    for unit, size in TIMEDELTA_UNITS:
        if seconds / size >= REMAINING_THRESHOLD:
            return _remaining(unit, int(round(seconds / size)))
    return _remaining("second", int(seconds))


REMAINING_THRESHOLD = 1.1


@lru_cache(maxsize=512)
def _remaining(unit: str, count: int) -> str:
    # No larger unit (an infinite threshold): `count` of `unit` exactly.
    span = format_timedelta(
        count * dict(TIMEDELTA_UNITS)[unit], threshold=float("inf"), granularity=unit, locale=LOCALE
    )
    return f"Tiempo restante: ~{span}"


KINDS = {
    "purchase": "Compra",
    "withdrawal": "Retiro",
    "transfer_out": "Transferencia enviada",
    "transfer_in": "Transferencia recibida",
    "refund": "Devolución",
}


def kind_label(kind: str) -> str:
    return KINDS.get(kind, kind)


# Why an email could not be read, by the parser's reason code (parsing/model.py).
REASONS = {
    "unknown_layout": "Formato de notificación no reconocido",
    "unknown_type": "Tipo de movimiento desconocido",
    "amount_unreadable": "Falta el monto o no se puede leer (o no está en colones ni dólares)",
    "conflicting_amounts": "El correo trae montos que no coinciden",
    "several_transactions": "El correo trae varios movimientos",
    "truncated": "El mensaje llegó incompleto",
    "date_unreadable": "Falta la fecha o no se puede leer",
    "unreadable_message": "El mensaje no se pudo decodificar",
    "parser_error": "Error interno al leer el correo",
    # Why the rules ignored a bank's mail (shown in the review queue's "ignored" list).
    "not_from_bank": "No viene de un banco",
    "untrusted_forward": "Reenviado por otra persona",
    "marketing_sender": "Enviado desde la dirección de promociones del banco",
    "marketing": "Promoción",
    "statement": "Estado de cuenta",
    "offer": "Oferta de crédito",
    "card_settings": "Cambio de clave o de un servicio",
    "declined": "Transacción rechazada",
    "zero_preauthorization": "Verificación de tarjeta sin cobro",
    "own_card_payment": "Pago de su propia tarjeta (las compras ya se cuentan)",
    "cardless_code": "Código de retiro sin tarjeta (aún no se retiró dinero)",
    "verification_code": "Código de verificación",
    "no_amount": "No indica ningún monto",
}


# What the first parsers stored before reasons became codes; such rows are still around.
LEGACY_REASONS = {
    "unrecognised notification format": "unknown_layout",
    "unknown transaction type": "unknown_type",
    "amount missing or unreadable": "amount_unreadable",
    "conflicting amounts": "conflicting_amounts",
    "message truncated": "truncated",
    "date missing or unreadable": "date_unreadable",
    "unreadable message": "unreadable_message",
    "parser error": "parser_error",
}


def reason_label(reason: str | None) -> str:
    code = LEGACY_REASONS.get(reason or "", reason or "")
    return REASONS.get(code, reason or "Sin motivo")


def register(app: Flask) -> None:
    for function in (money, number, local_datetime, time_ago, remaining, kind_label, reason_label):
        app.add_template_filter(function)
