"""Banco Promerica: "Comprobante de transacción" receipts, labels without colons."""

from __future__ import annotations

import re

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


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    fields = read_fields(body, _LABELS)
    money_fields = {"amount", "amount_crc", "amount_usd"} & fields.keys()
    if not money_fields or not fields.keys() & {"merchant", "authorization", "reference"}:
        return None
    if names_other_kind(body.flat_folded):
        return unparsed(UNKNOWN_TYPE, CODE)  # only purchases are documented
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
        parse=parse,
    )
)
