"""A forgotten password: a link by mail, valid for one hour and for one use."""

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import generate_password_hash

from .. import mail
from ..extensions import db, limiter
from ..models import User, new_token
from . import bp, find_user, guard, normal_email
from .forms import EmailForm, NewPasswordForm

RESET_MINUTES = 60


def _resets() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def reset_token(user: User) -> str:
    # The current hash's tail makes the link good for one reset: a new password voids it.
    return _resets().dumps([user.id, user.password_hash[-12:]])


def user_of(token: str) -> User | None:
    """The user a reset link stands for, while it is fresh and unused."""
    try:
        user_id, tail = _resets().loads(token, max_age=RESET_MINUTES * 60)
    except (BadSignature, ValueError, TypeError):
        return None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    return user if user is not None and user.password_hash[-12:] == tail else None


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
# Per address and client: a stranger's requests never use up the owner's own.
@limiter.limit(
    "5 per hour",
    methods=["POST"],
    key_func=lambda: "forgot:{}:{}".format(
        normal_email(request.form.get("email")), request.remote_addr
    ),
)
def forgot():
    """Mail a reset link; the answer never says whether the address has an account."""
    form = EmailForm()
    if form.validate_on_submit():
        user = find_user(form.email.data)
        if user is not None:
            body = render_template(
                "auth/mail_reset.txt",
                minutes=RESET_MINUTES,
                url=url_for("auth.reset", token=reset_token(user), _external=True),
            )
            mail.send_later(user.email, "Restablezca su contraseña de expense_sync", body)
        return render_template(
            "auth/check_mail.html", email=normal_email(form.email.data), reset=True
        )
    return render_template("auth/forgot.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password from a mailed link; every other session is signed out."""
    user = user_of(token)
    if user is None:
        flash("El enlace venció o ya se usó. Pida uno nuevo.", "error")
        return redirect(url_for("auth.forgot"))
    form = NewPasswordForm(email=user.email)
    if form.validate_on_submit():
        user.password_hash = generate_password_hash(form.password.data)
        user.session_nonce = new_token()
        db.session.commit()
        session.clear()
        login_user(user)
        flash("Contraseña cambiada. Las demás sesiones se cerraron.", "success")
        return guard.remember_device(redirect(url_for("home")), user.id)
    return render_template("auth/reset.html", form=form)
