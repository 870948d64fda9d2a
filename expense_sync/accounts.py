"""Email accounts: list, add, edit, delete and "Probar conexión"."""

import logging

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from redis import RedisError

from . import crypto, oauth
from .account_mail import probe
from .extensions import db, get_redis, own_or_404
from .forms import AccountForm, shown_path
from .mailboxes import MailboxError, providers
from .mailboxes.imap_certs import shown as shown_fingerprint
from .mailboxes.providers import PROVIDERS, provider_of
from .models import EmailAccount, bank_names
from .oauth import views as oauth_views
from .personal_data import erase_account
from .progress import Progress
from .sync import control
from .web import CSP

bp = Blueprint("accounts", __name__, url_prefix="/accounts")
bp.register_blueprint(oauth_views.bp)  # /accounts/oauth/...: login required here too
log = logging.getLogger(__name__)

# Long enough for a slow server's greeting, short enough that nobody gives up on the button.
PROBE_TIMEOUT = 8.0
UNEXPECTED = (
    "No se pudo probar la conexión por un error inesperado; ya quedó registrado. "
    "Revise los datos e intente de nuevo."
)


@bp.before_request
@login_required
def _require_login():
    """Every account page needs a logged-in user."""


@bp.after_request
def _allow_consent_pages(response):
    """Let "Conectar con ..." forms lead on to the provider: CSP checks a form's redirects too."""
    origins = oauth.consent_origins()
    if origins:
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", "form-action 'self' " + " ".join(origins)
        )
    return response


def get_own_account(account_id: int) -> EmailAccount:
    """Return the current user's account, or 404 (also for another user's id)."""
    return own_or_404(EmailAccount, id=account_id)


def same_server(account: EmailAccount, data) -> bool:
    """Whether the form names the server, security and user the account's secret is for.

    A stored password or OAuth2 token is only ever sent where it was given: otherwise
    editing the host (by a stolen session, say) would send it to any server.
    """
    host, port, security = (
        (data.get("imap_host") or "").strip(),
        data.get("imap_port"),
        data.get("imap_security"),
    )
    preset = providers.preset(data.get("provider"))
    if preset and not host:  # as AccountForm.settings fills them in
        host, port, security = preset.host, preset.port, preset.security
    user = (data.get("imap_user") or "").strip() or (data.get("address") or "").strip().lower()
    try:
        port = int(port or 0)
    except (TypeError, ValueError):
        return False
    return (
        account.source_kind == "imap"
        and data.get("source_kind") == "imap"
        and host.lower() == (account.imap_host or "").lower()
        and port == account.imap_port
        and security == account.imap_security
        and user == (account.imap_user or "")
    )


def apply_settings(account: EmailAccount, data: dict) -> None:
    """Copy validated settings onto an account, encrypting a new password.

    Another server, security or user voids the stored secrets (the form then required a
    new password).
    """
    if account.id is not None and not same_server(account, data):
        account.imap_password_encrypted = None
        account.oauth_provider = account.oauth_refresh_token_encrypted = None
        account.oauth_access_token_encrypted = account.oauth_expires_at = None
    account.bank = data["bank"]
    account.address = data["address"].strip().lower()
    account.source_kind = data["source_kind"]
    if account.source_kind == "imap":
        account.imap_host = data["imap_host"].strip()
        account.imap_port = int(data["imap_port"])
        account.imap_security = data["imap_security"]
        account.imap_user = data["imap_user"].strip()
        account.folder = (data.get("folder") or "INBOX").strip()
        account.tls_fingerprint = data.get("tls_fingerprint") or None
        account.local_path = None
        if data.get("imap_password"):
            account.imap_password_encrypted = crypto.encrypt(data["imap_password"])
    else:
        account.local_path = data["local_path"].strip()
        account.imap_host = account.imap_port = account.imap_security = None
        account.imap_user = account.imap_password_encrypted = account.tls_fingerprint = None
        account.oauth_provider = account.oauth_refresh_token_encrypted = None
        account.oauth_access_token_encrypted = account.oauth_expires_at = None
    # A different mailbox invalidates the checkpoint; the next sync rescans it.
    account.uidvalidity = None
    account.last_uid = 0


@bp.get("")
def index():
    """List the user's email accounts."""
    return render_template(
        "accounts/index.html",
        accounts=current_user.accounts,
        shown_path=shown_path,
        bank_names=list(bank_names().values()),
        oauth_ready={c.provider for c in oauth.configured()},
    )


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Add an email account."""
    form = AccountForm()
    if form.validate_on_submit():
        account = EmailAccount(user_id=current_user.id)
        apply_settings(account, form.settings())
        db.session.add(account)
        db.session.commit()
        flash(f"Cuenta {account.address} agregada.", "success")
        return redirect(url_for("accounts.index"))
    return form_page(form, None)


def form_page(form: AccountForm, account: EmailAccount | None, status: int = 200):
    """The account form with its presets and the OAuth2 sign-ins the deployer set up."""
    return render_template(
        "accounts/form.html",
        form=form,
        account=account,
        presets=presets(),
        oauth_clients=oauth.configured(),
        shown=shown_fingerprint,
    ), status


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
def edit(account_id: int):
    """Edit an account; a blank password keeps the stored one."""
    account = get_own_account(account_id)
    keeps_secret = has_secret(account) and (
        request.method == "GET" or same_server(account, request.form)
    )
    form = AccountForm(obj=account, password_on_file=keeps_secret)
    if request.method == "GET":
        form.local_path.data = shown_path(account.local_path)
        form.provider.data = provider_of(account.imap_host)
    if form.validate_on_submit():
        apply_settings(account, form.settings())
        db.session.commit()
        flash(f"Cuenta {account.address} actualizada.", "success")
        return redirect(url_for("accounts.index"))
    return form_page(form, account)


@bp.post("/<int:account_id>/delete")
def delete(account_id: int):
    """Delete an account with its expenses and the mail kept of it."""
    account = get_own_account(account_id)
    if control.active_session(current_user.id):
        flash(
            "Hay una sincronización en curso: espere a que termine para eliminar la cuenta.",
            "error",
        )
        return redirect(url_for("accounts.index"))
    erase_account(account)
    db.session.commit()
    try:  # the newest session's addresses name it: streams read them again from the rows
        Progress(get_redis()).forget_user(current_user.id, login=False)
    except RedisError:
        log.warning("the deleted account's address stays in Redis for up to 30 days")
    flash(f"Cuenta {account.address} eliminada.", "info")
    return redirect(url_for("accounts.index"))


@bp.post("/test", defaults={"account_id": None})
@bp.post("/<int:account_id>/test")
def test_connection(account_id: int | None):
    """Check the settings in the form against the real server; returns a fragment."""
    stored = get_own_account(account_id) if account_id else None
    if stored is not None and not same_server(stored, request.form):
        stored = None  # its secret is not for this server: the form must bring one
    form = AccountForm(password_on_file=bool(stored and has_secret(stored)))
    if not form.validate():
        return _result(ok=False, message="Revise estos campos antes de probar:", form=form)
    candidate = EmailAccount()
    apply_settings(candidate, form.settings())
    timeout = current_app.config.get("PROBE_TIMEOUT", PROBE_TIMEOUT)
    try:
        password = form.imap_password.data or None
        if stored is not None and stored.oauth_provider and candidate.source_kind == "imap":
            candidate = stored  # its tokens are refreshed and kept where the worker finds them
        elif password is None and stored is not None and candidate.source_kind == "imap":
            password = crypto.decrypt(stored.imap_password_encrypted)
        count = probe(candidate, password, timeout=timeout)
    except MailboxError as exc:
        return _result(
            ok=False, message=exc.message, fingerprint=exc.fingerprint, shown=shown_fingerprint
        )
    except Exception:
        # htmx swaps nothing on a 500: the button would just reset, saying nothing.
        log.exception("connection test failed unexpectedly")
        return _result(ok=False, message=UNEXPECTED)
    return _result(ok=True, count=count, pinned=candidate.tls_fingerprint, shown=shown_fingerprint)


def has_secret(account: EmailAccount) -> bool:
    """Whether a blank password keeps the account able to log in."""
    return bool(account.imap_password_encrypted or account.oauth_provider)


def presets() -> dict:
    """What the form's script fills in for each provider."""
    return {
        code: {"host": p.host, "port": p.port, "security": p.security, "folders": list(p.folders)}
        for code, p in PROVIDERS.items()
    }


def _result(**context) -> str:
    return render_template("accounts/_connection_result.html", **context)
