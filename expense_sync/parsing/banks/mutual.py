"""Grupo Mutual Alajuela - La Vivienda: debit-card notices and SINPE Móvil transfers.

Known from few public samples: any other Grupo Mutual mail with an amount is unparsed.
"""

from __future__ import annotations

import re

from ..amounts import currency_code, find_money
from ..dates import to_costa_rica
from ..fields import card_last4, first, money_of, read_bodies, read_flat_fields, token, transaction
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body, fold

CODE = "mutual"

# Debit card, upper-case labels with " : ": "MONTO REBAJADO A SU CUENTA : 41,900.00 MONEDA :
# COLONES NOMBRE DEL COMERCIO : <MERCHANT> PAÍS ORIGEN DEL COMERCIO : Costa Rica NÚMERO DE
# REFERENCIA : 612200334455 TIPO DE TRANSACCIÓN : COMPRA TIPO DE TARJETA : TITULAR ...".
# No date is written: the Date header stands in. Patterns run on accent-folded text.
_LABELS = re.compile(
    r"(?:(?P<amount>MONTO REBAJADO A SU CUENTA)|(?P<currency>MONEDA)"
    r"|(?P<merchant>NOMBRE DEL COMERCIO)|(?P<country>PAIS ORIGEN DEL COMERCIO)"
    r"|(?P<reference>NUMERO DE REFERENCIA)|(?P<authorization>NUMERO DE AUTORIZACION)"
    r"|(?P<type>TIPO DE TRANSACCION)|(?P<card_type>TIPO DE TARJETA)|(?P<card>NUMERO DE TARJETA)"
    r"|(?P<holder>NOMBRE DEL TARJETAHABIENTE))\s*:\s*",
    re.I,
)
# "Grupo Mutual le comunica que ha enviado una transferencia por medio de Sinpe Móvil Mutual
# por un monto de 6,000.00 Colones, por concepto de ...".
_SINPE_MOVIL = re.compile(
    r"\bha (?P<direction>enviado|recibido) una transferencia por medio de sinpe movil\b.{0,40}?"
    r"\bpor un monto de (?P<money>.{1,30}?)(?=,\s|\.\s|\s+por concepto\b)",
    re.I,
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    if (match := _SINPE_MOVIL.search(body.flat_folded)) is not None:
        incoming = match.group("direction").lower() == "recibido"
        return transaction(
            CODE,
            "transfer_in" if incoming else "transfer_out",
            find_money(match.group("money"), "CRC"),
            to_costa_rica(mail.sent_at),
        )
    fields = read_flat_fields(body, _LABELS)
    if "amount" not in fields or not fields.keys() & {"merchant", "type", "reference"}:
        return None
    if fold(first(fields, "type") or "").upper().split()[:1] != ["COMPRA"]:
        return unparsed(UNKNOWN_TYPE, CODE)
    return transaction(
        CODE,
        "purchase",
        money_of(fields["amount"], currency_code(first(fields, "currency") or "")),
        to_costa_rica(mail.sent_at),
        merchant=first(fields, "merchant"),
        card=card_last4(first(fields, "card")),
        authorization=token(first(fields, "authorization")),
        reference=token(first(fields, "reference")),
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="Grupo Mutual",
        sender_domains=("grupomutual.fi.cr",),
        names=r"\bgrupo mutual\b|\bmutual alajuela\b",
        order=8,
        parse=parse,
    )
)
