"""The mail providers most people in Costa Rica read their bank notices in, and their IMAP settings.

The account form and ``add-account --provider`` fill the server, port, security and folder
from here; the form also tells how each provider lets a program in: an app password
(Gmail, Yahoo, iCloud) or only OAuth2 (Outlook.com and Microsoft 365 refuse passwords).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    code: str
    name: str
    host: str
    port: int = 993
    security: str = "ssl"
    folders: tuple[str, ...] = ("INBOX",)
    oauth: str | None = None  # the OAuth2 sign-in that opens it ("google", "microsoft")
    passwords: bool = True  # whether IMAP still accepts a (app) password


PROVIDERS: dict[str, Provider] = {
    provider.code: provider
    for provider in (
        # Gmail in Spanish names All Mail "[Gmail]/Todos": notices archived by a filter are there.
        Provider(
            "gmail", "Gmail", "imap.gmail.com", folders=("INBOX", "[Gmail]/Todos"), oauth="google"
        ),
        Provider(
            "outlook",
            "Outlook, Hotmail o Microsoft 365",
            "outlook.office365.com",
            oauth="microsoft",
            passwords=False,
        ),
        Provider("yahoo", "Yahoo", "imap.mail.yahoo.com"),
        Provider("icloud", "iCloud", "imap.mail.me.com"),
    )
}
CUSTOM = "custom"
CHOICES = [(code, provider.name) for code, provider in PROVIDERS.items()]
CHOICES.append((CUSTOM, "Otro servidor IMAP"))


def preset(code: str | None) -> Provider | None:
    """The provider of ``code``; None for "custom" or an unknown code."""
    return PROVIDERS.get(code or "")


def provider_of(host: str | None) -> str:
    """The code of the provider whose server ``host`` is, or "custom"."""
    host = (host or "").strip().lower().rstrip(".")
    found = next((p for p in PROVIDERS.values() if p.host == host), None)
    return found.code if found else CUSTOM


def for_oauth(oauth: str) -> Provider:
    """The mailbox an OAuth2 sign-in opens."""
    return next(p for p in PROVIDERS.values() if p.oauth == oauth)
