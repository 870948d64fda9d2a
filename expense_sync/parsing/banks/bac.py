"""BAC Credomatic (BAC San José): card notices, transfers, SINPE, cardless withdrawals."""

from __future__ import annotations

import re

from ..amounts import find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import card_last4, first, money_of, read_bodies, read_fields, token, transaction
from ..mime import Mail
from ..model import (
    CARDLESS_CODE,
    DECLINED,
    OWN_CARD_PAYMENT,
    UNKNOWN_TYPE,
    Outcome,
    ignored,
    unparsed,
)
from ..registry import BankParser, register
from ..text import Body, fold

CODE = "bac"

# The card notice's labels. Patterns run on accent-folded text. The card row's label is
# the brand and its value the masked number: "VISA ************4821", "AMEX: ***5448", or
# "MASTER" alone on its line with the number on the next.
_LABELS = re.compile(
    r"(?:(?P<merchant>Comercio)|(?P<place>Ciudad y pais)|(?P<date>Fecha(?: y hora)?)"
    r"|(?P<authorization>(?:Numero de )?Autorizacion)|(?P<reference>(?:Numero de )?Referencia)"
    r"|(?P<type>Tipo de transaccion)|(?P<status>Estado)|(?P<amount>Monto))\s*:\s*"
    r"|(?P<card>\b(?:VISA|MASTER(?:CARD)?|MC|AMEX|AMERICAN EXPRESS|DINERS(?: CLUB)?|TARJETA)"
    r"(?=\s*:?\s*(?:\*{3}|$)))\s*:?\s*",
    re.I,
)
_NOTICE_LABELS = frozenset(("merchant", "authorization", "reference", "type", "amount"))
# QUASI_CASH: bets, lotteries and money-like goods, charged to the card like a purchase.
_PURCHASE = ("COMPRA", "QUASI_CASH", "QUASI CASH", "QUASICASH")
_REFUND = ("DEVOLUCION", "REEMBOLSO")
_WITHDRAWAL = ("RETIRO", "ADELANTO DE EFECTIVO", "AVANCE DE EFECTIVO")
_DECLINED_STATUS = re.compile(r"^(?:rechazad|declinad|denegad|negad)[ao]\b", re.I)

# "La transferencia se realizó el día 03-08-2026 a las 17:12:45 horas; por un monto de
# 3.750,00 CRC, por concepto de: ..." then "El número de referencia es ...".
_TRANSFER_OUT = re.compile(
    r"la transferencia se realizo el dia (?P<when>.{8,60}?);?\s*por un monto de (?P<money>.{1,40}?)"
    r",?\s+por concepto",
    re.I,
)
_TRANSFER_REFERENCE = re.compile(r"numero de referencia es:?\s*(?P<ref>[A-Za-z0-9-]+)", re.I)
# SINPE, old and new wordings. In: "recibió una transferencia SINPE con el número de
# referencia N a su cuenta IBAN ... por un monto de 6,300.00 Colones por concepto ..., la
# cual se aplicó correctamente el día 21/05/2026 a las 09:47 AM." or "... referencia N, el
# día 14/07/2026 a las 03:21:09 p.m. horas, acreditando la cuenta IBAN ... un monto de
# 18,500.00 Colones, por concepto de ...". Out: "la transferencia SINPE con el número de
# referencia N se aplicó con éxito en el ciclo del día 14/07/2026, debitando su cuenta IBAN
# ... un monto de 45.00 Dolares, por concepto de cuota. Día y hora 14/07/2026 10:02:51 p.m."
# A reference may carry a stray space ("...0228588 39"): it is one number.
_SINPE_REF = r"(?P<ref>[A-Za-z0-9-]+(?: [0-9]{1,4}(?=,? (?:a su cuenta|el dia|se aplico)\b))?)"
_SINPE_IN = re.compile(
    rf"recibio una transferencia sinpe(?: movil)? con el numero de referencia:?\s*{_SINPE_REF}",
    re.I,
)
_SINPE_OUT = re.compile(
    rf"la transferencia sinpe(?: movil)? con el numero de referencia:?\s*{_SINPE_REF}"
    r"\s+se aplico con exito\b",
    re.I,
)
_SINPE_MONEY = re.compile(
    r"\bun monto de (?P<money>.{1,40}?)(?:,?\s+por concepto\b|,\s|\.\s|\.?$)", re.I
)
_ON_DAY = re.compile(r"\bel dia\s+(?=\d)", re.I)
_DAY_AND_TIME = re.compile(r"\bdia y hora:?\s+(?=\d)", re.I)
_SUBJECT = re.compile(r"transaccion\s+(?P<merchant>.+?)\s+\d{1,2}-\d{1,2}-\d{4}", re.I)
_CARDLESS = re.compile(r"\bretiro sin tarjeta\b", re.I)
# "Creación de retiro sin tarjeta": a code to withdraw with later. Counting it would count
# the withdrawal that follows twice.
_CARDLESS_CODE_SUBJECT = re.compile(r"^\s*creacion (?:de )?retiro sin tarjeta\b", re.I)
_CARDLESS_CODE = re.compile(
    r"\bcreo un codigo que puede ser utilizado para retirar dinero sin tarjeta\b.{0,160}?"
    r"\bmonto:\s*[0-9]",
    re.I,
)
# "Retiro sin tarjeta retirado": "BAC le informa se retiró éxitosamente dinero sin tarjeta
# ... Monto: 65,000.00 CRC Fecha y hora en qué se retiró el dinero: 12/08/2026 17:40:05".
_CARDLESS_DONE = re.compile(
    r"\bse retiro exitosamente dinero sin tarjeta\b.{0,160}?\bmonto:\s*[0-9]", re.I
)
_CARDLESS_MONEY = re.compile(r"\bmonto:\s*(?P<money>.{1,40}?)(?=\s+fecha\b|$)", re.I)
_CARDLESS_WHEN = re.compile(r"\bfecha y hora en que se retiro el dinero:\s*", re.I)
# "Comprobante de Pago de Tarjeta Tarjeta de Crédito Número: ... Monto del pago: 84,210.50
# CRC": paying one's own card.
_OWN_CARD = re.compile(
    r"\bcomprobante de pago de tarjeta\b.{0,200}?\bmonto del pago:\s*[0-9]", re.I
)


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    lowered = body.lower
    if "pago de tarjeta" in lowered and _OWN_CARD.search(text):
        return ignored(OWN_CARD_PAYMENT, CODE)
    if "sin tarjeta" in lowered or "sin tarjeta" in mail.folded_subject.lower():
        cardless = _cardless(body, mail)
        if cardless is not None:
            return cardless
    if "transferencia" in lowered:
        transfer = _transfer(body, mail)
        if transfer is not None:
            return transfer
    return read_card_notice(body, mail, CODE)


def read_card_notice(body: Body, mail: Mail, bank: str) -> Outcome | None:
    """BAC's labelled card notice, in every layout; Banco Popular sends it too."""
    fields = read_fields(body, _LABELS, anywhere=True)
    subject = mail.folded_subject
    cardless = bool(_CARDLESS.search(subject))
    # Two of the notice's own labels, or the short cardless withdrawal's amount and date.
    if len(fields.keys() & _NOTICE_LABELS) < 2 and not (cardless and "amount" in fields):
        return None
    status = first(fields, "status")
    if status is not None and _DECLINED_STATUS.match(fold(status)):
        return ignored(DECLINED, bank)
    kind = _kind(first(fields, "type"), cardless)
    if kind is None:
        return unparsed(UNKNOWN_TYPE, bank)
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
        bank,
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


def _cardless(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if _CARDLESS_CODE_SUBJECT.search(mail.folded_subject) or _CARDLESS_CODE.search(text):
        return ignored(CARDLESS_CODE, CODE)
    if not _CARDLESS_DONE.search(text):
        return None  # the older short form reads as a labelled notice
    money = _CARDLESS_MONEY.search(text)
    stamp = _CARDLESS_WHEN.search(text)
    return transaction(
        CODE,
        "withdrawal",
        find_money(money.group("money")) if money else None,
        (parse_datetime(text[stamp.end() : stamp.end() + 40]) if stamp else None)
        or to_costa_rica(mail.sent_at),
    )


def _transfer(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if (match := _TRANSFER_OUT.search(text)) is not None:
        reference = _TRANSFER_REFERENCE.search(text)
        return transaction(
            CODE,
            "transfer_out",
            find_money(match.group("money")),
            parse_datetime(match.group("when")) or to_costa_rica(mail.sent_at),
            reference=reference.group("ref") if reference else None,
        )
    incoming = _SINPE_IN.search(text)
    match = incoming or _SINPE_OUT.search(text)
    if match is None:
        return None
    money = _SINPE_MONEY.search(text, match.end())
    # Outgoing: "Día y hora" is the moment; "el día" of the cycle only the date.
    stamp = None if incoming else _DAY_AND_TIME.search(text, match.end())
    stamp = stamp or _ON_DAY.search(text, match.end())
    return transaction(
        CODE,
        "transfer_in" if incoming else "transfer_out",
        find_money(money.group("money")) if money else None,
        (parse_datetime(text[stamp.end() : stamp.end() + 40]) if stamp else None)
        or to_costa_rica(mail.sent_at),
        reference=match.group("ref").replace(" ", ""),
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
            "bacnet.net",
        ),
        marketing_domains=("info.baccredomatic.net",),
        names=r"\bBAC\b|credomatic",
        order=1,
        parse=parse,
    )
)
