"""Banco Promerica notifications: colon-less labels, currency in the amount's label."""

from datetime import datetime

from . import catalog
from .base import (
    CARD_SETTINGS,
    MARKETING,
    OWN_CARD_PAYMENT,
    SPANISH_MONTHS,
    STATEMENT,
    ZERO_PREAUTHORIZATION,
    Ctx,
    Mail,
    Picker,
    digits,
    html_escape,
    ignored,
    ticket,
    transaction,
    us_amount,
)
from .mime import Part

SENDER = ("Promerica", "info@promerica.fi.cr")
SUBJECTS = ("Comprobante de transacción", "¡Tu transacción fue realizada con éxito!")
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
# HTML alone in UTF-8 or ISO-8859-1, or a text/plain twin with the HTML.
LAYOUTS = Picker([(35.0, "html-utf-8"), (30.0, "html-iso-8859-1"), (35.0, "alternative")])


def purchase(ctx: Ctx, when: datetime, check: bool = False) -> Mail:
    """A purchase receipt; with check=True a zero-amount card check."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    if check:
        merchant = rng.choice(catalog.CARD_CHECK_MERCHANTS)
        currency, cents = "USD", 0
        amount_text = rng.choice(("0.00", ".00"))
    else:
        merchant = MERCHANTS(rng)
        currency, cents = ticket(rng, merchant)
        amount_text = us_amount(cents)
    last4 = ctx.card("promerica").last4
    authorization = digits(rng, 6)
    reference = str(rng.randrange(1_000_000_000, 10_000_000_000))
    # The network's descriptor: the merchant, its town and the country code in one field.
    name = f"{merchant.name} {merchant.city} {merchant.country}"
    when_text = f"{occurred.day:02d} {SPANISH_MONTHS[occurred.month - 1]} {occurred.year} / "
    when_text += f"{occurred.hour:02d}:{occurred.minute:02d}"
    rows = [
        ("Comercio", name),
        ("Tipo de Comercio", merchant.category),
        ("Ciudad/País", catalog.COUNTRIES[merchant.country][1]),
        ("Fecha/hora", when_text),
        ("Número de tarjeta", f"****-****-****-{last4}"),
        ("Número de autorización", authorization),
        ("Número de referencia", reference),
        (f"Monto {currency}:", amount_text),
    ]
    greeting = f"Hola {ctx.full_name}"
    title = "¡Tu transacción fue realizada con éxito!"
    plain = f"{greeting}\n{title}\nTe compartimos el detalle:\n"
    plain += "".join(f"{label} {value}\n" for label, value in rows)
    table = "".join(
        f"<tr><td><b>{label}</b></td><td>{html_escape(value)}</td></tr>" for label, value in rows
    )
    html = (
        f"<html><body><p>{greeting}</p><h3>{title}</h3><p>Te compartimos el detalle:</p>"
        f"<table>{table}</table><p>Este correo es generado autom&aacute;ticamente, por favor "
        "no lo responda.</p><p>Banco Promerica de Costa Rica S.A.</p></body></html>\n"
    )
    layout = LAYOUTS(rng)
    if layout == "alternative":
        parts = [Part("plain", plain, encoding="8bit"), Part("html", html)]
    else:
        parts = [Part("html", html, charset=layout.removeprefix("html-"))]
    if check:
        expected = ignored(ZERO_PREAUTHORIZATION)
    else:
        expected = transaction(
            "promerica",
            "purchase",
            cents,
            currency,
            occurred,
            merchant=name,
            card_last4=last4,
            authorization=authorization,
            reference=reference,
        )
    kind = "check" if check else "purchase"
    return Mail(
        SENDER, rng.choice(SUBJECTS), when, parts, expected, plain, f"promerica-{kind}-{layout}"
    )


def own_card_payment(ctx: Ctx, when: datetime) -> Mail:
    """A payment to the user's own credit card: counting it would count purchases twice."""
    rng = ctx.rng
    cents = int(15_000 * 30 ** rng.random()) * 100
    if rng.random() < 0.3:
        cents += rng.randrange(100)
    hour = when.hour % 12 or 12
    clock = f"{hour:02d}:{when.minute:02d}:{when.second:02d} {'PM' if when.hour >= 12 else 'AM'}"
    text = (
        f"Hola {ctx.full_name}\n"
        f"El pago de la tarjeta de crédito propia por un monto de {us_amount(cents)} CRC se "
        "realizó con éxito.\n"
        f"Fecha/Hora: {when:%d/%m/%Y} {clock}\n"
        f"Canal: {rng.choice(('Promerica Móvil', 'Promerica Móvil', 'Banca en Línea'))}\n"
    )
    charset = "iso-8859-1" if rng.random() < 0.2 else "utf-8"
    return Mail(
        SENDER,
        "Comprobante de pago de tarjeta",
        when,
        [Part("plain", text, charset)],
        ignored(OWN_CARD_PAYMENT),
        text,
        "promerica-own-card-payment",
    )


def pin_change(ctx: Ctx, when: datetime) -> Mail:
    """A card setting confirmation."""
    text = (
        f"Hola, el cambio de PIN de su tarjeta ****-****-****-{ctx.card('promerica').last4} "
        "se realizó correctamente.\n"
    )
    return Mail(
        SENDER,
        "Cambio de PIN exitoso",
        when,
        [Part("plain", text)],
        ignored(CARD_SETTINGS),
        text,
        "promerica-pin",
    )


def statement(ctx: Ctx, when: datetime) -> Mail:
    """The statement notice, with a balance that must not be read as a purchase."""
    rng = ctx.rng
    balance = int(30_000 * 40 ** rng.random()) * 100 + rng.randrange(100)
    text = (
        f"Hola {ctx.full_name}\n"
        f"Tu estado de cuenta de la tarjeta ****-****-****-{ctx.card('promerica').last4} ya "
        "está disponible en Promerica en Línea.\n"
        f"Saldo al corte CRC {us_amount(balance)}\n"
    )
    return Mail(
        SENDER,
        "Tu estado de cuenta está listo",
        when,
        [Part("plain", text)],
        ignored(STATEMENT),
        text,
        "promerica-statement",
    )


def promotion(ctx: Ctx, when: datetime) -> Mail:
    """A promotion sent from the same address as the receipts."""
    text = (
        f"Hola {ctx.full_name}\n"
        "Este fin de semana tenés 15% de descuento en restaurantes participantes pagando con "
        "tu tarjeta Promerica. Aplica para compras desde CRC 10,000.00.\n"
    )
    return Mail(
        SENDER,
        "15% de descuento en restaurantes este fin de semana",
        when,
        [Part("plain", text, encoding="8bit")],
        ignored(MARKETING),
        text,
        "promerica-promotion",
    )
