"""Mi cuenta: change the password, sign out other sessions, download or delete one's data."""

import io
import zipfile

from flask import Blueprint, Response, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from . import personal_data
from .auth.forms import ChangePasswordForm, ConfirmPasswordForm
from .extensions import db, get_redis
from .models import SyncSession, new_token, now_utc
from .parsing.dates import COSTA_RICA
from .progress import Progress, account_lock_key
from .states import SessionStatus

bp = Blueprint("profile", __name__, url_prefix="/me")


@bp.before_request
@login_required
def _require_login():
    """Every page of one's account needs a logged-in user."""


def _page(password_form=None, delete_form=None, status=200):
    return render_template(
        "profile/index.html",
        password_form=password_form or ChangePasswordForm(email=current_user.email),
        delete_form=delete_form or ConfirmPasswordForm(),
    ), status


@bp.get("")
def index():
    """The user's account: password, sessions, their data."""
    return _page()


@bp.post("/password")
def change_password():
    """Set a new password; every other session is signed out, this one stays."""
    form = ChangePasswordForm(email=current_user.email)
    if form.validate_on_submit():
        if not check_password_hash(current_user.password_hash, form.current.data):
            form.current.errors.append("La contraseña actual no es correcta.")
        else:
            current_user.password_hash = generate_password_hash(form.password.data)
            _new_session()
            flash("Contraseña cambiada. Las sesiones en otros navegadores se cerraron.", "success")
            return redirect(url_for("profile.index"))
    return _page(password_form=form, status=422)


@bp.post("/sessions")
def sign_out_others():
    """Sign out every other browser where the user is logged in."""
    _new_session()
    flash("Listo: se cerraron las sesiones en los demás navegadores.", "success")
    return redirect(url_for("profile.index"))


@bp.get("/data.zip")
def download():
    """Everything stored about the user: one JSON document and a CSV per table."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in personal_data.files(current_user):
            archive.writestr(name, content)
    today = now_utc().astimezone(COSTA_RICA).date()
    return Response(
        buffer.getvalue(),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="mis-datos-{today}.zip"'},
    )


@bp.post("/delete")
def delete():
    """Delete the account with all its data, after the user typed their password."""
    form = ConfirmPasswordForm()
    if not form.validate_on_submit():
        return _page(delete_form=form, status=422)
    if not check_password_hash(current_user.password_hash, form.password.data):
        form.password.errors.append("La contraseña no es correcta.")
        return _page(delete_form=form, status=422)
    if db.session.scalar(
        db.select(SyncSession.id).where(
            SyncSession.user_id == current_user.id, SyncSession.status.in_(SessionStatus.ACTIVE)
        )
    ):
        flash(
            "Hay una sincronización en curso: espere a que termine y vuelva a intentarlo.", "error"
        )
        return _page(delete_form=form, status=409)
    user = current_user._get_current_object()
    logout_user()
    session.clear()
    tokens, rows = personal_data.erase(user)
    progress = Progress(get_redis())
    progress.forget_user(user.id)
    for token in tokens:
        progress.forget(token)
    if rows:
        get_redis().delete(*(account_lock_key(row) for row in rows))
    flash("Su cuenta y todos sus datos se eliminaron.", "info")
    return redirect(url_for("auth.login"))


def _new_session() -> None:
    """Rotate the login nonce (other sessions' cookies stop matching) and keep this one."""
    current_user.session_nonce = new_token()
    db.session.commit()
    login_user(current_user._get_current_object())
