"""Registration, login and logout."""

import hmac

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, limiter, login_manager
from .forms import LoginForm, RegisterForm
from .models import User, new_token

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Inicie sesión para continuar."
login_manager.login_message_category = "info"
# A stolen cookie used from another browser drops the session instead of riding it.
login_manager.session_protection = "strong"

# Checked when the email is unknown so both paths cost one scrypt verification.
_DUMMY_HASH = generate_password_hash("timing-equaliser")


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    """Resolve `id:nonce`; a nonce rotated by logout no longer matches."""
    user_id, _, nonce = login_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_nonce, nonce):
        return None
    return user


def find_user(email: str) -> User | None:
    return db.session.execute(
        db.select(User).filter_by(email=email.strip().lower())
    ).scalar_one_or_none()


def create_user(email: str, password: str, *, admin: bool = False) -> User:
    """Create and return a user; the caller commits."""
    user = User(
        email=email.strip().lower(),
        password_hash=generate_password_hash(password),
        is_admin=admin,
    )
    db.session.add(user)
    return user


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    """Create an account and log it in."""
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = RegisterForm()
    if form.validate_on_submit():
        if find_user(form.email.data):
            form.email.errors.append("Ya existe una cuenta con ese correo.")
        else:
            user = create_user(form.email.data, form.password.data)
            db.session.commit()
            session.clear()
            login_user(user)
            flash("Cuenta creada. Agregue el correo donde recibe las notificaciones.", "success")
            return redirect(url_for("accounts.new"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit(
    "20 per hour", methods=["POST"], key_func=lambda: request.form.get("email", "").lower()
)
def login():
    """Log a user in after clearing any previous session."""
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data)
        valid = check_password_hash(user.password_hash if user else _DUMMY_HASH,
                                    form.password.data)
        if user and valid:
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Correo o contraseña incorrectos.", "error")
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


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: an open redirect would make phishing easy.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("home")
