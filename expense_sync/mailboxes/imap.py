"""Read one IMAP folder with IMAPClient: read-only, bank senders only, never marking mail read."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from imapclient import IMAPClient

from .base import Scan
from .imap_certs import check_pin, context
from .imap_connect import connect
from .imap_errors import Stage, translate
from .imap_search import search_senders


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str  # "ssl" (implicit TLS, usually 993) | "starttls" (usually 143) | "none"
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    timeout: float = 30.0
    access_token: str | None = field(default=None, repr=False)  # OAuth2: XOAUTH2, no password
    tls_fingerprint: str | None = None  # the one certificate trusted, instead of the CAs

    def __post_init__(self) -> None:
        if self.security not in ("ssl", "starttls", "none"):
            raise ValueError(f"unknown IMAP security {self.security!r}")


class ImapSource:
    """One folder of one IMAP account, selected read-only (EXAMINE)."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.uidvalidity = 0
        self.message_count = 0
        self._client: IMAPClient | None = None

    def open(self) -> ImapSource:
        """Connect, log in and select the folder; raises MailboxError."""
        if self._client is not None:
            return self
        s = self.settings
        with _translated(s, "connect"):
            client = connect(s)
        try:
            if s.security == "starttls":
                with _translated(s, "connect"):
                    client.starttls(context(s))
            if s.security != "none":
                check_pin(client, s)
            with _translated(s, "login"):
                if s.access_token:
                    client.oauth2_login(s.username, s.access_token)
                else:
                    client.login(s.username, s.password)
            with _translated(s, "select"):
                status = client.select_folder(s.folder, readonly=True)
        except BaseException:
            _shutdown(client)
            raise
        self._client = client
        self.uidvalidity = int(status[b"UIDVALIDITY"])
        self.message_count = int(status[b"EXISTS"])
        return self

    def close(self) -> None:
        if self._client is not None:
            _shutdown(self._client, logout=True)
            self._client = None

    def __enter__(self) -> ImapSource:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def scan(self, uidvalidity: int | None, last_uid: int, senders: Sequence[str]) -> Scan:
        """List bank mail newer than the checkpoint, searching on the server."""
        client = self._open_client()
        incremental = uidvalidity == self.uidvalidity
        since = last_uid if incremental else 0
        with _translated(self.settings, "session"):
            uids = search_senders(client, since, senders)
        reset = uidvalidity is not None and not incremental
        return Scan(uidvalidity=self.uidvalidity, uids=uids, reset=reset)

    def fetch(self, uids: Sequence[int], batch_size: int = 200) -> Iterator[tuple[int, bytes]]:
        """Yield raw messages in batches; BODY.PEEK[] leaves \\Seen untouched."""
        client = self._open_client()
        for start in range(0, len(uids), batch_size):
            batch = list(uids[start : start + batch_size])
            with _translated(self.settings, "session"):
                response = client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                if uid in response:  # absent when deleted since the scan
                    yield uid, response[uid][b"BODY[]"]

    def _open_client(self) -> IMAPClient:
        if self._client is None:
            raise RuntimeError("the IMAP source is not open; use it in a with block")
        return self._client


def check_connection(settings: ImapSettings) -> int:
    """Log in for real, select the folder read-only and return its message count."""
    with ImapSource(settings) as source:
        return source.message_count


def _shutdown(client: IMAPClient, logout: bool = False) -> None:
    # Errors here mean the connection is already gone; closing the socket is all that is left.
    if logout:
        try:
            client.logout()
            return
        except (imaplib.IMAP4.error, OSError):
            pass
    try:
        client.shutdown()
    except (imaplib.IMAP4.error, OSError):
        pass


@contextmanager
def _translated(settings: ImapSettings, stage: Stage) -> Iterator[None]:
    try:
        yield
    except (imaplib.IMAP4.error, OSError, UnicodeError) as exc:
        raise translate(exc, settings, stage) from exc
