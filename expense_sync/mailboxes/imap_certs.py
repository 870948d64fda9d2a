"""Trusting one server's own certificate: an account may pin its SHA-256 instead of a CA.

A private server with a self-signed certificate (or one from the organisation's own CA)
could only be trusted machine-wide. With a pin the handshake skips the CA check and the
certificate presented must be exactly the pinned one; any other one, however valid its
chain, is refused, because a changed certificate is what an interception looks like.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
from typing import TYPE_CHECKING

from imapclient import IMAPClient

from .base import MailboxError

if TYPE_CHECKING:
    from .imap import ImapSettings

# OpenSSL's verify codes for a chain that ends nowhere we trust: self-signed, unknown issuer.
UNTRUSTED_CODES = {18, 19, 20, 21}
PEEK_TIMEOUT = 5.0


def fingerprint(der: bytes) -> str:
    """The SHA-256 of a DER certificate, as 64 lowercase hex digits."""
    return hashlib.sha256(der).hexdigest()


def shown(pin: str) -> str:
    """A fingerprint the way certificate viewers show it: AB:CD:..."""
    return ":".join(pin[i : i + 2] for i in range(0, len(pin), 2)).upper()


def context(settings: ImapSettings) -> ssl.SSLContext | None:
    """The TLS context for a pinned account (any chain, checked after); None: the system's CAs."""
    if not settings.tls_fingerprint:
        return None
    return _any_certificate()


def check_pin(client: IMAPClient, settings: ImapSettings) -> None:
    """Refuse a connection whose certificate is not the pinned one."""
    if not settings.tls_fingerprint:
        return
    found = fingerprint(client.socket().getpeercert(binary_form=True))
    if not hmac.compare_digest(found, settings.tls_fingerprint):
        message = (
            f"El certificado TLS de {settings.host} cambió desde que usted confió en él. "
            "Si no sabe por qué cambió, no continúe: otro equipo podría estar haciéndose "
            "pasar por su servidor. Si quien lo administra lo renovó, compare la huella "
            "nueva con la que le dé y confíe en el certificado nuevo."
        )
        raise MailboxError("tls", message, fingerprint=found)


def verification_error(exc: ssl.SSLCertVerificationError, settings: ImapSettings) -> MailboxError:
    """A certificate the system does not trust; an unknown issuer comes with its fingerprint."""
    host = settings.host
    if exc.verify_code not in UNTRUSTED_CODES:
        message = f"El certificado TLS de {host} no es válido ({exc.verify_message})."
        return MailboxError("tls", message + " Revise el nombre del servidor.")
    message = (
        f"El certificado TLS de {host} no es de una autoridad reconocida "
        f"({exc.verify_message}). Si el servidor es suyo o de su organización, compare "
        "esta huella SHA-256 con la que le dé quien lo administra y, si coincide, "
        "confíe en este certificado."
    )
    return MailboxError("tls", message, fingerprint=peer_fingerprint(settings))


def peer_fingerprint(settings: ImapSettings) -> str | None:
    """The fingerprint of the certificate the server presents, read without trusting it."""
    s, timeout = settings, min(settings.timeout, PEEK_TIMEOUT)
    try:
        if s.security == "ssl":
            with socket.create_connection((s.host, s.port), timeout=timeout) as sock:
                with _any_certificate().wrap_socket(sock, server_hostname=s.host) as tls:
                    return fingerprint(tls.getpeercert(binary_form=True))
        client = IMAPClient(s.host, s.port, ssl=False, timeout=timeout)
        try:
            client.starttls(_any_certificate())
            return fingerprint(client.socket().getpeercert(binary_form=True))
        finally:
            client.shutdown()
    except Exception:
        # Only an offer to trust is lost; the error it was for is still told.
        return None


def _any_certificate() -> ssl.SSLContext:
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    return tls
