"""What a generic reader makes of a notice no template read: a suggestion for a person.

The bank templates never guess (a wrong amount is the worst bug). A person deciding what
an unreadable notice says is helped by a first reading they confirm or correct: the first
amount with its currency, the first date, a labelled merchant and the kind its words name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .amounts import find_money
from .dates import parse_datetime, to_costa_rica
from .text import fold

# A merchant's label, then its value on the same line ("Comercio: HOTEL PLAYA", or a
# table row's "Comercio HOTEL PLAYA") or alone on the next line ("Comercio:").
_MERCHANT = re.compile(
    r"^\s*(?:nombre del )?(?:comercio|establecimiento|lugar|negocio|beneficiario|destinatario"
    r"|detalle|concepto|descripcion)(?: de (?:la |las )?(?:transacci(?:on|ones)|compras?))?"
    r"(?:\s*:\s*|\s+(?=\S.{0,60}$)|\s*$)(?P<value>.*)$",
    re.I,
)
_KINDS = (
    ("withdrawal", re.compile(r"\bretiro", re.I)),
    ("refund", re.compile(r"\b(?:devolucion|reembolso|reversion)", re.I)),
    (
        "transfer_in",
        re.compile(
            r"\b(?:recibi(?:d[oa]|o)\b|acreditad[oa]|a su favor|le (?:han )?"
            r"(?:enviado|transferido))",
            re.I,
        ),
    ),
    ("transfer_out", re.compile(r"\b(?:transferencia|sinpe)", re.I)),
)


@dataclass(frozen=True)
class Guess:
    amount: Decimal | None
    currency: str | None
    occurred_at: datetime | None
    merchant: str | None
    kind: str


def guess(subject: str | None, text: str | None, sent_at: datetime | None) -> Guess:
    """A first reading of a notice, every part of it possibly wrong: the user confirms it."""
    subject, text = subject or "", text or ""
    money = find_money(subject) or next(
        (found for line in text.splitlines() if (found := find_money(line))), None
    )
    folded = fold(f"{subject}\n{text}")
    kind = next((kind for kind, words in _KINDS if words.search(folded)), "purchase")
    return Guess(
        amount=money[0] if money else None,
        currency=money[1] if money else None,
        occurred_at=parse_datetime(text) or to_costa_rica(sent_at),
        merchant=_merchant(text.splitlines()),
        kind=kind,
    )


def _merchant(lines: list[str]) -> str | None:
    """The value of the first merchant label, on its line or the next one."""
    for number, line in enumerate(lines):
        match = _MERCHANT.match(fold(line))
        if match is None:
            continue
        # fold() keeps positions (one character for one): slice the original, accents kept.
        value = line[match.start("value") :].strip()
        if not value and number + 1 < len(lines):
            value = lines[number + 1].strip()
        if value:
            return value[:255]
    return None
