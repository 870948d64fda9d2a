"""Banco Nacional de Costa Rica: "comprobante de Compra" notices, old and new."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import card_last4, read_bodies, transaction
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body, fold

CODE = "bn"

# "Por este medio le hacemos llegar el comprobante de Compra realizada en <MERCHANT AND
# PLACE> el 7 de Mayo de 2026 a las 9:14 p.m." then one item per line: the merchant again,
# "May 7, 2026 - 9:14 p.m.", "VISA ************6620", "NRO. AUT: 318840", "REF: 52063318",
# "TOTAL: CRC 15330,00". Mails of 2023 put values in *bold* markers and pad the merchant
# with runs of spaces (cleaning the text collapses them). Patterns run on folded text.
# Bold markers are single stars around a value ("*COMPRA*"); merchants have stars of their
# own ("FACEBK *QX81TT2MM"), so the patterns allow a star around each value instead of
# deleting them.
_NOTICE = re.compile(
    r"\bcomprobante de \*?(?P<kind>[a-z ]{3,30}?)\*? realizad[oa] en \*?(?P<merchant>.+?)\*?"
    r"\s+el \*?(?P<date>\d{1,2} de [a-z]{3,10} de \d{4})\*?"
    r"(?:\s+a las \*?(?P<time>\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\b\.?)?)\*?)?",
    re.I,
)
_AUTHORIZATION = re.compile(
    r"\bNRO\.?\s*(?:DE\s+)?AUT(?:ORIZACION)?\.?:?\s*\**(?P<code>[A-Z0-9]+)", re.I
)
_REFERENCE = re.compile(r"\bREF(?:ERENCIA)?\.?:\s*\**(?P<code>[A-Z0-9]+)", re.I)
_TOTAL = re.compile(r"\bTOTAL:?\s*\**(?P<money>[^*]{1,30})", re.I)
_KINDS = {"compra": "purchase", "retiro": "withdrawal", "devolucion": "refund"}


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    if "comprobante" not in body.lower:
        return None
    text = body.flat_folded
    notice = _NOTICE.search(text)
    if notice is None:
        return None
    kind = _KINDS.get(fold(notice.group("kind")).strip().lower())
    if kind is None:
        return unparsed(UNKNOWN_TYPE, CODE)
    rest = notice.end()
    authorization = _AUTHORIZATION.search(text, rest)
    reference = _REFERENCE.search(text, rest)
    total = _TOTAL.search(text, rest)
    return transaction(
        CODE,
        kind,
        find_money(total.group("money")) if total else None,
        parse_datetime(f"{notice.group('date')} {notice.group('time') or ''}")
        or to_costa_rica(mail.sent_at),
        merchant=body.flat[notice.start("merchant") : notice.end("merchant")],
        card=card_last4(text[rest:]),
        authorization=authorization.group("code") if authorization else None,
        reference=reference.group("code") if reference else None,
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="Banco Nacional",
        sender_domains=("bncr.fi.cr",),
        names=r"\bbanco nacional\b|\bBNCR\b",
        order=2,
        parse=parse,
    )
)
