"""MUCAP (Mutual Cartago de Ahorro y Préstamo): card purchases, payments, SINPE, DTR debits.

Known from few public samples: any other MUCAP mail with an amount is unparsed.
"""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import read_bodies, transaction
from ..mime import Mail
from ..model import Outcome
from ..registry import BankParser, register
from ..text import Body

CODE = "mucap"

# Patterns run on accent-folded text. "MUCAP le informa que su tarjeta finalizada en 7741
# registra una compra de 12,345.00 COL en <MERCHANT> 25/10/26 a las 21:11." (COL: colones)
_CARD = re.compile(
    r"\btarjeta (?:finalizada|terminada) en (?P<last4>\d{4}) registra una compra de "
    r"(?P<money>.{1,30}?) en (?P<merchant>.+?)\s+"
    r"(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{2}(?:\d{2})?)"
    r"(?P<time>\s+a las\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\b\.?)?)?",
    re.I,
)
# "Mucap le informa que el recibo 104233 por concepto de PAGO AGUA de <PAYEE> por un valor
# de 9,120.00 Colones ha sido cancelado exitosamente" ("Colones" may be missing).
_RECEIPT = re.compile(
    r"\bel recibo (?P<ref>\w+) por concepto de (?P<concept>.+?) de (?P<payee>.+?) por un valor de"
    r"\s+(?P<money>.{1,30}?)\s+ha sido cancelado",
    re.I,
)
# SINPE on the account: "se acreditó a su cuenta IBAN ... mediante tranferencia SINPE con el
# número de referencia ... un monto de 40,000.00 Colones" and "se debitó de su cuenta ...".
_SINPE_ACCOUNT = re.compile(
    r"\bse (?P<direction>acredito|debito) (?:a|de) su cuenta\b.{0,120}?"
    r"(?:\bnumero de referencia:?\s*(?P<ref>[A-Za-z0-9-]+).{0,40}?)?"
    r"\bun monto de (?P<money>.{1,30}?)"
    r"(?=,\s|\.\s|\.?$|\s+(?:por|el|a)\b)",
    re.I,
)
# SINPE Móvil: "ha recibido de <NAME> la siguiente transferencia SINPE Móvil: Monto:
# 15,000.00 ... Esta transferencia fue enviada el 22/10/2026 a las 9:59 PM", or "se realizó
# la siguiente transferencia SINPE Móvil: Teléfono acreditado: ... Monto: CRC 59,800.00".
# Real mail has "M?vil": the accent lost on the way.
_SINPE_MOVIL = re.compile(
    r"\b(?P<direction>ha recibido de .{1,80}?|se realizo) la siguiente transferencia sinpe m.vil"
    r"\b.{0,120}?\bmonto:?\s*(?P<money>.{1,30}?)\s+detalle\b",
    re.I,
)
_SENT_ON = re.compile(r"\bfue enviada el\s+(?P<when>.{8,30})", re.I)
# "se aplicó mediante débito en tiempo real (DTR) la siguiente transferencia: Monto ¢ 350,000.00"
_DTR = re.compile(
    r"\bdebito en tiempo real \(DTR\).{0,60}?\bmonto:?\s*(?P<money>.{1,30}?)\s+detalle\b", re.I
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    sent = to_costa_rica(mail.sent_at)
    if (match := _CARD.search(text)) is not None:
        year = match.group("y")
        stamp = f"{match.group('d')}/{match.group('m')}/{'20' + year if len(year) == 2 else year}"
        return transaction(
            CODE,
            "purchase",
            find_money(match.group("money")),
            parse_datetime(stamp + (match.group("time") or "")) or sent,
            merchant=body.flat[match.start("merchant") : match.end("merchant")],
            card=match.group("last4"),
        )
    if (match := _RECEIPT.search(text)) is not None:
        return transaction(
            CODE,
            "transfer_out",
            find_money(match.group("money"), "CRC"),
            sent,
            merchant=body.flat[match.start("payee") : match.end("payee")],
            reference=match.group("ref"),
        )
    if (match := _SINPE_ACCOUNT.search(text)) is not None:
        incoming = match.group("direction").lower() == "acredito"
        return transaction(
            CODE,
            "transfer_in" if incoming else "transfer_out",
            find_money(match.group("money"), "CRC"),
            sent,
            reference=match.group("ref"),
        )
    if (match := _SINPE_MOVIL.search(text)) is not None:
        when = _SENT_ON.search(text, match.end())
        incoming = match.group("direction").lower().startswith("ha recibido")
        return transaction(
            CODE,
            "transfer_in" if incoming else "transfer_out",
            find_money(match.group("money"), "CRC"),  # SINPE Móvil moves colones only
            (parse_datetime(when.group("when")) if when else None) or sent,
        )
    if (match := _DTR.search(text)) is not None:
        return transaction(CODE, "transfer_out", find_money(match.group("money"), "CRC"), sent)
    return None


PARSER = register(
    BankParser(
        code=CODE,
        name="MUCAP",
        sender_domains=("mucap.fi.cr",),
        names=r"\bmucap\b",
        order=7,
        parse=parse,
    )
)
