"""bp: "Conectar con Google / Microsoft": the consent redirect and its callback."""

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user

from ..extensions import db
from ..mailboxes.providers import for_oauth
from ..models import EmailAccount
from . import Client, authorization, client, exchange, store

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
log = logging.getLogger(__name__)
PENDING = "oauth_pending"
KEPT_FIELDS = ("bank", "address", "folder", "imap_host", "imap_port", "imap_security")


@bp.post("/<provider>/start")
def start(provider: str):
    """Send the user to the provider's consent page, for a new account or to reconnect one."""
    from ..accounts import form_page, get_own_account
    from ..forms import AccountForm

    found = client(provider) or abort(404)
    account_id = request.form.get("account_id", type=int)
    if account_id:
        get_own_account(account_id)  # 404 for another user's account
        kept = {}
    else:
        form = AccountForm()
        form.validate()
        for name in form._fields:  # a sign-in needs only these; the server is the provider's
            if name not in KEPT_FIELDS:
                form[name].errors = []
        if any(form[name].errors for name in KEPT_FIELDS):
            return form_page(form, None, 400)
        kept = {name: form[name].data for name in KEPT_FIELDS}
    url, state, verifier = authorization(found, _callback_url(provider))
    session[PENDING] = kept | {
        "provider": provider,
        "state": state,
        "verifier": verifier,
        "account_id": account_id,
    }
    return redirect(url)


@bp.get("/<provider>/callback")
def callback(provider: str):
    """Keep the grant the provider sent back, encrypted, and return to the accounts."""
    found = client(provider) or abort(404)
    pending = session.pop(PENDING, None)
    if not pending or pending["provider"] != provider:
        flash(
            f"La conexión con {found.name} no empezó aquí o ya se usó. Intente de nuevo.", "error"
        )
        return redirect(url_for("accounts.index"))
    if request.args.get("error"):
        flash(f"{found.name} no dio permiso para leer su correo: la cuenta no se conectó.", "error")
        return redirect(url_for("accounts.index"))
    try:
        token = exchange(
            found, _callback_url(provider), request.url, pending["state"], pending["verifier"]
        )
    # AuthlibBaseError covers the provider's errors and a state that does not match.
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        log.warning("%s token exchange failed: %s", provider, type(exc).__name__)
        flash(f"No se pudo completar la conexión con {found.name}. Intente de nuevo.", "error")
        return redirect(url_for("accounts.index"))
    if not token.get("refresh_token"):
        flash(
            f"{found.name} no dio un permiso duradero; quite el acceso de expense_sync en su "
            "cuenta y vuelva a conectarla.",
            "error",
        )
        return redirect(url_for("accounts.index"))
    account = _connected(found, pending, token)
    flash(f"Cuenta {account.address} conectada con {found.name}.", "success")
    return redirect(url_for("accounts.index"))


def _connected(found: Client, pending: dict, token: dict) -> EmailAccount:
    """The reconnected account, or a new one on the server the form named (the provider's own,
    as its preset fills it in)."""
    from ..accounts import apply_settings, get_own_account

    if pending["account_id"]:
        account = get_own_account(pending["account_id"])  # its checkpoint stays
    else:
        account = EmailAccount(user_id=current_user.id)
        db.session.add(account)
        preset = for_oauth(found.provider)
        server = (
            {
                "imap_host": pending["imap_host"].strip(),
                "imap_port": pending["imap_port"],
                "imap_security": pending["imap_security"],
            }
            if pending["imap_host"]
            else {
                "imap_host": preset.host,
                "imap_port": preset.port,
                "imap_security": preset.security,
            }
        )
        apply_settings(
            account,
            server
            | {
                "bank": pending["bank"],
                "address": pending["address"],
                "source_kind": "imap",
                "imap_user": pending["address"],
                "folder": pending["folder"] or "INBOX",
            },
        )
    account.oauth_provider = found.provider
    account.imap_password_encrypted = None
    store(account, token)
    db.session.commit()
    return account


def _callback_url(provider: str) -> str:
    # Behind a TLS-terminating proxy the request looks like http; the registered URI is https.
    scheme = current_app.config["PREFERRED_URL_SCHEME"]
    return url_for(".callback", provider=provider, _external=True, _scheme=scheme)
