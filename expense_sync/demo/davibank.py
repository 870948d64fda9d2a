"""DAVIbank notifications, and Scotiabank's before the rebrand: one sentence per purchase."""

from datetime import datetime, timedelta

from . import catalog
from .base import (
    DECLINED,
    NO_AMOUNT,
    OFFER,
    STATEMENT,
    ZERO_PREAUTHORIZATION,
    Ctx,
    Mail,
    Picker,
    digits,
    ignored,
    ticket,
    transaction,
    twelve_hour,
    us_amount,
)
from .mime import Part

SCOTIABANK = ("Alertas Scotiabank", "AlertasScotiabank@scotiabank.com")
DAVIBANK = ("Alertas DAVIbank", "Alertas@davibank.cr")
SUBJECT = "Alerta Transacción Tarjeta de Crédito Titular"
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
CHECK_AMOUNTS = ("USD 0.00", "USD .00", "CRC 0.00")


def _era(ctx: Ctx, when: datetime) -> tuple[tuple[str, str], str, str]:
    """Sender, the name the sentence starts with, and the signature, at that moment."""
    if when < ctx.scotiabank_until:
        return SCOTIABANK, "Scotiabank", "Scotiabank de Costa Rica S.A."
    return DAVIBANK, "DAVIbank", "DAVIbank (Costa Rica) S.A."


def _place(merchant: catalog.Merchant) -> str:
    # The merchant and its place in one run: "AUTOMERCADO ESCAZU Escazu Costa Rica".
    city = merchant.city
    if city.replace(" ", "").isalpha():
        city = city.title()
    return f"{merchant.name} {city} {catalog.COUNTRIES[merchant.country][0]}"


def purchase(ctx: Ctx, when: datetime, outcome: str = "approved") -> Mail:
    """A card alert; outcome is "approved", "declined" (fue rechazada) or "check" (zero)."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    sender, bank_name, signature = _era(ctx, when)
    currency, cents = "", 0
    if outcome == "check":
        merchant = rng.choice(catalog.CARD_CHECK_MERCHANTS)
        amount_text = rng.choice(CHECK_AMOUNTS)
    else:
        merchant = MERCHANTS(rng)
        currency, cents = ticket(rng, merchant)
        amount_text = f"{currency} {us_amount(cents)}"
    card = ctx.card("davibank")
    authorization = digits(rng, 6)
    reference = str(rng.randrange(10_000_000, 1_000_000_000))
    place = _place(merchant)
    text = (
        "Estimado cliente,\n"
        f"{bank_name} le notifica que la transacción realizada en {place}, el día "
        f"{occurred:%d/%m/%Y} a las {twelve_hour(occurred)} con su tarjeta de crédito titular "
        f"{card.brand} terminada en {card.last4} con número de autorización {authorization} "
        f"y referencia {reference} por {amount_text}, "
        f"fue {'rechazada' if outcome == 'declined' else 'aprobada'}. La compra se facturará "
        "en dólares estadounidenses(USD) si la transacción se realiza en el extranjero.\n"
        f"{signature}\n"
    )
    # Their mailer sends windows-1252 about as often as UTF-8 in older threads.
    charset = "windows-1252" if rng.random() < 0.3 else "utf-8"
    if outcome == "declined":
        expected = ignored(DECLINED)
    elif outcome == "check":
        expected = ignored(ZERO_PREAUTHORIZATION)
    else:
        expected = transaction(
            "davibank",
            "purchase",
            cents,
            currency,
            occurred,
            merchant=place,
            card_last4=card.last4,
            authorization=authorization,
            reference=reference,
        )
    variant = f"davibank-{outcome}-{bank_name.lower()}-{charset}"
    return Mail(sender, SUBJECT, when, [Part("plain", text, charset)], expected, text, variant)


def preapproved(ctx: Ctx, when: datetime) -> Mail:
    """A pre-approved credit offer: an amount, but an offer, not a movement."""
    rng = ctx.rng
    offer = rng.choice((1_500_000, 2_500_000, 3_000_000, 5_000_000, 8_000_000)) * 100
    text = (
        f"Tiene un crédito preaprobado por CRC {us_amount(offer)}.\n"
        "Solicítelo hoy mismo en cualquiera de nuestras sucursales o en la banca en línea.\n"
    )
    sender, _, _ = _era(ctx, when)
    return Mail(
        sender,
        "Crédito preaprobado para usted",
        when,
        [Part("plain", text, encoding="8bit")],
        ignored(OFFER),
        text,
        "davibank-preapproved",
    )


def statement(ctx: Ctx, when: datetime) -> Mail:
    """The card statement notice."""
    rng = ctx.rng
    balance = int(40_000 * 40 ** rng.random()) * 100 + rng.randrange(100)
    sender, bank_name, signature = _era(ctx, when)
    text = (
        "Estimado cliente,\n"
        f"Le informamos que el estado de cuenta de su tarjeta de crédito terminada en "
        f"{ctx.card('davibank').last4} ya está disponible en {bank_name} en Línea.\n"
        f"Saldo al corte: CRC {us_amount(balance)}\n"
        f"Fecha límite de pago: {when + timedelta(days=18):%d/%m/%Y}\n"
        f"{signature}\n"
    )
    return Mail(
        sender,
        "Estado de cuenta Tarjeta de Crédito",
        when,
        [Part("plain", text, encoding="8bit")],
        ignored(STATEMENT),
        text,
        "davibank-statement",
    )


def rebrand(ctx: Ctx, when: datetime) -> Mail:
    """The letter announcing that Scotiabank's Costa Rican business is now DAVIbank.

    Bank mail that names no amount and no movement is ignored for just that reason.
    """
    text = (
        "Estimado cliente,\n"
        "Scotiabank ahora es DAVIbank. Sus tarjetas, cuentas y números siguen siendo los "
        "mismos; a partir de ahora recibirá nuestras alertas desde Alertas@davibank.cr.\n"
        "DAVIbank (Costa Rica) S.A.\n"
    )
    return Mail(
        DAVIBANK,
        "Scotiabank ahora es DAVIbank",
        when,
        [Part("plain", text)],
        ignored(NO_AMOUNT),
        text,
        "davibank-rebrand",
    )
