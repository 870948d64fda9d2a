"""OAuth2 sign-in to Gmail and Outlook mailboxes, with Authlib.

The web runs the authorization-code flow with PKCE (``views.py``) and stores the refresh
token encrypted like a password; whoever opens the mailbox (the worker, "Probar conexión")
asks ``access_token`` for a token fresh enough to log in with XOAUTH2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from flask import current_app

from .. import crypto
from ..extensions import db
from ..mailboxes import MailboxError
from ..models import EmailAccount, now_utc

NAMES = {"google": "Google", "microsoft": "Microsoft"}
SCOPES = {
    "google": "https://mail.google.com/",
    "microsoft": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
}
# Refreshed this long before expiry, so no login starts with a token about to lapse.
REFRESH_MARGIN = timedelta(minutes=5)
HTTP_TIMEOUT = 15


@dataclass(frozen=True)
class Client:
    """One provider as the deployer registered this app with it."""

    provider: str
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    # Google hands out a refresh token only with offline access and a consent screen.
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return NAMES[self.provider]

    def session(self, redirect_uri: str | None = None, state: str | None = None):
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=SCOPES[self.provider],
            redirect_uri=redirect_uri,
            state=state,
            code_challenge_method="S256",
        )


def client(provider: str) -> Client | None:
    """The provider's client from the configuration; None when the deployer set none up."""
    config = current_app.config
    if provider == "google" and config.get("GOOGLE_CLIENT_ID"):
        return Client(
            "google",
            config["GOOGLE_CLIENT_ID"],
            config.get("GOOGLE_CLIENT_SECRET", ""),
            config.get("GOOGLE_AUTHORIZE_URL") or "https://accounts.google.com/o/oauth2/v2/auth",
            config.get("GOOGLE_TOKEN_URL") or "https://oauth2.googleapis.com/token",
            {"access_type": "offline", "prompt": "consent"},
        )
    if provider == "microsoft" and config.get("MICROSOFT_CLIENT_ID"):
        base = (
            "https://login.microsoftonline.com/"
            f"{config.get('MICROSOFT_TENANT') or 'common'}/oauth2/v2.0"
        )
        return Client(
            "microsoft",
            config["MICROSOFT_CLIENT_ID"],
            config.get("MICROSOFT_CLIENT_SECRET", ""),
            config.get("MICROSOFT_AUTHORIZE_URL") or f"{base}/authorize",
            config.get("MICROSOFT_TOKEN_URL") or f"{base}/token",
        )
    return None


def configured() -> list[Client]:
    """The providers whose buttons the account form shows."""
    return [found for provider in NAMES if (found := client(provider))]


def consent_origins() -> list[str]:
    """The sites of the consent pages, which the account pages' forms may be sent on to."""
    return sorted(
        {"{0.scheme}://{0.netloc}".format(urlsplit(c.authorize_url)) for c in configured()}
    )


def authorization(provider: Client, redirect_uri: str) -> tuple[str, str, str]:
    """The consent page's URL, its state and the PKCE code verifier to keep until the callback."""
    verifier = generate_token(64)
    with provider.session(redirect_uri) as session:
        url, state = session.create_authorization_url(
            provider.authorize_url, code_verifier=verifier, **provider.extra
        )
    return url, state, verifier


def exchange(
    provider: Client, redirect_uri: str, response_url: str, state: str, verifier: str
) -> dict:
    """Trade the callback's code for tokens; Authlib checks the state against ours."""
    with provider.session(redirect_uri, state) as session:
        return session.fetch_token(
            provider.token_url,
            authorization_response=response_url,
            code_verifier=verifier,
            timeout=HTTP_TIMEOUT,
        )


def store(account: EmailAccount, token: dict) -> None:
    """Keep a token response on the account, encrypted; a rotated refresh token replaces ours."""
    if token.get("refresh_token"):
        account.oauth_refresh_token_encrypted = crypto.encrypt(token["refresh_token"])
    account.oauth_access_token_encrypted = crypto.encrypt(token["access_token"])
    expires_at = token.get("expires_at")
    account.oauth_expires_at = (
        datetime.fromtimestamp(expires_at, UTC) if expires_at else now_utc() + timedelta(hours=1)
    )


def access_token(account: EmailAccount, force: bool = False) -> str:
    """A token to log in with now: the stored one unless it is near expiry (or ``force``)."""
    expires_at = account.oauth_expires_at
    if (
        not force
        and account.oauth_access_token_encrypted
        and expires_at
        and expires_at - REFRESH_MARGIN > now_utc()
    ):
        return crypto.decrypt(account.oauth_access_token_encrypted)
    name = NAMES.get(account.oauth_provider, account.oauth_provider)
    provider = client(account.oauth_provider)
    if provider is None:
        raise MailboxError(
            "authentication",
            f"El inicio de sesión con {name} ya no está "
            "configurado en este servidor; avise a quien lo administra.",
        )
    if account.oauth_refresh_token_encrypted is None:
        raise MailboxError("authentication", reconnect_message(account))
    try:
        with provider.session() as session:
            token = session.refresh_token(
                provider.token_url,
                crypto.decrypt(account.oauth_refresh_token_encrypted),
                timeout=HTTP_TIMEOUT,
            )
    except OAuthError as exc:
        if exc.error != "invalid_grant":
            raise MailboxError(
                "server",
                f"{name} no renovó el acceso a {account.address} "
                f"({exc.error}). Intente de nuevo más tarde.",
            ) from exc
        # Revoked (password changed, access removed, unused for months): it never works again.
        account.oauth_refresh_token_encrypted = account.oauth_access_token_encrypted = None
        account.oauth_expires_at = None
        db.session.commit()
        raise MailboxError("authentication", reconnect_message(account)) from exc
    except requests.RequestException as exc:
        raise MailboxError(
            "network", f"No se pudo renovar el acceso con {name}.", transient=True
        ) from exc
    store(account, token)
    # At once, not with the next batch: a rotated refresh token lost now is a lost account.
    db.session.commit()
    return token["access_token"]


def reconnect_message(account: EmailAccount) -> str:
    name = NAMES.get(account.oauth_provider, account.oauth_provider)
    return (
        f"{name} ya no autoriza el acceso a {account.address}. Vuelva a conectar su "
        f"cuenta: en Cuentas de correo, «Volver a conectar con {name}»."
    )
