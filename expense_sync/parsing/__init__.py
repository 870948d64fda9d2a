"""Bank notification emails in, one Outcome per email out. Flask-free.

The contract the rest of the app codes against: Transaction, Outcome, parse_message,
bank_sender_domains, iter_messages and the BANKS registry.
"""

from .core import parse_message
from .mbox import iter_messages
from .model import Outcome, Transaction
from .registry import BANKS, BankParser, bank_sender_domains, load_banks

load_banks()

__all__ = [
    "BANKS",
    "BankParser",
    "Outcome",
    "Transaction",
    "bank_sender_domains",
    "iter_messages",
    "parse_message",
]
