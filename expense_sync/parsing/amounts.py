"""Amounts and currencies. A wrong amount is the worst bug here: anything ambiguous is None."""

from __future__ import annotations

import re
from decimal import Decimal

from .text import fold

CURRENCY_WORDS = {
    "crc": "CRC",
    "col": "CRC",  # MUCAP's code for colones
    "colon": "CRC",
    "colones": "CRC",
    "₡": "CRC",
    "¢": "CRC",
    "usd": "USD",
    "us$": "USD",
    "$": "USD",
    "dolar": "USD",
    "dolares": "USD",
}
_CURRENCY = r"(?<![a-z])(?:crc|col|colon(?:es)?|usd|us\$|dolar(?:es)?)(?![a-z])|[$₡¢]"
# Other currencies' codes next to a number: a purchase in córdobas is neither CRC nor USD.
_FOREIGN = re.compile(
    r"(?<![A-Za-z])(?:NIC|EUR|GTQ|HNL|PAB|MXN|COP|GBP|CAD|BRL|ARS|CLP|PEN|DOP)\s*:?\s*[0-9.,]"
    r"|[0-9]\s*(?:NIC|EUR|GTQ|HNL|PAB|MXN|COP|GBP|CAD|BRL|ARS|CLP|PEN|DOP)(?![A-Za-z])|€"
)
# A number may group thousands with spaces too (es-CR formatting: "₡1 234,50"), so digits
# after a space belong to it; parse_amount then accepts only whole groups of three. Were
# the space a boundary, "₡1 234,50" would read as one colón.
_DIGITS = r"[0-9](?:[0-9.,]*[0-9])?"
_NUMBER = rf"(?<![0-9.,])(?:{_DIGITS}(?: {_DIGITS})*|[.,][0-9]{{2}})(?![0-9])"
_MONEY = re.compile(
    rf"(?P<cur1>{_CURRENCY})\s*:?\s*(?P<num1>{_NUMBER})|(?P<num2>{_NUMBER})\s*(?P<cur2>{_CURRENCY})",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(_NUMBER)
_LEADING = re.compile(
    rf"\s*(?:(?P<cur1>{_CURRENCY})\s*:?\s*)?(?P<num>{_NUMBER})(?:\s*(?P<cur2>{_CURRENCY}))?",
    re.IGNORECASE,
)
_MAX_DIGITS = 13  # trillions of colones: more digits than that is not a card purchase


def parse_amount(token: str) -> Decimal | None:
    """The exact value of "72,000.00", "2.500,00", "139,763", "15" or ".00"; else None.

    The last "." or "," followed by exactly two digits is the decimal separator; every
    other separator (".", "," or a space) groups thousands, and then every group must have
    three digits.
    """
    token = token.strip()
    if not token or not token.isascii() or not token[-1].isdigit():
        return None
    last = max(token.rfind("."), token.rfind(","))
    if last >= 0 and len(token) - last == 3:
        whole, cents, decimal_sep = token[:last], token[last + 1 :], token[last]
    else:
        whole, cents, decimal_sep = token, "00", ""
    if not cents.isdigit():
        return None
    separators = {ch for ch in whole if ch in "., "}
    if len(separators) > 1 or decimal_sep in separators:
        return None
    if separators:
        groups = whole.split(separators.pop())
        if not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:]):
            return None
        whole = "".join(groups)
    whole = whole or "0"
    if not whole.isdigit() or len(whole) > _MAX_DIGITS:
        return None
    return Decimal(f"{whole}.{cents}")


def currency_code(word: str) -> str | None:
    """ISO code of a currency code, symbol or word as written ("Dólares" -> "USD")."""
    return CURRENCY_WORDS.get(fold(word).strip().lower())


def find_money(text: str, default_currency: str | None = None) -> tuple[Decimal, str] | None:
    """The first amount with its currency in a text; the currency may come from a label.

    A number next to a currency that does not read cleanly gives None rather than
    falling through to some other number.
    """
    folded = fold(text)
    match = _MONEY.search(folded)
    if _FOREIGN.search(folded, 0, match.start() if match else len(folded)):
        return None  # the first amount is in another currency: never read a later one
    if match is not None:
        number = match.group("num1") or match.group("num2")
        currency = currency_code(match.group("cur1") or match.group("cur2"))
        amount = parse_amount(number)
        if amount is None or currency is None:
            return None
        if default_currency and currency != default_currency:
            return None
        return amount, currency
    if default_currency:
        bare = _BARE_NUMBER.search(text)
        amount = parse_amount(bare.group()) if bare else None
        if amount is not None:
            return amount, default_currency
    return None


def value_money(text: str, default_currency: str | None = None) -> tuple[Decimal, str] | None:
    """The amount a labelled value starts with, its currency there or from the label.

    A value runs to the next label, so the last one of a notice may run on into a footer
    ("Monto: 8640.00 Gane hasta ₡500.000 en premios"): what it starts with is the amount,
    never a later one. A value that starts with something else is searched like any text.
    """
    folded = fold(text)
    match = _LEADING.match(folded)
    if match is None:
        return find_money(text, default_currency)
    written = match.group("cur1") or match.group("cur2")
    currency = currency_code(written) if written else default_currency
    amount = parse_amount(match.group("num"))
    if amount is None or currency is None:
        return None
    if default_currency and currency != default_currency:
        return None
    return amount, currency


def has_money(text: str) -> bool:
    """Whether a text shows an amount next to a currency, readable or not."""
    return _MONEY.search(fold(text)) is not None
