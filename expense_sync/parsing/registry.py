"""The registry of bank parsers. Each module in parsing/banks/ registers one on import."""

from __future__ import annotations

import importlib
import pkgutil
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


def bank_sender_domains() -> list[str]:
    """Every sender domain a registered bank uses, for an IMAP SEARCH FROM prefilter."""
    domains: list[str] = []
    for parser in load_banks().values():
        domains.extend(d for d in parser.sender_domains if d not in domains)
    return domains
