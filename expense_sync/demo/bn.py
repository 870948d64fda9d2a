"""Banco Nacional notifications: the purchase "comprobante", its 2023 form, and offers."""

import random
import string
from datetime import datetime, timedelta

from . import catalog
from .base import (
    ENGLISH_MONTHS,
    MARKETING,
    OFFER,
    Ctx,
    Mail,
    Picker,
    digits,
    ignored,
    ticket,
    transaction,
    us_amount,
)
from .mime import Part

SENDER = ("Banco Nacional", "bncontacto@bncr.fi.cr")
SUBJECTS = Picker([(85.0, "Notificación de transacción"), (15.0, "Voucher Digital")])
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
MONTHS = (
    "Enero",
    "Febrero",
    "Marzo",
    "Abril",
    "Mayo",
    "Junio",
    "Julio",
    "Agosto",
    "Septiembre",
    "Octubre",
    "Noviembre",
    "Diciembre",
)
# "current": one item per line; "bold": the 2023 template, values in *bold* markers, the
# merchant padded to the network's columns and the summary on one line. Both still arrive.
STYLES = Picker([(75.0, "current"), (25.0, "bold")])
CLOCKS = Picker([(80.0, "12h"), (20.0, "24h")])
# The current template mostly writes "15330,00"; some mails, and all bold ones, "15,330.00".
TOTALS = Picker([(70.0, "comma"), (30.0, "us")])
# Offline card processing: the notice comes minutes to a day after the purchase.
DEFERRED_SHARE = 0.08
DEFERRED_NOTE = (
    "Nota Importante: La siguiente transacción no es en tiempo real, fue procesada por el "
    "CENTRO ESPECIALIZADO DE TARJETAS."
)
FOOTER = (
    "Estimado cliente, esta notificación es generada de forma automática de acuerdo con lo "
    "establecido por el Banco Central de Costa Rica, en su Reglamento del Sistema de Tarjetas "
    "de Pago, por lo que agradecemos no responder este correo."
)
_REFERENCE_CHARS = string.ascii_uppercase + string.digits


def _descriptor(merchant: catalog.Merchant) -> str:
    # The network's fixed columns: 22 for the name, 13 for the city, then the country code.
    # A full name or city runs into the next field: "SAN FRANCISCOUSA".
    return f"{merchant.name[:22]:<22}{merchant.city[:13]:<13}{catalog.ALPHA3[merchant.country]}"


def _clock(moment: datetime, clock: str, style: str) -> str:
    """9:14 p.m. (current), 07:05 p.m (2023, no last dot) or 21:14."""
    if clock == "24h":
        return f"{moment:%H:%M}"
    hour = moment.hour % 12 or 12
    suffix = "p.m" if moment.hour >= 12 else "a.m"
    if style == "bold":
        return f"{hour:02d}:{moment.minute:02d} {suffix}"
    return f"{hour}:{moment.minute:02d} {suffix}."


def _reference(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return digits(rng, 8)
    if roll < 0.85:  # some processors give letters too: "K4TR82WQZ"
        return "".join(rng.choice(_REFERENCE_CHARS) for _ in range(9))
    return digits(rng, 12)


def _total(currency: str, cents: int, style: str, rng: random.Random) -> tuple[str, str]:
    if style == "bold":
        return "us", f"{currency} {us_amount(cents)}"
    form = TOTALS(rng)
    if form == "comma":
        return form, f"{currency} {cents // 100},{cents % 100:02d}"
    return form, f"{currency} {us_amount(cents)}"


def purchase(ctx: Ctx, when: datetime) -> Mail:
    """The card purchase notice, in the current or the 2023 form, on either clock."""
    rng = ctx.rng
    style, clock = STYLES(rng), CLOCKS(rng)
    deferred = rng.random() < DEFERRED_SHARE
    lag = timedelta(minutes=int(3 * 500 ** rng.random())) if deferred else timedelta(0)
    occurred = (when - lag).replace(second=0)
    merchant = MERCHANTS(rng)
    currency, cents = ticket(rng, merchant)
    card = ctx.card("bn")
    authorization, reference = digits(rng, 6), _reference(rng)
    total_form, total = _total(currency, cents, style, rng)
    padded = _descriptor(merchant)
    # Their 2023 template kept the padding; the current one collapses it.
    shown = padded if style == "bold" else " ".join(padded.split())
    day = f"{occurred.day} de {MONTHS[occurred.month - 1]} de {occurred.year}"
    time_text = _clock(occurred, clock, style)
    summary = f"{ENGLISH_MONTHS[occurred.month - 1]} {occurred.day}, {occurred.year} - {time_text}"
    holder = f"{ctx.surnames} {ctx.given}".upper()
    items = [
        summary,
        f"{card.brand} {'*' * 12}{card.last4}",
        f"NRO. AUT: {authorization}",
        f"REF: {reference}",
        f"TOTAL: {total}",
    ]
    if style == "bold":
        holder, kind, day = f"*{holder}*", "*COMPRA*", f"*{day}*"
        sentence = f"{kind} realizada en *{shown}* el {day} a las *{time_text}*"
        items = [" ".join(items)]
    else:
        sentence = f"Compra realizada en {shown} el {day} a las {time_text}"
    lines = [
        f"Estimado señor(a): {holder}",
        "Reciba un cordial saludo de parte del Banco Nacional.",
        f"Por este medio le hacemos llegar el comprobante de {sentence}",
        *([DEFERRED_NOTE] if deferred else []),
        shown,
        *items,
        FOOTER,
    ]
    text = "\n".join(lines) + "\n"
    expected = transaction(
        "bn",
        "purchase",
        cents,
        currency,
        occurred,
        merchant=" ".join(padded.split()),
        card_last4=card.last4,
        authorization=authorization,
        reference=reference,
    )
    variant = f"bn-purchase-{style}-{clock}-{total_form}" + ("-deferred" if deferred else "")
    return Mail(SENDER, SUBJECTS(rng), when, [Part("plain", text)], expected, text, variant)


def offer(ctx: Ctx, when: datetime) -> Mail:
    """A pre-approved credit: it carries an amount that nobody spent."""
    rng = ctx.rng
    amount = rng.choice((1_000_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000)) * 100
    text = (
        f"Estimado(a) {ctx.given.split()[0]}:\n"
        f"Tiene un crédito preaprobado por CRC {us_amount(amount)}. Solicítelo hoy en BN "
        "Internet Banking o en cualquiera de nuestras oficinas.\n"
        "Sujeto a análisis crediticio.\n"
    )
    return Mail(
        SENDER,
        "Crédito preaprobado para usted",
        when,
        [Part("plain", text)],
        ignored(OFFER),
        text,
        "bn-offer",
    )


def promotion(ctx: Ctx, when: datetime) -> Mail:
    """A promotion from the notification address itself: only its subject tells."""
    subject, text = ctx.rng.choice(catalog.BN_PROMOS)
    return Mail(
        SENDER,
        subject,
        when,
        [Part("plain", text, encoding="8bit")],
        ignored(MARKETING),
        text,
        "bn-promotion",
    )
