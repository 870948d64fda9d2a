"""Banco Popular: debit-card sentences, credit-card sentences, BAC-style purchase receipts."""

from __future__ import annotations

import re

from ..amounts import currency_code, find_money
from ..dates import parse_datetime, to_costa_rica
from ..fields import first, money_of, read_bodies, read_fields, token, transaction
from ..mime import Mail
from ..model import UNKNOWN_TYPE, Outcome, unparsed
from ..registry import BankParser, register
from ..text import Body, fold
from .bac import read_card_notice

CODE = "popular"

# Debit card: "Su Tarjeta de Débito BP terminada en 4402 fue utilizada en <MERCHANT>
# SAN JOSE     CR por 2750.00 CRC . Si no reconoce esta transacción, ..." The merchant is
# padded to fixed columns (cleaning collapses the spaces) and the body has no date.
# An amount as these sentences write it: "2750.00 CRC", "18,200.00 Colones", "₡ 5,000".
_MONEY = r"(?:[₡¢$]\s*|(?:CRC|USD)\s+)?[0-9][0-9.,]*(?:\s*(?:CRC|USD|colones|dolares)\b)?"
_DEBIT = re.compile(
    rf"\bterminada en (?P<last4>\d{{4}}) fue utilizada en (?P<merchant>.+?)\s+por\s+"
    rf"(?P<money>{_MONEY})",
    re.I,
)
# Credit card: "El Banco Popular le informa de la transacción realizada en <MERCHANT> el
# 14/07/2026 a las 10:28, con la tarjeta VISA INTERNACIONAL A 4402, Auth # 339102, Ref #
# 618400012345, por 18,200.00 Colones".
_CREDIT = re.compile(
    r"\ble informa de la transaccion realizada en (?P<merchant>.+?)\s+el\s+"
    r"(?P<when>\d{1,2}/\d{1,2}/\d{4}(?:\s+a las\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s*[ap]\.?\s?m\b\.?)?)?),?\s+con la tarjeta\b[^,]*?(?P<last4>\d{4}),"
    r"(?:\s*Auth\s*#?\s*(?P<authorization>[A-Z0-9]+),)?(?:\s*Ref\s*#?\s*(?P<reference>[A-Z0-9]+),)?"
    rf"\s*por\s+(?P<money>{_MONEY})",
    re.I,
)
# "Comprobante de transacción SINPE" (BPNotifica@bpdc.fi.cr): "Label: value" rows under
# "Transacción SINPE": "Tipo de Movimiento: Debito" (sent) or "Crédito" (received), "Monto
# Enviado: 15,000.00" or "Monto Neto: 22,750.00", "Moneda: CRC", "Fecha: 20/10/2026
# 09:05:58 PM", "Estado de la Transacción: Aplicada", "Referencia SINPE: ...".
_SINPE_LABELS = re.compile(
    r"(?:(?P<service>Servicio SINPE)|(?P<movement>Tipo de Movimiento)"
    r"|(?P<amount>Monto (?:Enviado|Neto|Recibido|Transferido))|(?P<currency>Moneda)"
    r"|(?P<date>Fecha)|(?P<status>Estado de la Transaccion)|(?P<reference>Referencia SINPE)"
    r"|(?P<receipt>Numero Comprobante)|(?P<origin>Nombre Origen)|(?P<target>Nombre Destino)"
    r"|(?P<description>Descripcion))\s*:\s*",
    re.I,
)
_MOVEMENTS = {"debito": "transfer_out", "credito": "transfer_in"}


def parse(mail: Mail) -> Outcome | None:
    return read_bodies(mail, _read)


def _read(body: Body, mail: Mail) -> Outcome | None:
    text = body.flat_folded
    if (match := _DEBIT.search(text)) is not None:
        return transaction(
            CODE,
            "purchase",
            find_money(match.group("money")),
            to_costa_rica(mail.sent_at),
            merchant=body.flat[match.start("merchant") : match.end("merchant")],
            card=match.group("last4"),
        )
    if (match := _CREDIT.search(text)) is not None:
        return transaction(
            CODE,
            "purchase",
            find_money(match.group("money")),
            parse_datetime(match.group("when")) or to_costa_rica(mail.sent_at),
            merchant=body.flat[match.start("merchant") : match.end("merchant")],
            card=match.group("last4"),
            authorization=match.group("authorization"),
            reference=match.group("reference"),
        )
    if "sinpe" in body.lower and "tipo de movimiento" in body.lower:
        return _sinpe_receipt(body, mail)
    # "Comprobante de Compra" with BAC's labels: the bank is the sender, not the labels.
    return read_card_notice(body, mail, CODE)


def _sinpe_receipt(body: Body, mail: Mail) -> Outcome | None:
    fields = read_fields(body, _SINPE_LABELS, anywhere=True)
    kind = _MOVEMENTS.get(fold(first(fields, "movement") or "").strip().lower())
    if kind is None or "amount" not in fields:
        return None
    status = fold(first(fields, "status") or "aplicada").strip().lower()
    if not status.startswith("aplicad"):
        return unparsed(UNKNOWN_TYPE, CODE)  # not an applied movement: which state is it in?
    return transaction(
        CODE,
        kind,
        money_of(fields["amount"], currency_code(first(fields, "currency") or "CRC")),
        parse_datetime(first(fields, "date") or "") or to_costa_rica(mail.sent_at),
        reference=token(first(fields, "reference")),
    )


PARSER = register(
    BankParser(
        code=CODE,
        name="Banco Popular",
        sender_domains=(
            "bancopopularinforma.fi.cr",
            "bancopopular.fi.cr",
            "bpdc.fi.cr",
            "bp.fi.cr",
        ),
        marketing_domains=("mercadeo@bancopopularinforma.fi.cr",),
        names=r"\bbanco popular\b|\btarjeta de debito BP\b",
        order=4,
        parse=parse,
    )
)
