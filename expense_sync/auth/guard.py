"""Login limits that stop guessing without locking the owner out.

OWASP's device cookies: a browser that once logged in to an account carries a signed
cookie naming it. Failures from browsers without one count against the account itself
(10 in 15 minutes, then such browsers wait); failures from a device count only against
that device. A stranger guessing, from any number of addresses, locks out strangers only:
the owner's own browser still gets in with the right password. Every address is also
limited on its own (10 a minute), whatever the account.
"""

import secrets

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import limiter
from . import find_user, normal_email

COOKIE = "device"
COOKIE_DAYS = 365
ACCOUNT_LIMIT = DEVICE_LIMIT = "10 per 15 minutes"
ACCOUNT_MESSAGE = (
    "Hubo demasiados intentos fallidos con esta cuenta desde navegadores "
    "desconocidos. Espere 15 minutos, o entre desde un navegador donde ya "
    "inició sesión antes; también puede restablecer su contraseña."
)
DEVICE_MESSAGE = "Demasiados intentos fallidos desde este navegador. Espere 15 minutos."


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="device-cookie")


def device() -> tuple[int, str] | None:
    """The (user id, device id) this browser's cookie vouches for, if any."""
    try:
        user_id, device_id = _serializer().loads(request.cookies.get(COOKIE, ""))
    except (BadSignature, ValueError, TypeError):
        return None
    return user_id, device_id


def trusted() -> bool:
    """Whether this browser logged in before to the account being logged in to."""
    known = device()
    if known is None:
        return False
    user = find_user(request.form.get("email", ""))
    return user is not None and user.id == known[0]


def failed(response) -> bool:
    return response.status_code == 401


def remember_device(response, user_id: int):
    """Give the browser that just logged in its device cookie (kept when it has one)."""
    known = device()
    device_id = known[1] if known and known[0] == user_id else secrets.token_urlsafe(16)
    response.set_cookie(
        COOKIE,
        _serializer().dumps([user_id, device_id]),
        max_age=COOKIE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def limit_logins(view):
    """The limits of the login view: per address, per account, per device."""
    account = limiter.limit(
        ACCOUNT_LIMIT,
        methods=["POST"],
        error_message=ACCOUNT_MESSAGE,
        key_func=lambda: "account:" + normal_email(request.form.get("email")),
        exempt_when=trusted,
        deduct_when=failed,
    )
    own_device = limiter.limit(
        DEVICE_LIMIT,
        methods=["POST"],
        error_message=DEVICE_MESSAGE,
        key_func=lambda: "device:" + (device() or (0, ""))[1],
        exempt_when=lambda: not trusted(),
        deduct_when=failed,
    )
    per_address = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], methods=["POST"]
    )
    return per_address(account(own_device(view)))
