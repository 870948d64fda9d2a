"""Banco de Costa Rica: the card's transaction table, transfers between accounts, SINPE Móvil."""

from __future__ import annotations

import re

from ..amounts import find_money, parse_amount
from ..dates import parse_datetime, to_costa_rica
from ..fields import card_last4, first, money_of, read_bodies, read_fields, token, transaction
from ..mime import Mail
from ..model import DECLINED, SEVERAL_TRANSACTIONS, Outcome, ignored, unparsed
from ..registry import BankParser, register
from ..text import Body

CODE = "bcr"

# Card notices: "Transacciones en su tarjeta BCR: ****-****-****-7710", then the table
# "Fecha | Autorización | No.Referencia | Monto | Moneda | Comercio | Estado" with one row
# per transaction: "14/07/2026 08:02:11 | 00391827 | 618830027761 | 12,600.00 | COLON COSTA
# RICA | <MERCHANT> SAN JOSE CR | Aprobada". The text part has the row on one line with
# single spaces; the HTML's cells read the same once cleaned. Patterns run on folded text.
_CARD_TABLE = re.compile(r"\bdetalle de transacciones\b", re.I)
_ROW = re.compile(
    r"(?P<when>\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?)\s+(?P<authorization>[A-Z0-9]+)"
    r"\s+(?P<reference>[A-Z0-9]+)\s+(?P<amount>[0-9][0-9.,]*)\s+(?P<currency>COLON(?:ES)?"
    r"(?: COSTA RICA)?|US DOLLAR|DOLAR(?:ES)?(?: AMERICANOS?)?|CRC|USD)\s+(?P<merchant>.+?)"
    r"\s+(?P<status>Aprobad[ao]|Negad[ao]|Rechazad[ao]|Denegad[ao]|Declinad[ao])\b",
    re.I,
)
_CURRENCIES = {"C": "CRC", "U": "USD", "D": "USD"}
_REFUSED = ("negad", "rechazad", "denegad", "declinad")

# "Informe de transferencia entre cuentas BCR": "Label value" lines. The debit is the
# transaction, in its own currency ("₡52.000,00"); what arrived may be in the other one.
_TRANSFER = re.compile(r"\binforme de transferencia\b", re.I)
_TRANSFER_LABELS = re.compile(
    r"(?:(?P<date>Fecha)|(?P<reference>Documento)|(?P<debited>Monto debitado)"
    r"|(?P<credited>Monto transferido)|(?P<origin>Cuenta origen)|(?P<target>Cuenta destino)"
    r"|(?P<reason>Motivo))(?=[\s:]|$)\s*:?\s*",
    re.I,
)
# SINPE Móvil: "se le ha debitado de su cuenta BCR la siguiente transacción SINPE Móvil:
# Número de referencia: ... Monto: 12,000.00 Motivo: ... Esta transacción fue realizada el
# 14/07/2026 a las 8:05 PM". SINPE Móvil moves colones only, so no currency is written.
_SINPE_MOVIL = re.compile(
    r"\bse (?:le )?ha (?P<direction>debitado|acreditado) (?:de|a|en) su cuenta\b.{0,80}?"
    r"\bsinpe movil\b",
    re.I,
)
_SINPE_REFERENCE = re.compile(r"\bnumero de referencia:?\s*(?P<code>[A-Za-z0-9-]+)", re.I)
_SINPE_AMOUNT = re.compile(r"\bmonto:?\s*(?P<money>[^A-Za-z]{1,30})", re.I)
_SINPE_WHEN = re.compile(r"\bfue realizada el\s+(?P<when>.{8,40})", re.I)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if _CARD_TABLE.search(text):
        return _card_table(body)
    if _TRANSFER.search(text) or _TRANSFER.search(mail.folded_subject):
        return _transfer(body, mail)
    if (match := _SINPE_MOVIL.search(text)) is not None:
        return _sinpe_movil(text, match, mail)
    return None


def _card_table(body: Body) -> Outcome | None:
    rows = [(line, match) for line in body.folded for match in _ROW.finditer(line)]
    if not rows:
        rows = [(body.flat_folded, match) for match in _ROW.finditer(body.flat_folded)]
    if not rows:
        return None
    if len(rows) > 1:
        # One email is one outcome: the user sees it rather than a guess at which row counts.
        return unparsed(SEVERAL_TRANSACTIONS, CODE)
    line, row = rows[0]
    if row.group("status").lower().startswith(_REFUSED):
        return ignored(DECLINED, CODE)
    amount = parse_amount(row.group("amount"))
    currency = _CURRENCIES.get(row.group("currency")[0].upper())
    if row.group("currency").upper() in ("CRC", "USD"):
        currency = row.group("currency").upper()
    original = _original_of(body, line)
    return transaction(
        CODE,
        "purchase",
        (amount, currency) if amount is not None and currency else None,
        parse_datetime(row.group("when")),
        merchant=original[row.start("merchant") : row.end("merchant")],
        card=card_last4(body.flat),
        authorization=row.group("authorization"),
        reference=row.group("reference"),
    )


def _original_of(body: Body, folded_line: str) -> str:
    # Folding keeps offsets, so the accented original is sliced where the folded one matched.
    if folded_line == body.flat_folded:
        return body.flat
    return body.lines[body.folded.index(folded_line)]


def _transfer(body: Body, mail: Mail) -> Outcome | None:
    fields = read_fields(body, _TRANSFER_LABELS)
    if "debited" not in fields:
        return None
    return transaction(
        CODE,
        "transfer_out",
        money_of(fields["debited"]),
        parse_datetime(first(fields, "date") or "") or to_costa_rica(mail.sent_at),
        reference=token(first(fields, "reference")),
    )


def _sinpe_movil(text: str, match: re.Match[str], mail: Mail) -> Outcome:
    rest = match.end()
    reference = _SINPE_REFERENCE.search(text, rest)
    amount = _SINPE_AMOUNT.search(text, rest)
    when = _SINPE_WHEN.search(text, rest)
    return transaction(
        CODE,
        "transfer_out" if match.group("direction").lower() == "debitado" else "transfer_in",
        find_money(amount.group("money"), "CRC") if amount else None,
        (parse_datetime(when.group("when")) if when else None) or to_costa_rica(mail.sent_at),
        reference=reference.group("code") if reference else None,
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="BCR",
        sender_domains=("bancobcr.com",),
        names=r"\bBCR\b|\bbanco de costa rica\b",
        order=3,
        parse=parse,
    )
)
