"""BAC Credomatic notifications: card purchases, transfers, SINPE, withdrawals and noise."""

import random
import unicodedata
from datetime import datetime, timedelta

from . import catalog
from .base import (
    ENGLISH_MONTHS,
    MARKETING_SENDER,
    SPANISH_MONTHS,
    STATEMENT,
    ZERO_PREAUTHORIZATION,
    Ctx,
    Mail,
    Picker,
    digits,
    european_amount,
    html_escape,
    ignored,
    ticket,
    transaction,
    twelve_hour,
    us_amount,
)
from .mime import Part

# All these senders are in use at once; card notices come from any of them.
SENDERS = Picker(
    [
        (40.0, ("BAC Credomatic", "notificacion@notificacionesbaccr.com")),
        (20.0, (None, "alerta@baccredomatic.com")),
        (14.0, ("NotificacionBAC", "notificacionbac@baccredomatic.cr")),
        (4.0, ("NotificacionBAC", "NotificacionBAC@BACCredomatic.cr")),
        (12.0, ("BAC Credomatic", "notificacion@baccredomatic.cr")),
        (10.0, ("Alertas y Notificaciones BAC", "alertasynotificaciones@notificacionesbac.com")),
    ]
)
TRANSFER_SENDER = ("BAC Credomatic", "notificacion@notificacionesbaccr.com")
# Promotions come from their own domain, which the parser ignores whatever the text says.
PROMOTIONS_SENDER = ("BAC Credomatic", "info@info.baccredomatic.net")
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
# How a card notice is laid out: HTML table (quoted-printable or base64), the table with a
# text/plain twin, or the one-line "label: value / ..." text.
LAYOUTS = Picker([(35.0, "html"), (20.0, "html-base64"), (30.0, "alternative"), (15.0, "inline")])
# The masked card number has 3 to 12 stars depending on the template generation.
STARS = Picker([(30.0, 3), (30.0, 11), (25.0, 12), (3.0, 4), (3.0, 6), (3.0, 8), (6.0, 10)])
CHECK_AMOUNTS = ("USD .00", "USD .00", "USD 0.00", "CRC .00")
SINPE_CURRENCY = Picker(
    [(88.0, ("CRC", "Colones")), (6.0, ("USD", "Dólares")), (6.0, ("USD", "Dolares"))]
)
CELL = '<td style="padding:4px"><p style="margin:0">{}</p></td>'


def _card_date(moment: datetime, rng: random.Random) -> str:
    # Newer templates print Spanish month names, and some put a stray space before the comma.
    if rng.random() < 0.2:
        month = SPANISH_MONTHS[moment.month - 1].capitalize()
    else:
        month = ENGLISH_MONTHS[moment.month - 1]
    comma = " , " if rng.random() < 0.1 else ", "
    return f"{month} {moment.day}, {moment.year}{comma}{moment.hour:02d}:{moment.minute:02d}"


def _html(
    rng: random.Random, greeting: str, intro: str, rows: list[tuple[str, str]], year: int
) -> str:
    alt, src = rng.choice(catalog.BAC_BANNERS)
    quirk = rng.random()
    cells = []
    for label, value in rows:
        value = html_escape(value)
        # Real mailers leak &nbsp;, decomposed accents and zero-width spaces into the table.
        if quirk < 0.06 and label == "Monto:":
            value = value.replace(" ", "&nbsp;", 1)
        elif quirk > 0.97:
            label = unicodedata.normalize("NFD", label)
        elif quirk > 0.94:
            label = "\u200b" + label
        cells.append("<tr>" + CELL.format(label) + CELL.format(value) + "</tr>")
    return (
        f'<html><body><table width="600"><tr><td><img alt="{alt}" src="{src}"></td></tr>\n'
        f"<tr><td><h2>{html_escape(greeting)}</h2><h5>{intro}</h5>\n"
        "<table>" + "\n".join(cells) + "</table>\n"
        f"<p>{rng.choice(catalog.BAC_FOOTERS)}</p>\n"
        f"<p>TODOS LOS DERECHOS RESERVADOS. {year} &copy; BAC INTERNATIONAL BANK</p></td></tr>"
        "</table></body></html>\n"
    )


def purchase(ctx: Ctx, when: datetime, kind: str = "purchase") -> Mail:
    """A card notice: kind is "purchase", "refund" (DEVOLUCION) or "check" (amount zero)."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    currency, cents = "", 0
    if kind == "check":
        merchant = rng.choice(catalog.CARD_CHECK_MERCHANTS)
        amount_text = rng.choice(CHECK_AMOUNTS)
    else:
        if kind == "refund":
            merchant = rng.choice(catalog.REFUND_MERCHANTS)
        else:
            merchant = MERCHANTS(rng)
        currency, cents = ticket(rng, merchant)
        if currency == "USD" and cents % 100 == 0 and rng.random() < 0.6:
            amount_text = f"USD {cents // 100:,}"
        else:
            amount_text = f"{currency} {us_amount(cents)}"
    card = ctx.card("bac")
    authorization = digits(rng, 6)
    reference = digits(rng, 12 if rng.random() < 0.95 else 10)
    rows = [
        ("Comercio:", merchant.name),
        ("Ciudad y país:", f"{merchant.city}, {catalog.COUNTRIES[merchant.country][0]}"),
        ("Fecha:", _card_date(occurred, rng)),
        (card.brand, "*" * STARS(rng) + card.last4),
        ("Autorización:", authorization),
        ("Referencia:", reference),
        ("Tipo de Transacción:", "DEVOLUCION" if kind == "refund" else "COMPRA"),
        ("Monto:", amount_text),
    ]
    greeting = f"Hola {ctx.full_name.upper()}"
    intro = "A continuación le detallamos la transacción realizada:"
    plain = f"{greeting}\n{intro}\n" + "".join(f"{label}\n{value}\n" for label, value in rows)
    layout = LAYOUTS(rng)
    if layout == "inline":
        pairs = " / ".join(f"{label.rstrip(':')}: {value}" for label, value in rows)
        parts = [Part("plain", f"{greeting}\n{pairs}\n")]
    else:
        html = _html(rng, greeting, intro, rows, occurred.year)
        if layout == "html":
            parts = [Part("html", html)]
        elif layout == "html-base64":
            parts = [Part("html", html, encoding="base64")]
        else:
            parts = [Part("plain", plain, encoding="8bit"), Part("html", html)]
    subject = f"Notificación de transacción {merchant.name} {occurred:%d-%m-%Y - %H:%M}"
    if kind == "check":
        expected = ignored(ZERO_PREAUTHORIZATION)
    else:
        expected = transaction(
            "bac",
            kind,
            cents,
            currency,
            occurred,
            merchant=merchant.name,
            card_last4=card.last4,
            authorization=authorization,
            reference=reference,
        )
    return Mail(SENDERS(rng), subject, when, parts, expected, plain, f"bac-{kind}-{layout}")


def _typed_amount(rng: random.Random, low: int, high: int, step: int) -> int:
    """Cents of an amount a person typed: mostly round, sometimes an exact bill."""
    value = low * (high / low) ** rng.random()
    if rng.random() < 0.7:
        return max(step, round(value / step) * step) * 100
    return int(value * 100)


def transfer_out(ctx: Ctx, when: datetime) -> Mail:
    """An outgoing transfer, with its European-style amount and seconds in the time."""
    rng = ctx.rng
    if rng.random() < 0.1:
        currency, cents = "USD", _typed_amount(rng, 20, 1_500, 10)
    else:
        currency, cents = "CRC", _typed_amount(rng, 3_000, 650_000, 500)
    reference = f"{when.year}{digits(rng, 21)}"
    text = (
        f"Estimado(a) {ctx.full_name}:\n"
        f"La transferencia se realizó el día {when:%d-%m-%Y} a las {when:%H:%M:%S} horas; "
        f"por un monto de {european_amount(cents)} {currency}, por concepto de: "
        f"{rng.choice(catalog.TRANSFER_CONCEPTS)}\n"
        f"El número de referencia es {reference}\n"
    )
    expected = transaction("bac", "transfer_out", cents, currency, when, reference=reference)
    return Mail(
        TRANSFER_SENDER,
        "Notificación de Transferencia",
        when,
        [Part("plain", text)],
        expected,
        text,
        "bac-transfer_out",
    )


def sinpe_in(ctx: Ctx, when: datetime) -> Mail:
    """An incoming SINPE transfer: amount with a currency word, 12-hour clock, loose date."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    currency, word = SINPE_CURRENCY(rng)
    if currency == "USD":
        cents, iban = _typed_amount(rng, 10, 800, 5), ctx.usd_iban
    else:
        cents, iban = _typed_amount(rng, 1_000, 400_000, 500), ctx.crc_iban
    reference = f"{when.year}{digits(rng, 21)}"
    if rng.random() < 0.6:
        day = f"{occurred.day}/{occurred.month}/{occurred.year}"
    else:
        day = f"{occurred:%d/%m/%Y}"
    text = (
        f"Estimado(a) {ctx.full_name}:\n"
        "BAC Credomatic le comunica que recibió una transferencia SINPE con el número de "
        f"referencia {reference} a su cuenta IBAN {iban} por un monto de {us_amount(cents)} "
        f"{word} por concepto {rng.choice(catalog.SINPE_CONCEPTS)}, la cual se aplicó "
        f"correctamente el día {day} a las {twelve_hour(occurred)}.\n"
    )
    subject = f"Notificación Transferencia SINPE Tiempo Real BAC SAN JOSE S.A{reference}"
    expected = transaction("bac", "transfer_in", cents, currency, occurred, reference=reference)
    return Mail(
        TRANSFER_SENDER, subject, when, [Part("plain", text)], expected, text, "bac-transfer_in"
    )


def withdrawal(ctx: Ctx, when: datetime) -> Mail:
    """A cardless ATM withdrawal, in whole banknotes."""
    rng = ctx.rng
    if rng.random() < 0.1:
        currency, cents = "USD", rng.randrange(1, 16) * 2_000
    else:
        currency, cents = "CRC", rng.choice((2, 2, 4, 4, 6, 8, 10, 12, 16, 20, 30, 40)) * 500_000
    text = (
        f"Estimado(a) {ctx.full_name}:\n"
        "Le informamos que se realizó un retiro sin tarjeta de su cuenta.\n"
        f"Monto: {us_amount(cents)} {currency}\n"
        f"Fecha: {when:%d/%m/%Y %H:%M:%S}\n"
        "Si usted no reconoce esta transacción, comuníquese de inmediato con BAC Credomatic.\n"
    )
    expected = transaction("bac", "withdrawal", cents, currency, when)
    return Mail(
        TRANSFER_SENDER,
        "Retiro sin tarjeta",
        when,
        [Part("plain", text)],
        expected,
        text,
        "bac-withdrawal",
    )


def statement(ctx: Ctx, when: datetime) -> Mail:
    """The monthly statement notice: it carries a balance but no money moved."""
    rng = ctx.rng
    balance = int(50_000 * 30 ** rng.random()) * 100 + rng.randrange(100)
    due = when + timedelta(days=20)
    text = (
        f"Su estado de cuenta de la tarjeta {'*' * 12}{ctx.card('bac').last4} está disponible.\n"
        f"Saldo: CRC {us_amount(balance)}\n"
        f"Pago mínimo: CRC {us_amount(balance // 2000 * 100)}\n"
        f"Fecha límite de pago: {due:%d/%m/%Y}\n"
    )
    return Mail(
        TRANSFER_SENDER,
        "Estado de cuenta disponible",
        when,
        [Part("plain", text, encoding="8bit")],
        ignored(STATEMENT),
        text,
        "bac-statement",
    )


def marketing(ctx: Ctx, when: datetime) -> Mail:
    """A promotion from BAC's marketing sender, as plain text or as an HTML banner."""
    rng = ctx.rng
    subject, text = rng.choice(catalog.BAC_PROMOS)
    if rng.random() < 0.5:
        parts = [Part("plain", text, encoding="8bit")]
    else:
        alt, src = rng.choice(catalog.BAC_BANNERS)
        paragraphs = "".join(f"<p>{html_escape(line)}</p>" for line in text.splitlines())
        html = (
            f'<html><body><table width="600"><tr><td><img alt="{alt}" src="{src}"></td></tr>\n'
            f"<tr><td><h1>{html_escape(subject)}</h1>{paragraphs}\n"
            '<p><a href="https://www.example.cr/baja">Dejar de recibir promociones</a></p>'
            "</td></tr></table></body></html>\n"
        )
        parts = [Part("html", html)]
    return Mail(
        PROMOTIONS_SENDER, subject, when, parts, ignored(MARKETING_SENDER), text, "bac-marketing"
    )
