"""Accounts of people: registration, login, logout, password reset, and who is logged in."""

import hmac
import logging

from flask import Blueprint, request
from flask_login import UserMixin
from redis import RedisError
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ..extensions import db, get_redis, login_manager
from ..models import User
from ..progress import LOGIN_KEPT, login_key

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Inicie sesión para continuar."
login_manager.login_message_category = "info"
# A stolen cookie used from another browser drops the session instead of riding it.
login_manager.session_protection = "strong"


# The event streams: opened often (every tab's reconnect) and open for minutes, they check
# the login against Redis's copy of the nonce, and never take a database connection for it.
STREAM_VIEWS = ("sync.stream", "sync.user_stream")


class StreamLogin(UserMixin):
    """Who opened an event stream: their id, from a login checked against Redis."""

    def __init__(self, user_id: int):
        self.id = user_id


@login_manager.user_loader
def load_user(login_id: str) -> User | StreamLogin | None:
    """Resolve `id:nonce`; a nonce rotated by logout or a new password no longer matches."""
    user_id, _, nonce = login_id.partition(":")
    if not user_id.isdigit():
        return None
    if request.endpoint in STREAM_VIEWS:
        return _stream_login(int(user_id), nonce)
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_nonce, nonce):
        return None
    return user


def _stream_login(user_id: int, nonce: str) -> StreamLogin | None:
    redis = get_redis()
    try:
        known = redis.get(login_key(user_id))
    except RedisError:
        known = None
    if known is None:  # not remembered (or Redis is away): the database says, once
        try:
            user = db.session.get(User, user_id)
            known = user.session_nonce.encode() if user else b""
        finally:
            db.session.close()
        try:
            redis.set(login_key(user_id), known, ex=LOGIN_KEPT, nx=True)
        except RedisError:
            pass
    if not known or not hmac.compare_digest(known, nonce.encode()):
        return None
    return StreamLogin(user_id)


@event.listens_for(Session, "after_flush")
def _note_changed_logins(session, _context) -> None:
    """A nonce rotated or a user deleted: their streams' copy is forgotten on commit."""
    changed = session.info.setdefault("changed_logins", set())
    for row in session.dirty:
        if isinstance(row, User) and inspect(row).attrs.session_nonce.history.has_changes():
            changed.add(row.id)
    changed.update(row.id for row in session.deleted if isinstance(row, User))
    _forget(changed)  # now, and again once committed (a stream may copy it meanwhile)


@event.listens_for(Session, "after_commit")
def _forget_changed_logins(session) -> None:
    _forget(session.info.pop("changed_logins", None))


def _forget(user_ids) -> None:
    if not user_ids:
        return
    try:
        get_redis().delete(*(login_key(user_id) for user_id in user_ids))
    except RedisError:  # the copy expires by itself (LOGIN_KEPT): the commit stands
        log.warning("login copies of users %s not forgotten: Redis is away", sorted(user_ids))


@event.listens_for(Session, "after_rollback")
def _keep_logins(session) -> None:
    session.info.pop("changed_logins", None)


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
