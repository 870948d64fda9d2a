"""Turn IMAP, TLS and socket errors into MailboxErrors whose Spanish message says what to fix."""

from __future__ import annotations

import imaplib
import socket
import ssl
from typing import TYPE_CHECKING, Literal

from imapclient.exceptions import CapabilityError, LoginError

from .base import MailboxError
from .imap_certs import verification_error
from .imap_replies import meaning, server_text, suggested_delay

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
    if isinstance(exc, CapabilityError):
        message = f"{where} no ofrece STARTTLS. Pruebe SSL en el puerto 993 o revise el puerto."
        return MailboxError("tls", message)
    if isinstance(exc, imaplib.IMAP4.error):
        refusal = _refusal(exc, settings, stage)
        if refusal is not None:
            return refusal
    if isinstance(exc, LoginError):
        text = str(exc).upper()
        if "PRIVACYREQUIRED" in text or "PLAINTEXT" in text:
            message = f"{host} solo acepta contraseñas por una conexión cifrada."
            return MailboxError("tls", message + " Elija SSL o STARTTLS.")
        return MailboxError("authentication", WRONG_PASSWORD + _said(exc, settings))
    if isinstance(exc, imaplib.IMAP4.abort):  # BYE, or EOF in the middle of a command
        return MailboxError("network", dropped, transient=True)
    if isinstance(exc, imaplib.IMAP4.error):
        detail = server_text(str(exc), settings.password)
        if stage != "select":
            return MailboxError("server", f"El servidor {host} respondió con un error: {detail}")
        return MailboxError("folder", f"No se pudo abrir la carpeta «{settings.folder}»: {detail}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return verification_error(exc, settings)
    if isinstance(exc, ssl.SSLError) and stage == "connect":
        message = f"El servidor no acepta TLS en {where}. Use SSL con el puerto 993"
        return MailboxError("tls", message + " o STARTTLS con el 143.")
    if isinstance(exc, TimeoutError):
        if stage == "connect":
            message = (
                f"El servidor {where} no respondió en {_seconds(settings.timeout)}; "
                "revise el servidor y el puerto."
            )
        else:
            message = f"El servidor {where} dejó de responder."
        return MailboxError("network", message, transient=True)
    if isinstance(exc, ConnectionRefusedError):
        message = f"No se pudo conectar a {where}: el servidor rechazó la conexión."
        return MailboxError(
            "network", message + " Revise el servidor y el puerto.", unreachable=True
        )
    if isinstance(exc, UnicodeError):
        if stage == "connect":  # the IDNA codec refuses labels over 63 characters
            shown = host if len(host) <= 60 else host[:60] + "…"
            message = f"«{shown}» no es un nombre de servidor válido. Revise el nombre."
            return MailboxError("network", message)
        if stage == "login":  # imaplib sends LOGIN arguments as ASCII
            message = (
                f"No se puede iniciar sesión en {host} con tildes, eñes u otros "
                "caracteres especiales en el usuario o la contraseña."
            )
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


# What each permanent refusal means (imap_replies.meaning), and what the user can do.
REFUSALS = {
    "quota": (
        "server",
        "{host} limitó el acceso a este buzón por exceso de uso (cuota de "
        "descarga o de espacio). Intente de nuevo en unas horas o revise su "
        "cuota con su proveedor.",
    ),
    "not_connected": (
        "authentication",
        "{host} aceptó el usuario pero no abrió el buzón: "
        "revise la contraseña y que el acceso IMAP esté "
        "activado en su cuenta.",
    ),
    "web_login": (
        "authentication",
        "{host} bloqueó el inicio de sesión por seguridad: entre a "
        "su correo desde el navegador, confirme que fue usted y "
        "vuelva a intentar, o use una contraseña de aplicación.",
    ),
    "app_password": (
        "authentication",
        "Su cuenta exige una contraseña de aplicación: créela "
        "en la configuración de seguridad de su cuenta de "
        "correo y úsela aquí en lugar de su contraseña.",
    ),
}


def _refusal(exc: imaplib.IMAP4.error, settings: ImapSettings, stage: Stage) -> MailboxError | None:
    """A refusal worded by the server: throttling, quota, folder, login, whatever its wording."""
    host, said = settings.host, _said(exc, settings)
    found = meaning(str(exc))
    if found == "throttled":
        message = f"{host} pidió esperar antes de seguir (demasiadas conexiones o consultas)."
        return MailboxError(
            "server", message + said, transient=True, retry_after=suggested_delay(str(exc))
        )
    if found in REFUSALS:
        kind, message = REFUSALS[found]
        return MailboxError(kind, message.format(host=host) + said)
    if found == "folder" and stage == "select":
        message = f"La carpeta «{settings.folder}» no existe en el buzón."
        return MailboxError("folder", message + said)
    return None


def _said(exc: BaseException, settings: ImapSettings) -> str:
    # The server's words stay with the Spanish message: support recognises them at once.
    text = server_text(str(exc), settings.password)
    return f" (El servidor dijo: {text})" if text else ""
