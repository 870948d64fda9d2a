"""Accounts of people: registration, login, logout, password reset, and who is logged in."""

import hmac

from flask import Blueprint
from werkzeug.security import generate_password_hash

from ..extensions import db, login_manager
from ..models import User

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Inicie sesión para continuar."
login_manager.login_message_category = "info"
# A stolen cookie used from another browser drops the session instead of riding it.
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(login_id: str) -> User | None:
    """Resolve `id:nonce`; a nonce rotated by logout or a new password no longer matches."""
    user_id, _, nonce = login_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_nonce, nonce):
        return None
    return user


def normal_email(email: str | None) -> str:
    """An address as it is stored and looked up; rate limits key on the same form."""
    return (email or "").strip().lower()


def find_user(email: str) -> User | None:
    return db.session.execute(
        db.select(User).filter_by(email=normal_email(email))
    ).scalar_one_or_none()


def create_user(
    email: str,
    password: str | None = None,
    *,
    admin: bool = False,
    password_hash: str | None = None,
) -> User:
    """Create and return a user; the caller commits."""
    user = User(
        email=normal_email(email),
        password_hash=password_hash or generate_password_hash(password),
        is_admin=admin,
    )
    db.session.add(user)
    return user


from . import reset, views  # noqa: E402,F401  (routes register on bp)
