"""Request-wide behaviour: security headers, error pages, template helpers."""

import logging

from flask import Flask, redirect, render_template, render_template_string, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import NoSuchJobError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import NotFound

from . import formatting
from .auth import STREAM_VIEWS
from .states import AccountStatus, SessionStatus

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def register(app: Flask) -> None:
    """Install headers, error handlers, the home route, Jinja filters and globals."""
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    for code in MESSAGES:
        app.register_error_handler(code, _error_page)
    # rq-dashboard raises this for a job id that is not (or no longer) in Redis.
    app.register_error_handler(NoSuchJobError, lambda error: _error_page(NotFound()))
    for error in (RedisConnectionError, RedisTimeoutError, OperationalError):
        app.register_error_handler(error, _unavailable)
    app.add_url_rule("/", "home", _home)
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    app.context_processor(lambda: {"nav_links": lambda: _nav_links(app)})
    # Globals, not a context processor: the event reader renders the widget outside any
    # request, straight from app.jinja_env (sync/stream.py), and sees them too.
    app.jinja_env.globals.update(SessionStatus=SessionStatus, AccountStatus=AccountStatus)
    formatting.register(app)


NAV = [
    ("sync.index", "Sincronización"),
    ("expenses.index", "Gastos"),
    ("review.index", "Por revisar"),
    ("accounts.index", "Cuentas"),
    ("profile.index", "Mi cuenta"),
    ("admin.health", "Salud"),
]


def _nav_links(app: Flask) -> list[tuple[str, str]]:
    """The navigation entries whose feature is installed and visible to this user."""
    links = [(endpoint, label) for endpoint, label in NAV if endpoint in app.view_functions]
    if not current_user.is_admin:
        links = [(endpoint, label) for endpoint, label in links if endpoint != "admin.health"]
    return links


def _home():
    """Send users to their accounts and visitors to the login page."""
    if current_user.is_authenticated:
        return redirect(url_for("sync.index"))
    return redirect(url_for("auth.login"))


def _favicon():
    """Point browsers that ask for /favicon.ico (JSON pages, feeds) at the page's icon."""
    return redirect(url_for("static", filename="favicon.ico"), 301)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # htmx asks for fragments of the same URLs: caches must keep the two apart.
    response.vary.add("HX-Request")
    return response


def _csrf_error(error):
    return render_template(
        "error.html",
        code=400,
        message="La solicitud expiró o no es válida. Recargue la página e intente de nuevo.",
    ), 400


MESSAGES = {
    403: "No tiene permiso para ver esta página.",
    404: "La página que busca no existe.",
    405: "Esa dirección no acepta este tipo de solicitud. Vuelva al inicio e intente de nuevo.",
    413: "Lo que envió es demasiado grande. Revise los datos e intente de nuevo.",
    429: "Demasiados intentos. Espere un momento e intente de nuevo.",
    500: "Ocurrió un error inesperado. Ya quedó registrado; intente de nuevo.",
}


UNAVAILABLE = {
    OperationalError: "La base de datos no responde en este momento. Sus datos están a salvo; "
    "intente de nuevo en unos minutos.",
}
UNAVAILABLE_DEFAULT = (
    "El servicio de sincronización no responde en este momento. Sus datos "
    "están a salvo; intente de nuevo en unos minutos."
)


def _unavailable(error):
    """A backing service is down: say so in Spanish, with a 503 that invites a retry."""
    logging.getLogger(__name__).warning("service unavailable: %s", error)
    message = next(
        (text for kind, text in UNAVAILABLE.items() if isinstance(error, kind)), UNAVAILABLE_DEFAULT
    )
    try:
        if request.endpoint in STREAM_VIEWS:  # read by the page's script: no nav, no user
            raise RedisConnectionError("a stream's answer is plain")
        response = render_template("error.html", code=503, message=message)
    except (RedisConnectionError, RedisTimeoutError, OperationalError):
        # The page itself needs the service (the signed-in user lives in the database).
        response = render_template_string(
            PLAIN_PAGE, title="Servicio no disponible", message=message
        )
    return response, 503, {"Retry-After": "30"}


PLAIN_PAGE = """<!doctype html><html lang="es"><meta charset="utf-8">
<title>{{ title }}</title><p>{{ message }}</p></html>"""


def _error_page(error):
    code = getattr(error, "code", 500) or 500
    message = MESSAGES.get(code, "")
    limit = getattr(error, "limit", None)  # Flask-Limiter's own words for some limits
    if code == 429 and limit is not None and limit.error_message:
        message = error.description
    if request.endpoint in STREAM_VIEWS:  # read by the page's script, not shown: no nav
        response = render_template_string(PLAIN_PAGE, title=code, message=message)
    else:
        response = render_template("error.html", code=code, message=message)
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if code == 429 and retry_after:
        headers["Retry-After"] = str(retry_after)
    return response, code, headers
