"""Connect to an IMAP server, telling a security mode that does not fit the port in seconds.

Two mistakes look like a dead server otherwise. Plain IMAP (or STARTTLS) against an
implicit-TLS port: the server waits for our TLS ClientHello and we wait for its greeting,
until the timeout, on every retry. SSL/TLS against a plain port: the server's "* OK"
greeting arrives where the TLS handshake expected a record. A plain server greets at once,
so silence for a couple of seconds is worth one TLS handshake on the side to tell.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from imapclient import IMAPClient, SocketTimeout

from .base import MailboxError
from .imap_certs import context

if TYPE_CHECKING:
    from .imap import ImapSettings

GREETING_WAIT = 2.0  # seconds of silence before asking whether the port speaks TLS
PROBE_TIMEOUT = 2.0


def connect(settings: ImapSettings) -> IMAPClient:
    """A connected client that has read the greeting (before STARTTLS and LOGIN)."""
    s = settings
    if s.security == "ssl":
        try:
            return IMAPClient(s.host, s.port, ssl=True, ssl_context=context(s), timeout=s.timeout)
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as exc:
            if greets_in_plain_text(s.host, s.port, min(s.timeout, PROBE_TIMEOUT)):
                message = (
                    f"{s.host}:{s.port} respondió sin cifrado: elija «STARTTLS» en "
                    "Seguridad, o «SSL/TLS» con el puerto 993."
                )
                raise MailboxError("tls", message) from exc
            raise
    wait = min(s.timeout, GREETING_WAIT)
    try:
        return IMAPClient(s.host, s.port, ssl=False, timeout=SocketTimeout(wait, s.timeout))
    except TimeoutError as exc:
        if speaks_tls(s.host, s.port, min(s.timeout, PROBE_TIMEOUT)):
            message = f"El puerto {s.port} espera SSL/TLS: elija «SSL/TLS» en Seguridad."
            raise MailboxError("tls", message) from exc
        if wait >= s.timeout:
            raise
    # A slow server, not a TLS one: it gets the whole timeout to greet.
    return IMAPClient(s.host, s.port, ssl=False, timeout=s.timeout)


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether the port answers a TLS ClientHello (any certificate, any alert)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except ssl.SSLError as exc:
        # An alert is a TLS server refusing this handshake (a protocol version, say).
        return "ALERT" in (exc.reason or "")
    except (OSError, UnicodeError):
        return False


def greets_in_plain_text(host: str, port: int, timeout: float) -> bool:
    """Whether the port sends a plain IMAP greeting without being asked."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return sock.recv(16).startswith((b"* OK", b"* PREAUTH", b"* BYE"))
    except (OSError, UnicodeError):
        return False
