"""Mail sources behind one small interface: IMAP folders, mbox files and Maildirs.

    with open_source("imap", imap=settings) as source:
        scan = source.scan(account.uidvalidity, account.last_uid, bank.senders)
        for uid, raw in source.fetch(scan.uids):
            ...

Every failure is a MailboxError with a kind, a transient flag and a Spanish message.
"""

from __future__ import annotations

from .base import MailboxError, MailSource, Scan
from .imap import ImapSettings, ImapSource, check_connection
from .local import MaildirSource, MboxSource

__all__ = [
    "ImapSettings",
    "MailSource",
    "MailboxError",
    "Scan",
    "check_connection",
    "open_source",
]


def open_source(
    kind: str, *, imap: ImapSettings | None = None, path: str | None = None
) -> MailSource:
    """Open a source of kind "imap" (needs ``imap``) or "mbox"/"maildir" (need ``path``).

    The source is open on return (errors raise MailboxError here); close it with ``with``.
    """
    if kind == "imap":
        if imap is None:
            raise ValueError("an IMAP source needs ImapSettings")
        return ImapSource(imap).open()
    if kind in ("mbox", "maildir"):
        if not path:
            raise ValueError(f"a {kind} source needs a path")
        return (MboxSource if kind == "mbox" else MaildirSource)(path).open()
    raise ValueError(f"unknown mail source kind {kind!r}")
