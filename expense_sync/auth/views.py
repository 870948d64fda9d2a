"""Registration confirmed by email, login and logout."""

import json
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from .. import crypto, mail
from ..extensions import db, limiter
from ..models import new_token
from . import bp, create_user, find_user, guard, normal_email
from .forms import ConfirmPasswordForm, LoginForm, RegisterForm

CONFIRM_HOURS = 24
# Checked when the email is unknown so both paths cost one scrypt verification.
_DUMMY_HASH = generate_password_hash("timing-equaliser")


def seal_signup(email: str, password: str) -> str:
    """The registration a mailed link stands for, encrypted: the link shows nothing."""
    sealed = json.dumps({"email": email, "hash": generate_password_hash(password)})
    return crypto.encrypt(sealed).decode()


def open_signup(token: str) -> dict | None:
    opened = crypto.open_sealed(token.encode(), CONFIRM_HOURS * 3600)
    return json.loads(opened) if opened else None


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    """Ask for an address and a password, and mail a link that creates the account.

    The answer is the same whether the address has an account or not: the mail says which.
    """
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = RegisterForm()
    if form.validate_on_submit():
        email = normal_email(form.email.data)
        subject = "Active su cuenta de expense_sync"
        if find_user(email):
            subject = "Su cuenta de expense_sync"
            body = render_template(
                "auth/mail_already_registered.txt", reset_url=url_for("auth.forgot", _external=True)
            )
        else:
            token = seal_signup(email, form.password.data)
            body = render_template(
                "auth/mail_confirm.txt",
                hours=CONFIRM_HOURS,
                url=url_for("auth.confirm", token=token, _external=True),
            )
        try:
            mail.send(email, subject, body)
        except mail.MailError:
            flash(
                "No pudimos enviar el correo en este momento; intente de nuevo en unos minutos.",
                "error",
            )
            return render_template("auth/register.html", form=form), 503
        return render_template("auth/check_mail.html", email=email)
    return render_template("auth/register.html", form=form)


@bp.route("/register/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def confirm(token: str):
    """Create the account the mailed link stands for, once its password is typed again.

    The password proves that whoever opens the link chose it: a link someone else
    registered and then sent would log its reader into their account.
    """
    signup = open_signup(token)
    if signup is None:
        flash("El enlace venció o no es válido. Regístrese de nuevo.", "error")
        return redirect(url_for("auth.register"))
    if find_user(signup["email"]):
        flash("Esa cuenta ya está activa: inicie sesión.", "info")
        return redirect(url_for("auth.login"))
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        if not check_password_hash(signup["hash"], form.password.data):
            form.password.errors.append("No es la contraseña que eligió al registrarse.")
        else:
            user = create_user(signup["email"], password_hash=signup["hash"])
            try:
                db.session.commit()
            except IntegrityError:  # the same link opened twice at once
                db.session.rollback()
                flash("Esa cuenta ya está activa: inicie sesión.", "info")
                return redirect(url_for("auth.login"))
            session.clear()
            login_user(user)
            flash("Cuenta activada. Agregue el correo donde recibe las notificaciones.", "success")
            return guard.remember_device(redirect(url_for("accounts.new")), user.id)
    return render_template("auth/confirm.html", form=form, email=signup["email"])


@bp.route("/login", methods=["GET", "POST"])
@guard.limit_logins
def login():
    """Log a user in after clearing any previous session."""
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data)
        valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, form.password.data)
        if user and valid:
            session.clear()
            login_user(user)
            return guard.remember_device(redirect(safe_next(request.args.get("next"))), user.id)
        flash("Correo o contraseña incorrectos.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """End the session everywhere by rotating the user's session nonce."""
    current_user.session_nonce = new_token()
    db.session.commit()
    logout_user()
    session.clear()
    flash("Sesión cerrada.", "info")
    return redirect(url_for("auth.login"))


def safe_next(target: str | None) -> str:
    """A same-site path to go to after logging in; anything else goes home.

    Browsers drop tabs and newlines from URLs, so "/\\t/evil.example" would become
    "//evil.example", another site: any control character or space refuses the target.
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in target)
    ):
        return url_for("home")
    parts = urlsplit(target)
    return url_for("home") if parts.scheme or parts.netloc else target
