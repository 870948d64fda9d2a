"""What every mail source shares: the error the sync engine handles, a scan result, the protocol."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Self

ErrorKind = Literal["authentication", "network", "tls", "folder", "server"]


class MailboxError(Exception):
    """A mailbox could not be read; ``message`` is written for the user, in Spanish.

    ``transient`` errors (timeouts, dropped connections, a server asking to slow down) are
    worth retrying with backoff; ``retry_after`` is the delay in seconds the server asked
    for, when it named one. The others (wrong password, unknown host, missing folder) fail
    the same way until the user changes something. ``unreachable`` errors (the server
    refused the connection) are a wrong server or port on first contact, and a restart once
    the server has answered: only the caller knows which. ``fingerprint`` is the SHA-256 of
    a certificate the user may choose to trust (an unknown one, or a pinned one replaced).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        transient: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.transient = transient
        self.unreachable = unreachable
        self.retry_after = retry_after
        self.fingerprint = fingerprint

    def __reduce__(self) -> tuple[type[MailboxError], tuple]:
        # Keeps the attributes when the error crosses a process boundary (RQ, multiprocessing).
        return type(self), (
            self.kind,
            self.message,
            self.transient,
            self.unreachable,
            self.retry_after,
            self.fingerprint,
        )

    def __repr__(self) -> str:
        return (
            f"MailboxError({self.kind!r}, {self.message!r}, transient={self.transient}, "
            f"unreachable={self.unreachable}, retry_after={self.retry_after})"
        )


@dataclass(frozen=True)
class Scan:
    """The candidate messages of one sync.

    ``uids`` are newer than the checkpoint, ascending. ``reset`` means the checkpoint no
    longer applies (UIDVALIDITY changed, or a local file shrank), so ``uids`` covers the
    whole folder and the caller should start its checkpoint over from ``uidvalidity``.
    """

    uidvalidity: int
    uids: list[int]
    reset: bool


class MailSource(Protocol):
    """An open, read-only mailbox folder; close it, preferably with ``with``."""

    def scan(self, uidvalidity: int | None, last_uid: int, senders: Sequence[str]) -> Scan:
        """List messages from ``senders`` newer than the checkpoint ``(uidvalidity, last_uid)``.

        A sender matches as a case-insensitive substring of the From header, so
        ``"baccredomatic.com"`` and ``"alerta@baccredomatic.com"`` both work; no senders
        means every message. ``uidvalidity=None`` means there is no checkpoint yet.
        """
        ...

    def fetch(self, uids: Sequence[int], batch_size: int = 200) -> Iterator[tuple[int, bytes]]:
        """Yield ``(uid, raw RFC 5322 bytes)`` in the order given, without marking mail read.

        Messages deleted since the scan are skipped.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def sender_matches(from_header: str, senders: Sequence[str]) -> bool:
    """Match like IMAP ``SEARCH FROM``: a case-insensitive substring of the header."""
    if not senders:
        return True
    header = from_header.casefold()
    return any(sender.casefold() in header for sender in senders)
