"""Turn IMAP, TLS and socket errors into MailboxErrors whose Spanish message says what to fix."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from typing import TYPE_CHECKING, Literal

from imapclient.exceptions import CapabilityError, LoginError

from .base import MailboxError

if TYPE_CHECKING:
    from .imap import ImapSettings

# Where the error happened decides its meaning: a TLS error while connecting is a wrong
# port or mode, the same error later is a dropped connection.
Stage = Literal["connect", "login", "select", "session"]

WRONG_PASSWORD = (
    "Usuario o contraseña incorrectos. Revise la contraseña de aplicación de su correo."
)


def translate(exc: BaseException, settings: ImapSettings, stage: Stage) -> MailboxError:
    """Classify ``exc`` by kind and transience; the message never includes the password."""
    host, where = settings.host, f"{settings.host}:{settings.port}"
    dropped = f"Se perdió la conexión con {where}. Intente de nuevo en unos minutos."
    if isinstance(exc, LoginError):
        text = str(exc).upper()
        if "PRIVACYREQUIRED" in text or "PLAINTEXT" in text:
            message = f"{host} solo acepta contraseñas por una conexión cifrada."
            return MailboxError("tls", message + " Elija SSL o STARTTLS.")
        if "UNAVAILABLE" in text:
            return MailboxError("server", f"{host} no está disponible por ahora.", transient=True)
        return MailboxError("authentication", WRONG_PASSWORD)
    if isinstance(exc, CapabilityError):
        message = f"{where} no ofrece STARTTLS. Pruebe SSL en el puerto 993 o revise el puerto."
        return MailboxError("tls", message)
    if isinstance(exc, imaplib.IMAP4.abort):  # BYE, or EOF in the middle of a command
        return MailboxError("network", dropped, transient=True)
    if isinstance(exc, imaplib.IMAP4.error):
        detail = server_text(exc, settings.password)
        if stage != "select":
            return MailboxError("server", f"El servidor {host} respondió con un error: {detail}")
        folder = settings.folder
        if "NONEXISTENT" in str(exc) or "doesn't exist" in str(exc).lower():
            return MailboxError("folder", f"La carpeta «{folder}» no existe en el buzón.")
        return MailboxError("folder", f"No se pudo abrir la carpeta «{folder}»: {detail}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = f"El certificado TLS de {host} no es válido ({exc.verify_message})."
        return MailboxError("tls", message + " Revise el nombre del servidor.")
    if isinstance(exc, ssl.SSLError) and stage == "connect":
        message = f"El servidor no acepta TLS en {where}. Use SSL con el puerto 993"
        return MailboxError("tls", message + " o STARTTLS con el 143.")
    if isinstance(exc, TimeoutError):
        if stage == "connect":
            message = (f"El servidor {where} no respondió en {_seconds(settings.timeout)}; "
                       "revise el servidor y el puerto.")
        else:
            message = f"El servidor {where} dejó de responder."
        return MailboxError("network", message, transient=True)
    if isinstance(exc, ConnectionRefusedError):
        message = f"No se pudo conectar a {where}: el servidor rechazó la conexión."
        return MailboxError("network", message + " Revise el servidor y el puerto.",
                            unreachable=True)
    if isinstance(exc, UnicodeError):
        if stage == "connect":  # the IDNA codec refuses labels over 63 characters
            shown = host if len(host) <= 60 else host[:60] + "…"
            message = f"«{shown}» no es un nombre de servidor válido. Revise el nombre."
            return MailboxError("network", message)
        if stage == "login":  # imaplib sends LOGIN arguments as ASCII
            message = (f"No se puede iniciar sesión en {host} con tildes, eñes u otros "
                       "caracteres especiales en el usuario o la contraseña.")
            return MailboxError("authentication", message)
        return MailboxError("server", f"El servidor {host} respondió con texto ilegible.")
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:  # the resolver failed, not the name
            message = f"No se pudo resolver «{host}» (falla temporal de DNS)."
            return MailboxError("network", message, transient=True)
        return MailboxError("network", f"No se encontró el servidor «{host}». Revise el nombre.")
    # Resets, broken pipes, TLS EOFs after the handshake, unreachable networks.
    if stage == "connect":
        return MailboxError("network", f"No se pudo conectar a {where}.", transient=True)
    return MailboxError("network", dropped, transient=True)


def _seconds(timeout: float) -> str:
    shown = f"{timeout:g}".replace(".", ",")
    return f"{shown} segundo" if timeout == 1 else f"{shown} segundos"


def server_text(exc: BaseException, password: str) -> str:
    """The server's own words from an imaplib error, minus protocol noise and secrets."""
    text = str(exc)
    quoted = re.search(r"b(['\"])(.*)\1", text)  # imaplib shows some replies as bytes reprs
    if quoted:
        text = quoted.group(2)
    text = re.sub(r"^\w+ failed: ", "", text)  # IMAPClient's "select failed: " prefix
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # response codes such as [CANNOT]
    text = re.sub(r"\s*\(\d+\.\d+ \+ [\d.+ ]+secs\)", "", text)  # Dovecot's timings
    if password:
        text = text.replace(password, "***")
    return text.strip()[:200]
