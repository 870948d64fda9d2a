"""Bank notification emails in, one Outcome per email out. Flask-free.

The contract the rest of the app codes against: Transaction, Outcome, parse_message,
bank_sender_domains, iter_messages, the BANKS registry and PARSER_VERSION.
"""

from .core import parse_message
from .mbox import iter_messages
from .model import PARSER_VERSION, Outcome, Transaction
from .registry import BANKS, BankParser, bank_sender_domains, load_banks

load_banks()

__all__ = [
    "BANKS",
    "PARSER_VERSION",
    "BankParser",
    "Outcome",
    "Transaction",
    "bank_sender_domains",
    "iter_messages",
    "parse_message",
]
