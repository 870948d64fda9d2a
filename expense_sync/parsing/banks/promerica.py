"""Banco Promerica: "Comprobante de transacción" receipts (labels without colons), payments."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import (
    card_last4,
    first,
    money_of,
    names_other_kind,
    read_bodies,
    read_fields,
    token,
    transaction,
)
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body

CODE = "promerica"

# One label per line (or table row), the value after it: "Comercio SPOTIFY HEREDIA CR",
# "Monto CRC: 16,915.00" (the currency is in the label). Patterns run on folded text.
_LABELS = re.compile(
    r"(?:(?P<merchant_type>Tipo de comercio)|(?P<merchant>Comercio)|(?P<place>Ciudad/Pais)"
    r"|(?P<date>Fecha/hora|Fecha y hora)|(?P<card>Numero de tarjeta)"
    r"|(?P<authorization>Numero de autorizacion)|(?P<reference>Numero de referencia)"
    r"|(?P<amount_crc>Monto\s+(?:CRC|colones|₡|¢))|(?P<amount_usd>Monto\s+(?:USD|dolares|US\$|\$))"
    r"|(?P<amount>Monto))(?=[\s:]|$)\s*:?\s*",
    re.I,
)

# "Le informamos que el pago RECIBO DE AGUA de la compañía <PAYEE> #40512277 con el número de
# referencia 00000000012345678901 por un monto de 23,480.00 COLONES, ha sido aplicada con
# éxito." The body has no date: the Date header stands in.
_SERVICE_PAYMENT = re.compile(
    r"\bel pago (?P<service>.{1,80}?) de la compania (?P<payee>.+?)(?:\s+#\s*\S+)?"
    r"\s+con el numero de referencia:?\s*(?P<ref>[A-Za-z0-9-]+)\s+por un monto de"
    r"\s+(?P<money>.{1,40}?),?\s+ha sido aplicad[oa] con exito",
    re.I,
)
# "Notificacion Pago de Servicio Automatico": "7712045 Red Cable Hogar e Internet por un
# monto de: 31,480.25 ha sido realizado satisfactoriamente." The contract number, then the
# payee; no currency is written (colones) and no date (the Date header).
_AUTOMATIC_PAYMENT = re.compile(
    r"(?:^|\s)(?P<contract>\d{4,})\s+(?P<payee>[^:]{1,80}?)\s+por un monto de:?\s*"
    r"(?P<money>.{1,30}?)\s+ha sido realizado satisfactoriamente",
    re.I,
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    if (payment := _SERVICE_PAYMENT.search(body.flat_folded)) is not None:
        return transaction(
            CODE,
            "transfer_out",
            find_money(payment.group("money")),
            to_costa_rica(mail.sent_at),
            merchant=body.flat[payment.start("payee") : payment.end("payee")],
            reference=payment.group("ref"),
        )
    if (payment := _AUTOMATIC_PAYMENT.search(body.flat_folded)) is not None:
        return transaction(
            CODE,
            "transfer_out",
            find_money(payment.group("money"), "CRC"),
            to_costa_rica(mail.sent_at),
            merchant=body.flat[payment.start("payee") : payment.end("payee")],
        )
    fields = read_fields(body, _LABELS)
    money_fields = {"amount", "amount_crc", "amount_usd"} & fields.keys()
    if not money_fields or not fields.keys() & {"merchant", "authorization", "reference"}:
        return None
    # Only purchases are documented: a receipt whose subject calls it a refund or a
    # withdrawal ("Comprobante de devolución") is not read as one. Its body cannot tell:
    # banners around the table offer "Retiro sin tarjeta" to everyone.
    if names_other_kind(" ".join(mail.folded_subject.split()[:4])):
        return unparsed(UNKNOWN_TYPE, CODE)
    if len(money_fields) > 1:
        money = None  # two amount lines in two currencies: which one was charged?
    elif "amount_crc" in fields:
        money = money_of(fields["amount_crc"], "CRC")
    elif "amount_usd" in fields:
        money = money_of(fields["amount_usd"], "USD")
    else:
        money = money_of(fields["amount"])
    return transaction(
        CODE,
        "purchase",
        money,
        parse_datetime(first(fields, "date") or "") or to_costa_rica(mail.sent_at),
        merchant=first(fields, "merchant"),
        card=card_last4(first(fields, "card")) or card_last4(body.flat),
        authorization=token(first(fields, "authorization")),
        reference=token(first(fields, "reference")),
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="Promerica",
        sender_domains=("promerica.fi.cr",),
        names=r"\bpromerica\b",
        order=6,
        parse=parse,
    )
)
