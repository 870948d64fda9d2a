"""DAVIbank (Davivienda), formerly Scotiabank Costa Rica: card, debit and payment notices."""

from __future__ import annotations

import re

from ..amounts import currency_code, find_money, parse_amount
from ..dates import parse_datetime, to_costa_rica
from ..fields import (
    card_last4,
    first,
    money_of,
    names_other_kind,
    read_bodies,
    read_flat_fields,
    token,
    transaction,
)
from ..mime import Mail
from ..model import DECLINED, UNKNOWN_TYPE, Outcome, ignored, unparsed
from ..registry import BankParser, register
from ..text import Body

CODE = "davibank"

# Credit card: "DAVIbank le notifica que la transacción realizada en <MERCHANT AND PLACE>,
# el día 27/03/2026 a las 12:39 PM con su tarjeta de crédito titular MC terminada en 0849
# con número de autorización 914190 y referencia 24716523 por CRC 12,444.00, fue
# aprobada." The Scotiabank-era text is the same. Patterns run on accent-folded text.
_NOTICE = re.compile(
    r"le notifica que la transaccion realizada en (?P<merchant>.+?),?\s+el dia\s+"
    r"(?P<when>.{8,40}?)\s+con su tarjeta\b",
    re.I,
)
_CARD = re.compile(r"\bterminada en:?\s*(?P<last4>[0-9]{4})\b", re.I)
_AUTHORIZATION = re.compile(r"\bautorizacion:?\s*(?P<code>[A-Za-z0-9]+)", re.I)
_REFERENCE = re.compile(r"\breferencia:?\s*(?P<code>[A-Za-z0-9]+)", re.I)
# "por CRC 12,444.00, fue": a currency or a digit right after "por", up to ", fue".
_AMOUNT = re.compile(r"\bpor\s+(?P<money>\S{0,4}\s*[0-9.,].{0,40}?)(?:,?\s+fue\b|$)", re.I)
_VERDICT = re.compile(r",?\s+fue\s+(?P<verdict>[a-z]+)", re.I)
_REFUSED = ("rechazada", "declinada", "denegada", "negada")

# "Davivienda Autorizaciones": "Davivienda le informa de la transacción realizada en:
# <MERCHANT>, el 14/10/2026, a las 07:21, con la tarjeta DAVIVIENDA VISA INFI terminada en
# *4408, Autorización #518230, Ref#628707215561, en Colones por 12,300.00". The currency
# is a word before the amount ("en Dolares US por 18.75"); the HTML splits the sentence
# over paragraphs and bold runs, so spaces may stand before the commas.
_AUTHORIZED = re.compile(
    r"\ble informa de la transaccion realizada en:?\s*(?P<merchant>.+?)\s*,\s*el\s+"
    r"(?P<when>\d{1,2}/\d{1,2}/\d{4}\s*,?\s*a las\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s*[ap]\.?\s?m\b\.?)?)\s*,?\s*con la tarjeta\b.{0,60}?\bterminada en\s*\**\s*"
    r"(?P<last4>\d{4})\s*,?\s*autorizacion\s*#?\s*(?P<authorization>[A-Za-z0-9]+)\s*,?\s*"
    r"ref\s*#?\s*(?P<reference>[A-Za-z0-9]+)\s*,?\s*en\s+(?P<currency>colones|dolares(?: us)?)"
    r"\s+por\s+(?P<amount>[0-9][0-9.,]*)",
    re.I,
)

# Debit card: "se ha realizado una transacción de débito a su cuenta bancaria ... Detalle
# de la transacción : Transacción realizada en: <MERCHANT> Ciudad: HEREDIA País: CR Fecha
# y hora: 09 - 05 - 2026 18:44:02 Marca de su tarjeta: VISA Número de la tarjeta:
# *******3390 Número de autorización: 440921 Número de referencia: 613802245517 Moneda:
# CRC Monto: 8640.00". Hard line breaks fall anywhere, so it is read as one line.
_DEBIT_CARD = re.compile(r"\bse ha realizado una transaccion de debito\b", re.I)
_DEBIT_LABELS = re.compile(
    r"(?:(?P<merchant>Transaccion realizada en)|(?P<city>Ciudad)|(?P<country>Pais)"
    r"|(?P<date>Fecha y hora)|(?P<brand>Marca de su tarjeta)|(?P<card>Numero de la tarjeta)"
    r"|(?P<authorization>Numero de autorizacion)|(?P<reference>Numero de referencia)"
    r"|(?P<currency>Moneda)|(?P<amount>Monto))\s*:\s*",
    re.I,
)
# Account debit: "Se realizó un débito a la cuenta bancaria en CRC terminada en *******5512
# , por un monto de CRC 7,100.00 . La transacción se realizó el día 09-05-2026 08:15:37".
_ACCOUNT_DEBIT = re.compile(
    r"\bse realizo un debito a la cuenta\b.{0,80}?\bpor un monto de (?P<money>.{1,40}?)"
    r"\s*\.\s+la transaccion se realizo el dia (?P<when>.{8,30})",
    re.I,
)
# Service payment: "nuestro cliente <NAME> , ha realizado un pago de servicios con las
# siguientes características: <PAYEE AND SERVICE> Nombre ... Identificador ... Fecha Vito.
# 30/05/2026 Monto ₡ 52,380". "Fecha Vito." is the due date, not the payment's.
_SERVICE_PAYMENT = re.compile(
    r"\bha realizado un pago de servicios con las siguientes caracteristicas:\s*"
    r"(?P<payee>.+?)\s+Nombre\b.*?\bMonto:?\s*(?P<money>.{1,40})",
    re.I,
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if (notice := _NOTICE.search(text)) is not None:
        return _credit_card(body, notice, mail)
    if (match := _AUTHORIZED.search(text)) is not None:
        amount = parse_amount(match.group("amount"))
        currency = currency_code(match.group("currency").split()[0])
        return transaction(
            CODE,
            "purchase",
            (amount, currency) if amount is not None and currency else None,
            parse_datetime(match.group("when").replace(",", " ")) or to_costa_rica(mail.sent_at),
            merchant=body.flat[match.start("merchant") : match.end("merchant")],
            card=match.group("last4"),
            authorization=match.group("authorization"),
            reference=match.group("reference"),
        )
    if _DEBIT_CARD.search(text):
        return _debit_card(body, mail)
    if (match := _ACCOUNT_DEBIT.search(text)) is not None:
        return transaction(
            CODE,
            "transfer_out",
            find_money(match.group("money")),
            parse_datetime(match.group("when")) or to_costa_rica(mail.sent_at),
        )
    if (match := _SERVICE_PAYMENT.search(text)) is not None:
        return transaction(
            CODE,
            "transfer_out",
            find_money(match.group("money")),
            to_costa_rica(mail.sent_at),
            merchant=body.flat[match.start("payee") : match.end("payee")],
        )
    return None


def _credit_card(body: Body, notice: re.Match[str], mail: Mail) -> Outcome:
    text = body.flat_folded
    rest = notice.end()
    card = _CARD.search(text, rest)
    authorization = _AUTHORIZATION.search(text, rest)
    reference = _REFERENCE.search(text, rest)
    amount = _AMOUNT.search(text, reference.end() if reference else rest)
    # Only purchases are documented: the sentence itself (not the merchant's name, not a
    # footer) must not speak of a refund or a withdrawal.
    sentence_end = amount.end() if amount is not None else rest
    sentence = text[notice.start() : notice.start("merchant")] + " " + text[rest:sentence_end]
    if names_other_kind(sentence):
        return unparsed(UNKNOWN_TYPE, CODE)
    if amount is not None:
        verdict = _VERDICT.match(text, amount.end("money"))
        if verdict is not None and verdict.group("verdict").lower() in _REFUSED:
            return ignored(DECLINED, CODE)
    return transaction(
        CODE,
        "purchase",
        find_money(amount.group("money")) if amount else None,
        parse_datetime(notice.group("when")) or to_costa_rica(mail.sent_at),
        merchant=body.flat[notice.start("merchant") : notice.end("merchant")],
        card=card.group("last4") if card else None,
        authorization=authorization.group("code") if authorization else None,
        reference=reference.group("code") if reference else None,
    )


def _debit_card(body: Body, mail: Mail) -> Outcome:
    fields = read_flat_fields(body, _DEBIT_LABELS)
    return transaction(
        CODE,
        "purchase",
        money_of(fields.get("amount"), currency_code(first(fields, "currency") or "")),
        parse_datetime(first(fields, "date") or "") or to_costa_rica(mail.sent_at),
        merchant=first(fields, "merchant"),
        card=card_last4(first(fields, "card")),
        authorization=token(first(fields, "authorization")),
        reference=token(first(fields, "reference")),
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="Scotia Bank",
        sender_domains=("davibank.cr", "scotiabank.com", "davivienda.cr"),
        names=r"\bdavibank\b|\bscotiabank\b|\bdavivienda\b",
        order=5,
        parse=parse,
    )
)
