"""Banco de Costa Rica notifications: the card's table, app transfers and SINPE Móvil."""

from datetime import datetime, timedelta

from . import catalog
from .base import (
    DECLINED,
    STATEMENT,
    Ctx,
    Mail,
    Picker,
    digits,
    european_amount,
    html_escape,
    ignored,
    ticket,
    transaction,
    us_amount,
)
from .mime import Part

CARD_SENDER = ("BCR Tarjetas", "bcrtarjestcta@bancobcr.com")
APP_SENDER = ("BCR", "mensajero@bancobcr.com")
CARD_SUBJECTS = Picker(
    [(80.0, "Notificación de transacciones"), (20.0, "Notificación de Transacciones BCR")]
)
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
CURRENCY_NAMES = {"CRC": "COLON COSTA RICA", "USD": "US DOLLAR"}
HEADERS = ("Fecha", "Autorización", "No.Referencia", "Monto", "Moneda", "Comercio", "Estado")
# The card table comes as HTML alone or with a text twin whose row is one spaced line.
LAYOUTS = Picker([(60.0, "alternative"), (40.0, "html")])
INTRO = "Le informamos la siguiente transacción realizada con su tarjeta BCR :"
HELP = (
    "En caso de dudas respecto a las transacciones notificadas, escribir al WhatsApp "
    "2000-1111 y utilice las opciones disponibles."
)
# Colones per dollar when the app converts between the user's two accounts.
SELL_RATE, BUY_RATE = 516.40, 503.85


def _accounts(ctx: Ctx) -> dict[str, str]:
    """The user's colones and dollars accounts, as full IBANs (BCR's bank code is 152)."""
    accounts = ctx.memo.get("bcr-accounts")
    if accounts is None:
        accounts = {
            currency: f"CR{ctx.rng.randrange(10, 100)}0152{digits(ctx.rng, 14)}"
            for currency in ("CRC", "USD")
        }
        ctx.memo["bcr-accounts"] = accounts
    assert isinstance(accounts, dict)
    return accounts


def _masked(ctx: Ctx) -> str:
    return f"****-****-****-{ctx.card('bcr').last4}"


def purchase(ctx: Ctx, when: datetime, outcome: str = "approved") -> Mail:
    """One row of the card table; outcome "declined" shows Negada or Rechazada."""
    rng = ctx.rng
    # The table gives the second the card was charged; the mail leaves a little later.
    occurred = when - timedelta(seconds=rng.randrange(2, 50))
    merchant = MERCHANTS(rng)
    currency, cents = ticket(rng, merchant)
    card = _masked(ctx)
    authorization = "00" + digits(rng, 6)  # eight digits, the first two always zeros
    reference = digits(rng, 12)
    place = f"{merchant.name} {merchant.city} {merchant.country}"
    status = rng.choice(("Negada", "Rechazada")) if outcome == "declined" else "Aprobada"
    row = (
        f"{occurred:%d/%m/%Y %H:%M:%S}",
        authorization,
        reference,
        us_amount(cents),
        CURRENCY_NAMES[currency],
        place,
        status,
    )
    head = [f"Transacciones en su tarjeta BCR: {card}", "Estimado (a) cliente:", INTRO]
    plain = "\n".join([*head, "Detalle de Transacciones", " ".join(HEADERS), " ".join(row), HELP])
    plain += "\n"
    header_cells = "".join(f"<th>{cell}</th>" for cell in HEADERS)
    row_cells = "".join(f"<td>{html_escape(cell)}</td>" for cell in row)
    html = (
        "<html><body>"
        + "".join(f"<p>{html_escape(line)}</p>" for line in head)
        + "<p><b>Detalle de Transacciones</b></p>"
        f'<table border="1"><tr>{header_cells}</tr><tr>{row_cells}</tr></table>'
        f"<p>{HELP}</p></body></html>\n"
    )
    layout = LAYOUTS(rng)
    parts = [Part("html", html)]
    if layout == "alternative":
        parts.insert(0, Part("plain", plain))
    if outcome == "declined":
        expected = ignored(DECLINED)
    else:
        expected = transaction(
            "bcr",
            "purchase",
            cents,
            currency,
            occurred,
            merchant=place,
            card_last4=card[-4:],
            authorization=authorization,
            reference=reference,
        )
    variant = f"bcr-{outcome}-{status.lower()}-{layout}"
    return Mail(CARD_SENDER, CARD_SUBJECTS(rng), when, parts, expected, plain, variant)


def _typed_colones(ctx: Ctx, low: int, high: int) -> int:
    """Cents of an amount a person typed into the app: mostly round thousands."""
    value = low * (high / low) ** ctx.rng.random()
    step = 1_000 if ctx.rng.random() < 0.7 else 50
    return max(step, round(value / step) * step) * 100


def sinpe_movil(ctx: Ctx, when: datetime) -> Mail:
    """A SINPE Móvil sent from the app: colones always, so the amount has no currency."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    cents = _typed_colones(ctx, 1_000, 150_000)
    reference = f"{occurred:%Y%m%d%H%M}" + digits(rng, 13)
    payee, entity = rng.choice(catalog.SINPE_PAYEES)
    hour = occurred.hour % 12 or 12
    clock = f"{hour}:{occurred.minute:02d} {'PM' if occurred.hour >= 12 else 'AM'}"
    rows = [
        ("Número de referencia:", reference),
        ("Teléfono Destino:", f"{rng.choice('678')}{digits(rng, 7)}"),
        ("Nombre cliente Destino:", payee),
        ("Entidad Destino:", entity),
        ("Monto:", us_amount(cents)),
        ("Motivo:", rng.choice(catalog.SINPE_CONCEPTS)),
    ]
    greeting = f"Estimado (a): {ctx.full_name.upper()}"
    intro = (
        "Le informamos que se le ha debitado de su cuenta BCR la siguiente transacción SINPE Móvil:"
    )
    closing = f"Esta transacción fue realizada el {occurred:%d/%m/%Y} a las {clock}"
    plain = "\n".join(
        ["Transacción SINPE MÓVIL", greeting, intro]
        + [f"{label} {value}" for label, value in rows]
        + [closing]
    )
    plain += "\n"
    if rng.random() < 0.4:  # the newer mailer puts label and value in separate cells
        cells = "".join(
            f"<tr><td>{label}</td><td>{html_escape(value)}</td></tr>" for label, value in rows
        )
        html = (
            f"<html><body><p><b>Transacción SINPE MÓVIL</b></p><p>{html_escape(greeting)}</p>"
            f"<p>{intro}</p><table>{cells}</table><p>{closing}</p></body></html>\n"
        )
        parts, layout = [Part("html", html)], "html"
    else:
        parts, layout = [Part("plain", plain)], "plain"
    expected = transaction("bcr", "transfer_out", cents, "CRC", occurred, reference=reference)
    subject = "SINPEMOVIL - Notificación de transacción realizada"
    return Mail(APP_SENDER, subject, when, parts, expected, plain, f"bcr-sinpe_movil-{layout}")


def transfer(ctx: Ctx, when: datetime) -> Mail:
    """A transfer between the user's BCR accounts, maybe changing colones for dollars."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    accounts = _accounts(ctx)
    source, target = rng.choice((("CRC", "CRC"), ("CRC", "USD"), ("CRC", "USD"), ("USD", "CRC")))
    if source == "CRC":
        debited = _typed_colones(ctx, 5_000, 600_000)
        moved = round(debited / SELL_RATE) if target == "USD" else debited
    else:
        debited = rng.randrange(2, 120) * 500  # cents of a multiple of five dollars
        moved = round(debited * BUY_RATE)
    symbols = {"CRC": "₡", "USD": "$"}
    document = digits(rng, 8)
    hour = occurred.hour % 12 or 12
    clock = f"{hour:02d}:{occurred.minute:02d} {'p. m.' if occurred.hour >= 12 else 'a. m.'}"
    title = "Informe de transferencia entre cuentas BCR"
    text = (
        f"Hola, {ctx.surnames.upper()} {ctx.given.upper()}. El BCR le informa que ha realizado "
        "la siguiente transacción en la aplicación BCR Móvil:\n"
        f"{title}\n"
        f"Fecha {occurred:%d/%m/%Y} {clock}\n"
        f"Documento {document}\n"
        f"Cuenta origen {accounts[source]}\n"
        f"Cuenta destino {accounts[target] if source != target else _third_party(ctx)}\n"
        f"Monto debitado {symbols[source]}{european_amount(debited)}\n"
        f"Monto transferido {symbols[target]}{european_amount(moved)}\n"
        f"Motivo {rng.choice(catalog.TRANSFER_CONCEPTS)}\n"
    )
    expected = transaction("bcr", "transfer_out", debited, source, occurred, reference=document)
    variant = f"bcr-transfer-{source.lower()}-{target.lower()}"
    return Mail(APP_SENDER, title, when, [Part("plain", text)], expected, text, variant)


def _third_party(ctx: Ctx) -> str:
    # Colones to colones goes to someone else's BCR account: a new one each time.
    return f"CR{ctx.rng.randrange(10, 100)}0152{digits(ctx.rng, 14)}"


def statement(ctx: Ctx, when: datetime) -> Mail:
    """The card statement notice, from the card address: a balance, not a movement."""
    rng = ctx.rng
    balance = int(40_000 * 30 ** rng.random()) * 100 + rng.randrange(100)
    cut = when - timedelta(days=rng.randrange(1, 4))
    text = (
        "Estimado (a) cliente:\n"
        f"Le informamos que su estado de cuenta de la tarjeta {_masked(ctx)} con fecha de "
        f"corte {cut:%d/%m/%Y} está disponible en BCR Móvil y en www.bancobcr.com.\n"
        f"Saldo al corte: ₡{european_amount(balance)}\n"
        f"Pago mínimo: ₡{european_amount(balance // 2500 * 100)}\n"
        f"Fecha máxima de pago: {cut + timedelta(days=20):%d/%m/%Y}\n"
    )
    return Mail(
        CARD_SENDER,
        "Estado de cuenta de su tarjeta BCR",
        when,
        [Part("plain", text)],
        ignored(STATEMENT),
        text,
        "bcr-statement",
    )
