"""Mail sources for stored accounts: settings from the model, the stored secret decrypted."""

from dataclasses import replace

from . import crypto, oauth
from .mailboxes import ImapSettings, MailboxError, MailSource, open_source
from .models import EmailAccount


def imap_settings(account: EmailAccount, password: str | None = None) -> ImapSettings:
    """Build connection settings from an account: its password, or a fresh OAuth2 token."""
    token = None
    if account.oauth_provider:
        password, token = "", oauth.access_token(account)
    elif password is None:
        password = crypto.decrypt(account.imap_password_encrypted)
    return ImapSettings(
        host=account.imap_host,
        port=account.imap_port,
        security=account.imap_security,
        username=account.imap_user,
        password=password,
        folder=account.folder or "INBOX",
        access_token=token,
        tls_fingerprint=account.tls_fingerprint,
    )


def open_account(
    account: EmailAccount, password: str | None = None, timeout: float | None = None
) -> MailSource:
    """Open the account's mailbox read-only; ``timeout`` bounds each network wait."""
    if account.source_kind != "imap":
        return open_source(account.source_kind, path=account.local_path)
    settings = imap_settings(account, password)
    if timeout is not None:
        settings = replace(settings, timeout=timeout)
    try:
        return open_source("imap", imap=settings)
    except MailboxError as exc:
        if not (account.oauth_provider and exc.kind == "authentication"):
            raise
    # A token can end before its time (revoked, a clock ahead): one fresh token, one more try.
    settings = replace(settings, access_token=oauth.access_token(account, force=True))
    try:
        return open_source("imap", imap=settings)
    except MailboxError as exc:
        if exc.kind != "authentication":
            raise
        name = oauth.NAMES[account.oauth_provider]
        message = (
            f"{settings.host} rechazó el inicio de sesión de {account.imap_user} con el "
            f"acceso de {name}. Revise que IMAP esté activado en su correo o vuelva a "
            "conectar su cuenta."
        )
        raise MailboxError("authentication", message) from exc


def probe(account: EmailAccount, password: str | None = None, timeout: float = 30.0) -> int:
    """Log in (or open the local mailbox) for real and return its message count.

    ``timeout`` bounds each network wait: a person is watching, unlike during a sync.
    """
    with open_account(account, password, timeout) as source:
        if account.source_kind == "imap":
            return source.message_count
        return len(source.scan(None, 0, ()).uids)
