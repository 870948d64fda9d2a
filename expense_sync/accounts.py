"""Email accounts: list, add, edit, delete and "Probar conexión"."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from . import crypto
from .extensions import db
from .forms import AccountForm
from .mailboxes import MailboxError
from .models import EmailAccount
from .sources import probe

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


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
    return render_template("accounts/index.html", accounts=current_user.accounts)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Add an email account."""
    form = AccountForm()
    if form.validate_on_submit():
        account = EmailAccount(user_id=current_user.id)
        apply_settings(account, form.data)
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
    if form.validate_on_submit():
        apply_settings(account, form.data)
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
        return render_template("accounts/_connection_result.html", ok=False,
                               message="Complete los campos marcados antes de probar.")
    candidate = EmailAccount()
    apply_settings(candidate, form.data)
    password = form.imap_password.data or None
    if password is None and stored is not None:
        password = crypto.decrypt(stored.imap_password_encrypted)
    try:
        count = probe(candidate, password)
    except MailboxError as exc:
        return render_template("accounts/_connection_result.html", ok=False, message=exc.message)
    return render_template("accounts/_connection_result.html", ok=True, count=count)
