"""Multimoney: its senders are known, its templates are not, so its notices are unparsed.

No public sample shows a Multimoney notice whole. Knowing the senders keeps their mail
with an amount visible as unparsed instead of dropping it as "not from a bank".
"""

from __future__ import annotations

from ..mime import Mail
from ..model import Outcome
from ..registry import BankParser, register

CODE = "multimoney"


def parse(mail: Mail) -> Outcome | None:
    return None  # no template known: the outcome rule decides


PARSER = register(
    BankParser(
        code=CODE,
        name="Multimoney",
        sender_domains=("multimoney.com",),
        names=r"\bmultimoney\b",
        order=9,
        parse=parse,
    )
)
