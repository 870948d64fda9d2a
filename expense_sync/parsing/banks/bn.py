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
# Some voucher texts glue words ("de Comprarealizada en", "de 2026a las"), so the spaces
# around them are optional.
_NOTICE = re.compile(
    r"\bcomprobante de \*?(?P<kind>[a-z ]{3,30}?)\*?\s*realizad[oa] en \*?(?P<merchant>.+?)\*?"
    r"\s+el \*?(?P<date>\d{1,2} de [a-z]{3,10} de \d{4})\*?"
    r"(?:\s*a las \*?(?P<time>\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\b\.?)?)\*?)?",
    re.I,
)
# The summary block alone (some vouchers carry nothing else): the merchant's line, then
# "Oct 4, 2026 - 0:08 p.m.", "VISA************0857", "NRO. AUT:", "REF:", "TOTAL:".
_SUMMARY_DATE = re.compile(
    r"^\*?(?P<when>[a-z]{3}\.? \d{1,2}, \d{4} - \d{1,2}:\d{2}(?:\s*[ap]\.?\s?m\b\.?)?)\*?"
    r"\s*(?:$|VISA|MASTER|MC|AMEX)",
    re.I,
)
_AUTHORIZATION = re.compile(
    r"\b(?:NRO\.?\s*(?:DE\s+)?AUT(?:ORIZACION)?\.?:?|AUT(?:ORIZACION)?\.?:)\s*\**"
    r"(?P<code>[A-Z0-9]+)",
    re.I,
)
_REFERENCE = re.compile(r"\bREF(?:ERENCIA)?\.?:\s*\**(?P<code>[A-Z0-9]+)", re.I)
_TOTAL = re.compile(r"\bTOTAL:?\s*\**(?P<money>[^*]{1,30})", re.I)
_KINDS = {"compra": "purchase", "retiro": "withdrawal", "devolucion": "refund"}
# SINPE Móvil received: "Ha recibido 2700 colones por BN SINPE MOVIL de <NAME>. <concept>.
# Referencia 2026042882183010498722008." No date: the Date header stands in.
_SINPE_MOVIL_IN = re.compile(
    r"\bha recibido (?P<money>[0-9][0-9.,]*\s*(?:colones|CRC)) por BN SINPE MOVIL\b"
    r"(?:.{0,200}?\breferencia:?\s*(?P<ref>[A-Za-z0-9]+))?",
    re.I,
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if (sinpe := _SINPE_MOVIL_IN.search(text)) is not None:
        return transaction(
            CODE,
            "transfer_in",
            find_money(sinpe.group("money")),
            to_costa_rica(mail.sent_at),
            reference=sinpe.group("ref"),
        )
    if (notice := _NOTICE.search(text)) is not None:
        kind = _KINDS.get(fold(notice.group("kind")).strip().lower())
        if kind is None:
            return unparsed(UNKNOWN_TYPE, CODE)
        when = parse_datetime(f"{notice.group('date')} {notice.group('time') or ''}")
        merchant = body.flat[notice.start("merchant") : notice.end("merchant")]
        return _voucher(body, text[notice.end() :], kind, when, merchant, mail)
    for index, line in enumerate(body.folded):
        summary = _SUMMARY_DATE.match(line)
        if summary is not None and index > 0 and "TOTAL" in text.upper():
            rest = " ".join(body.folded[index:])
            # A voucher is a card charge: with no sentence naming its kind, a purchase.
            when = parse_datetime(summary.group("when"))
            return _voucher(body, rest, "purchase", when, body.lines[index - 1], mail)
    return None


def _voucher(body: Body, rest: str, kind: str, when, merchant: str, mail: Mail) -> Outcome:
    """The transaction of a voucher, its items read from the text after its sentence."""
    authorization = _AUTHORIZATION.search(rest)
    reference = _REFERENCE.search(rest)
    total = _TOTAL.search(rest)
    return transaction(
        CODE,
        kind,
        find_money(total.group("money")) if total else None,
        when or to_costa_rica(mail.sent_at),
        merchant=merchant,
        card=card_last4(rest),
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
