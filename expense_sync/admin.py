"""Operations for admins: the health page, rq-dashboard under /admin/rq, and /metrics."""

import base64
import hashlib
import hmac
import re
import time

import rq_dashboard
from flask import Blueprint, Flask, abort, current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from . import metrics
from .extensions import db, get_redis
from .models import SyncSessionAccount
from .states import AccountStatus
from .web import CSP

bp = Blueprint("admin", __name__, url_prefix="/admin")

DASHBOARD_PREFIX = "/admin/rq"
RECENT_FAILURES = 10
ERROR_LABELS = {
    "network": "Red",
    "authentication": "Autenticación",
    "server": "Servidor",
    "tls": "TLS",
    "folder": "Carpeta",
    "unreadable_email": "Correo ilegible",
}
# Script blocks the browser runs; its `type="text/template"` blocks are data, not script.
_INLINE_SCRIPT = re.compile(r'<script(?:\s+type="text/javascript")?\s*>(.*?)</script>', re.S)


def register(app: Flask) -> None:
    """Mount the admin pages, rq-dashboard (admins only) and /metrics."""
    app.register_blueprint(bp)
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    # rq-dashboard keeps its Redis client on the app object: that is its API, not our habit.
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
    app.add_url_rule("/metrics", "metrics", metrics_endpoint)


@bp.before_app_request
def _admins_only():
    """Everything under /admin is for admins: visitors log in first, other users get 404."""
    if request.path != bp.url_prefix and not request.path.startswith(bp.url_prefix + "/"):
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.is_admin:
        abort(404)
    # rq-dashboard also requeues on GET; a link must never change anything.
    if request.endpoint == "rq_dashboard.requeue_all" and request.method != "POST":
        abort(405)
    return None


@bp.after_app_request
def _dashboard_headers(response):
    """Let rq-dashboard's pages work under our CSRF protection and a strict CSP."""
    if request.blueprint != "rq_dashboard" or response.mimetype != "text/html":
        return response
    # Its script sends this cookie back as X-CSRFToken on every POST, so requeue, delete and
    # empty pass the same CSRF check as our forms; nothing is exempted. Strict: never sent
    # cross-site, and only these pages' script reads it.
    response.set_cookie(
        "_csrf_token",
        generate_csrf(),
        path=DASHBOARD_PREFIX,
        samesite="Strict",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=False,
    )
    # Its pages run one inline script (allowed by its hash, so injected markup still cannot
    # run script) and compile underscore templates, which needs eval.
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(response.get_data(as_text=True))
    )
    response.headers["Content-Security-Policy"] = CSP.replace(
        "script-src 'self';", f"script-src 'self' 'unsafe-eval' {hashes};"
    )
    return response


def metrics_endpoint():
    """Prometheus metrics, for admins or a scraper that holds METRICS_TOKEN."""
    if not _scraper():
        if not current_user.is_authenticated:
            # Scrapers are machines: a 401 they can report, not a login page.
            return "Se requiere un token.\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}
        if not current_user.is_admin:
            abort(404)
    body, content_type = metrics.exposition(request.headers.get("Accept"), *_collectors())
    return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}


def _scraper() -> bool:
    expected = current_app.config.get("METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def _collectors() -> tuple:
    """What a scrape reads from Redis: the queue, and the workers' counters."""
    return (
        metrics.QueueCollector(get_redis(), [current_app.config["RQ_QUEUE"]]),
        metrics.SharedCollector(get_redis()),
    )


@bp.get("/health")
def health():
    """System health at a glance; htmx polls the fragment every 5 s."""
    template = "admin/_health.html" if request.headers.get("HX-Request") else "admin/health.html"
    return render_template(template, **health_figures(), error_labels=ERROR_LABELS)


def health_figures() -> dict:
    """The figures of the health page, from the same scrape /metrics serves."""
    found = metrics.samples(*_collectors())

    def total(name: str, **labels) -> float:
        return sum(
            s.value
            for s in found.get(name, ())
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    buckets = [
        (float(s.labels["le"]), s.value)
        for s in found.get("expense_sync_broadcast_latency_seconds_bucket", ())
    ]
    emails, now = total("expense_sync_emails_processed_total"), time.time()
    return {
        "open_streams": int(total("expense_sync_open_streams")),
        "emails": int(emails),
        "emails_per_second": _rate(emails, now),
        "sampled_at": now,
        "latency_ms": {q: _ms(metrics.quantile(q / 100, buckets)) for q in (50, 95, 99)},
        "queue_up": bool(total("expense_sync_queue_up")),
        "queue_depth": int(total("expense_sync_queue_depth")),
        "failed_jobs": int(total("expense_sync_queue_failed_jobs")),
        "workers": int(total("expense_sync_workers")),
        "errors": {
            kind: int(total("expense_sync_errors_total", type=kind)) for kind in metrics.ERROR_TYPES
        },
        "refusals": int(total("expense_sync_stream_refusals_total")),
        "failures": db.session.scalars(
            # Newest first by id: the primary key index serves it without a scan of all rows.
            db.select(SyncSessionAccount)
            .filter_by(status=AccountStatus.FAILED)
            .order_by(SyncSessionAccount.id.desc())
            .limit(RECENT_FAILURES)
        ).all(),
    }


def _rate(emails: float, now: float) -> float | None:
    # The fragment sends back the count and time it showed (hx-vals): any web process can
    # then tell the rate since the previous poll, with no state kept on the server.
    try:
        before, then = float(request.args["emails"]), float(request.args["at"])
    except (KeyError, ValueError):
        return None
    if not 0 < now - then <= 60 or emails < before:  # stale, or counters restarted
        return None
    return (emails - before) / (now - then)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
