"""DAVIbank, formerly Scotiabank Costa Rica: one-sentence credit and debit card alerts."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import names_other_kind, read_bodies, transaction
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body

CODE = "davibank"

# "DAVIbank le notifica que la transacción realizada en <MERCHANT AND PLACE>, el día
# 27/03/2026 a las 12:39 PM con su tarjeta de crédito titular MC terminada en 0849 con
# número de autorización 914190 y referencia 24716523 por CRC 12,444.00, fue aprobada."
# The Scotiabank-era text is the same. Patterns run on accent-folded text.
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


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    notice = _NOTICE.search(text)
    if notice is None:
        return None
    outside_merchant = text[: notice.start("merchant")] + " " + text[notice.end("merchant") :]
    if names_other_kind(outside_merchant):
        return unparsed(UNKNOWN_TYPE, CODE)  # only purchases are documented
    rest = notice.end()
    card = _CARD.search(text, rest)
    authorization = _AUTHORIZATION.search(text, rest)
    reference = _REFERENCE.search(text, rest)
    amount = _AMOUNT.search(text, reference.end() if reference else rest)
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


PARSER = register(
    BankParser(
        code=CODE,
        name="Scotia Bank / DAVIbank",
        sender_domains=("davibank.cr", "scotiabank.com"),
        parse=parse,
    )
)
