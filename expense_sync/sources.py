"""Mail sources for stored accounts: settings from the model, the stored password decrypted."""

from dataclasses import replace

from . import crypto
from .mailboxes import ImapSettings, MailSource, check_connection, open_source
from .models import EmailAccount


def imap_settings(account: EmailAccount, password: str | None = None) -> ImapSettings:
    """Build connection settings from an account, decrypting its stored password."""
    if password is None:
        password = crypto.decrypt(account.imap_password_encrypted)
    return ImapSettings(
        host=account.imap_host, port=account.imap_port, security=account.imap_security,
        username=account.imap_user, password=password, folder=account.folder or "INBOX",
    )


def open_account(account: EmailAccount, password: str | None = None) -> MailSource:
    """Open the account's mailbox read-only."""
    if account.source_kind == "imap":
        return open_source("imap", imap=imap_settings(account, password))
    return open_source(account.source_kind, path=account.local_path)


def probe(account: EmailAccount, password: str | None = None, timeout: float = 30.0) -> int:
    """Log in (or open the local mailbox) for real and return its message count.

    ``timeout`` bounds each network wait: a person is watching, unlike during a sync.
    """
    if account.source_kind == "imap":
        return check_connection(replace(imap_settings(account, password), timeout=timeout))
    with open_account(account) as source:
        return len(source.scan(None, 0, ()).uids)
