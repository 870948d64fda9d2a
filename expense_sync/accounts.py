"""Email accounts: list, add, edit, delete and "Probar conexión"."""

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from . import crypto
from .extensions import db
from .forms import AccountForm, shown_path
from .mailboxes import MailboxError
from .models import EmailAccount
from .sources import probe

bp = Blueprint("accounts", __name__, url_prefix="/accounts")
log = logging.getLogger(__name__)

# Long enough for a slow server's greeting, short enough that nobody gives up on the button.
PROBE_TIMEOUT = 8.0
UNEXPECTED = ("No se pudo probar la conexión por un error inesperado; ya quedó registrado. "
              "Revise los datos e intente de nuevo.")


@bp.before_request
@login_required
def _require_login():
    """Every account page needs a logged-in user."""


def get_own_account(account_id: int) -> EmailAccount:
    """Return the current user's account, or 404 (also for another user's id)."""
    account = db.get_or_404(EmailAccount, account_id)
    if account.user_id != current_user.id:
        abort(404)
    return account


def apply_settings(account: EmailAccount, data: dict) -> None:
    """Copy validated settings onto an account, encrypting a new password."""
    account.bank = data["bank"]
    account.address = data["address"].strip().lower()
    account.source_kind = data["source_kind"]
    if account.source_kind == "imap":
        account.imap_host = data["imap_host"].strip()
        account.imap_port = int(data["imap_port"])
        account.imap_security = data["imap_security"]
        account.imap_user = data["imap_user"].strip()
        account.folder = (data.get("folder") or "INBOX").strip()
        account.local_path = None
        if data.get("imap_password"):
            account.imap_password_encrypted = crypto.encrypt(data["imap_password"])
    else:
        account.local_path = data["local_path"].strip()
        account.imap_host = account.imap_port = account.imap_security = None
        account.imap_user = account.imap_password_encrypted = None
    # A different mailbox invalidates the checkpoint; the next sync rescans it.
    account.uidvalidity = None
    account.last_uid = 0


@bp.get("")
def index():
    """List the user's email accounts."""
    return render_template("accounts/index.html", accounts=current_user.accounts,
                           shown_path=shown_path)


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
    return render_template("accounts/form.html", form=form, account=None)


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
def edit(account_id: int):
    """Edit an account; a blank password keeps the stored one."""
    account = get_own_account(account_id)
    form = AccountForm(obj=account, password_on_file=bool(account.imap_password_encrypted))
    if request.method == "GET":
        form.local_path.data = shown_path(account.local_path)
    if form.validate_on_submit():
        apply_settings(account, form.settings())
        db.session.commit()
        flash(f"Cuenta {account.address} actualizada.", "success")
        return redirect(url_for("accounts.index"))
    return render_template("accounts/form.html", form=form, account=account)


@bp.post("/<int:account_id>/delete")
def delete(account_id: int):
    """Delete an account with its expenses."""
    account = get_own_account(account_id)
    db.session.delete(account)
    db.session.commit()
    flash(f"Cuenta {account.address} eliminada.", "info")
    return redirect(url_for("accounts.index"))


@bp.post("/test", defaults={"account_id": None})
@bp.post("/<int:account_id>/test")
def test_connection(account_id: int | None):
    """Check the settings in the form against the real server; returns a fragment."""
    stored = get_own_account(account_id) if account_id else None
    form = AccountForm(password_on_file=bool(stored and stored.imap_password_encrypted))
    if not form.validate():
        return _result(ok=False, message="Revise estos campos antes de probar:", form=form)
    candidate = EmailAccount()
    apply_settings(candidate, form.settings())
    timeout = current_app.config.get("PROBE_TIMEOUT", PROBE_TIMEOUT)
    try:
        password = form.imap_password.data or None
        if password is None and stored is not None and candidate.source_kind == "imap":
            password = crypto.decrypt(stored.imap_password_encrypted)
        count = probe(candidate, password, timeout=timeout)
    except MailboxError as exc:
        return _result(ok=False, message=exc.message)
    except Exception:
        # htmx swaps nothing on a 500: the button would just reset, saying nothing.
        log.exception("connection test failed unexpectedly")
        return _result(ok=False, message=UNEXPECTED)
    return _result(ok=True, count=count)


def _result(**context) -> str:
    return render_template("accounts/_connection_result.html", **context)
