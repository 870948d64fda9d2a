"""Realistic Costa Rican bank notification emails for the demo, the tests and the benchmarks.

Each generated message comes with the outcome the parser must give for it, in the shape
of a line of the shared samples' expected.jsonl.
"""

from .generator import BANKS, Generated, generate_notifications
from .mailboxes import DEMO_ACCOUNTS, build_demo_mailboxes, write_maildir, write_mbox

__all__ = [
    "BANKS",
    "DEMO_ACCOUNTS",
    "Generated",
    "build_demo_mailboxes",
    "generate_notifications",
    "write_maildir",
    "write_mbox",
]
