"""Banco Popular notifications: the debit and credit card sentences, and a PIN change."""

from datetime import datetime

from . import catalog
from .base import (
    CARD_SETTINGS,
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

CARD_SENDER = ("Banco Popular", "popularvisa@bancopopularinforma.fi.cr")
SERVICE_SENDER = ("Banco Popular", "infopersonal@bancopopular.fi.cr")
SUBJECT = "Notificación de Transacción"
MERCHANTS = Picker([(m.weight, m) for m in catalog.MERCHANTS])
CURRENCY_WORDS = {"CRC": "Colones", "USD": "Dólares"}
HELP = "Si no reconoce esta transacción, favor llamar al 2000-2222."
# The merchant's padding survives in <pre>; a text conversion collapses it.
PRE = '<pre style="white-space:pre-wrap;">{}</pre>'


def _debit_card(ctx: Ctx) -> str:
    return ctx.cards["popular"][0].last4


def _credit_card(ctx: Ctx) -> tuple[str, str]:
    card = ctx.cards["popular"][-1]
    return card.brand, card.last4


def debit(ctx: Ctx, when: datetime) -> Mail:
    """The debit card sentence: a padded merchant, the amount then its code, and no date.

    With no date in the body, the transaction's moment is the Date header.
    """
    rng = ctx.rng
    merchant = MERCHANTS(rng)
    currency, cents = ticket(rng, merchant)
    last4 = _debit_card(ctx)
    # The processor's fixed columns, as the <pre> block shows them.
    padded = f"{merchant.name:<22} {merchant.city:<13} {merchant.country}"
    sentence = (
        f"Su Tarjeta de Débito BP terminada en {last4} fue utilizada en {padded} por "
        f"{cents // 100}.{cents % 100:02d} {currency} . {HELP}"
    )
    html = (
        '<div style="max-width:400px;float:left;font-size:11pt;font-family:arial;">'
        f'<pre style="font-weight:bold;">{SUBJECT}</pre>'
        + PRE.format(html_escape(sentence))
        + "<br><pre>Muchas gracias.</pre></div>\n"
    )
    plain = f"{SUBJECT}\n{sentence}\n\nMuchas gracias.\n"
    expected = transaction(
        "popular",
        "purchase",
        cents,
        currency,
        when,
        merchant=" ".join(padded.split()),
        card_last4=last4,
    )
    return Mail(
        CARD_SENDER,
        SUBJECT,
        when,
        [Part("html", html)],
        expected,
        plain,
        "popular-debit",
        dated_by_header=True,
    )


def credit(ctx: Ctx, when: datetime) -> Mail:
    """The credit card sentence, with the date, authorization and reference inline."""
    rng = ctx.rng
    occurred = when.replace(second=0)
    merchant = MERCHANTS(rng)
    currency, cents = ticket(rng, merchant)
    brand, last4 = _credit_card(ctx)
    authorization, reference = digits(rng, 6), digits(rng, 12)
    text = (
        f"El Banco Popular le informa de la transacción realizada en {merchant.name} el "
        f"{occurred:%d/%m/%Y} a las {occurred:%H:%M}, con la tarjeta {brand} A {last4}, "
        f"Auth # {authorization}, Ref # {reference}, por {us_amount(cents)} "
        f"{CURRENCY_WORDS[currency]}.\n{HELP}\n"
    )
    expected = transaction(
        "popular",
        "purchase",
        cents,
        currency,
        occurred,
        merchant=merchant.name,
        card_last4=last4,
        authorization=authorization,
        reference=reference,
    )
    return Mail(CARD_SENDER, SUBJECT, when, [Part("plain", text)], expected, text, "popular-credit")


def pin_change(ctx: Ctx, when: datetime) -> Mail:
    """A card setting confirmation: a card number and a date, but no money."""
    text = (
        "Estimado(a) cliente:\n"
        f"El cambio de PIN de su Tarjeta de Débito BP terminada en {_debit_card(ctx)} se realizó "
        f"correctamente el {when:%d/%m/%Y} a las {when:%H:%M}.\n"
        "Si usted no realizó este cambio, llame de inmediato al 2000-2222.\n"
    )
    return Mail(
        SERVICE_SENDER,
        "Cambio de PIN",
        when,
        [Part("plain", text)],
        ignored(CARD_SETTINGS),
        text,
        "popular-pin",
    )
