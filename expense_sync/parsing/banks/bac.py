"""BAC Credomatic (BAC San José): card notices, transfers, SINPE, cardless withdrawals."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import card_last4, first, money_of, read_bodies, read_fields, token, transaction
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body, fold

CODE = "bac"

# Patterns run on accent-folded text.
_LABELS = re.compile(
    r"(?:(?P<merchant>Comercio)|(?P<place>Ciudad y pais)|(?P<date>Fecha(?: y hora)?)"
    r"|(?P<card>VISA|MASTER(?:CARD)?|MC|AMEX|AMERICAN EXPRESS|DINERS(?: CLUB)?|TARJETA)"
    r"|(?P<authorization>(?:Numero de )?Autorizacion)|(?P<reference>(?:Numero de )?Referencia)"
    r"|(?P<type>Tipo de transaccion)|(?P<amount>Monto))\s*:\s*",
    re.I,
)
_PURCHASE = ("COMPRA",)
_REFUND = ("DEVOLUCION", "REEMBOLSO")
_WITHDRAWAL = ("RETIRO", "ADELANTO DE EFECTIVO", "AVANCE DE EFECTIVO")

_TRANSFER_OUT = re.compile(
    r"la transferencia se realizo el dia (?P<when>.{8,60}?);?\s*por un monto de (?P<money>.{1,40}?)"
    r",?\s+por concepto",
    re.I,
)
_TRANSFER_REFERENCE = re.compile(r"numero de referencia es:?\s*(?P<ref>[A-Za-z0-9-]+)", re.I)
_SINPE_IN = re.compile(
    r"recibio una transferencia sinpe(?: movil)? con el numero de referencia:?\s*"
    r"(?P<ref>[A-Za-z0-9-]+)",
    re.I,
)
_SINPE_MONEY = re.compile(r"por un monto de (?P<money>.{1,40}?),?\s+por concepto", re.I)
_SINPE_WHEN = re.compile(r"se aplico correctamente el dia (?P<when>.{8,40})", re.I)
_SUBJECT = re.compile(r"transaccion\s+(?P<merchant>.+?)\s+\d{1,2}-\d{1,2}-\d{4}", re.I)
_CARDLESS = re.compile(r"\bretiro sin tarjeta\b", re.I)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if "transferencia" in body.lower:
        if (match := _TRANSFER_OUT.search(text)) is not None:
            return _transfer_out(body, match, mail)
        if (match := _SINPE_IN.search(text)) is not None:
            return _sinpe_in(body, match, mail)
    fields = read_fields(body, _LABELS, inline=True)
    if not fields.keys() & {"amount", "merchant", "type", "authorization"}:
        return None
    return _card_notice(body, fields, mail)


def _card_notice(body: Body, fields: dict[str, list[str]], mail: Mail) -> Outcome:
    subject = mail.folded_subject
    cardless = bool(
        _CARDLESS.search(subject) or ("retiro" in body.lower and _CARDLESS.search(body.flat_folded))
    )
    kind = _kind(first(fields, "type"), cardless)
    if kind is None:
        return unparsed(UNKNOWN_TYPE, CODE)
    # The body's date is the transaction's; the subject's and the Date header's are
    # when the email went out, good enough only when the body has none.
    when = (
        parse_datetime(first(fields, "date") or "")
        or parse_datetime(subject)
        or to_costa_rica(mail.sent_at)
    )
    merchant = first(fields, "merchant")
    if merchant is None and kind != "withdrawal":
        found = _SUBJECT.search(subject)
        if found is not None:
            merchant = mail.bare_subject[found.start("merchant") : found.end("merchant")]
    card = card_last4(first(fields, "card")) or (None if cardless else card_last4(body.flat))
    return transaction(
        CODE,
        kind,
        money_of(fields.get("amount")),
        when,
        merchant=merchant,
        card=card,
        authorization=token(first(fields, "authorization")),
        reference=token(first(fields, "reference")),
    )


def _kind(type_value: str | None, cardless: bool) -> str | None:
    written = fold(type_value or "").upper()
    if written.startswith(_PURCHASE):
        return "purchase"
    if written.startswith(_REFUND):
        return "refund"
    if written.startswith(_WITHDRAWAL) or (not written and cardless):
        return "withdrawal"
    return None  # a type we do not know, or none at all: the direction would be a guess


def _transfer_out(body: Body, match: re.Match[str], mail: Mail) -> Outcome:
    reference = _TRANSFER_REFERENCE.search(body.flat_folded)
    return transaction(
        CODE,
        "transfer_out",
        find_money(match.group("money")),
        parse_datetime(match.group("when")) or to_costa_rica(mail.sent_at),
        reference=reference.group("ref") if reference else None,
    )


def _sinpe_in(body: Body, match: re.Match[str], mail: Mail) -> Outcome:
    text = body.flat_folded
    money = _SINPE_MONEY.search(text, match.end())
    when = _SINPE_WHEN.search(text, match.end())
    return transaction(
        CODE,
        "transfer_in",
        find_money(money.group("money")) if money else None,
        (parse_datetime(when.group("when")) if when else None) or to_costa_rica(mail.sent_at),
        reference=match.group("ref"),
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="BAC San José",
        sender_domains=(
            "notificacionesbaccr.com",
            "baccredomatic.com",
            "baccredomatic.cr",
            "notificacionesbac.com",
        ),
        marketing_domains=("info.baccredomatic.net",),
        parse=parse,
    )
)
