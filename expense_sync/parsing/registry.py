"""The registry of bank parsers. Each module in parsing/banks/ registers one on import."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

from .mime import Mail
from .model import Outcome


@dataclass(frozen=True)
class BankParser:
    code: str
    name: str
    sender_domains: tuple[str, ...]
    parse: Callable[[Mail], Outcome | None]
    # Senders that belong to the bank but never carry notifications (promotions).
    marketing_domains: tuple[str, ...] = ()
    # How the bank's own templates name it (folded text), to read a notice pasted into a
    # forward that lost its header block.
    names: str = ""
    # Where the bank comes in lists people choose from: the biggest banks first.
    order: int = 100

    def sends_from(self, address: str | None) -> bool:
        return _matches(address, self.sender_domains)

    def markets_from(self, address: str | None) -> bool:
        return _matches(address, self.marketing_domains)


BANKS: dict[str, BankParser] = {}


def register(parser: BankParser) -> BankParser:
    BANKS[parser.code] = parser
    bank_for_sender.cache_clear()
    return parser


def _matches(address: str | None, fragments: tuple[str, ...]) -> bool:
    """An address matches a domain (or a subdomain of it), or an exact address."""
    if not address or "@" not in address:
        return False
    domain = address.rsplit("@", 1)[1]
    for fragment in fragments:
        if "@" in fragment:
            if address == fragment:
                return True
        elif domain == fragment or domain.endswith("." + fragment):
            return True
    return False


def load_banks() -> dict[str, BankParser]:
    """The registry, filled on first use: adding a bank is adding a module to banks/."""
    _import_bank_modules()
    return BANKS


@cache
def _import_bank_modules() -> None:
    from . import banks

    for module in sorted(pkgutil.iter_modules(banks.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{banks.__name__}.{module.name}")


@lru_cache(maxsize=4096)  # a mailbox has a handful of distinct senders
def bank_for_sender(address: str | None) -> BankParser | None:
    """The bank whose notification or marketing senders include this address."""
    for parser in load_banks().values():
        if parser.sends_from(address) or parser.markets_from(address):
            return parser
    return None


def banks_named_in(mail: Mail) -> list[BankParser]:
    """The banks a message's text names, the first named first."""
    found: dict[str, tuple[int, BankParser]] = {}
    for body in mail.bodies():
        for parser in load_banks().values():
            if parser.names and parser.code not in found:
                match = _names_pattern(parser.names).search(body.flat_folded)
                if match is not None:
                    found[parser.code] = (match.start(), parser)
    return [parser for _, parser in sorted(found.values(), key=lambda item: item[0])]


@cache
def _names_pattern(source: str) -> re.Pattern[str]:
    return re.compile(source, re.I)


def bank_choices() -> list[tuple[str, str]]:
    """(code, name) of every bank, in the order people look for them."""
    ordered = sorted(load_banks().values(), key=lambda parser: (parser.order, parser.name))
    return [(parser.code, parser.name) for parser in ordered]


def bank_sender_domains() -> list[str]:
    """Every sender domain a registered bank uses, for an IMAP SEARCH FROM prefilter."""
    domains: list[str] = []
    for parser in load_banks().values():
        domains.extend(d for d in parser.sender_domains if d not in domains)
    return domains
