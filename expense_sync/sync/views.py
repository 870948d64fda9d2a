"""Pages and fragments of the sync widget; page, polling and stream render the same template."""

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db, own_or_404
from ..models import Expense, SyncSession, UnreadableEmail
from ..progress_rows import account_labels
from . import bp, control

HISTORY_PAGE = 20


@bp.before_request
def _require_login():
    """Every sync page needs a logged-in user; the event stream answers 401 instead."""
    if not current_user.is_authenticated:
        if request.endpoint in ("sync.stream", "sync.user_stream", "sync.status_json"):
            abort(401)
        return current_app.login_manager.unauthorized()
    return None


def own_session(token: str) -> SyncSession:
    """The current user's session by token; 404 for anyone else's or an unknown token."""
    return own_or_404(SyncSession, token=token)


def widget_context(session: SyncSession | None) -> dict:
    """Everything the widget template needs, from one state dict."""
    return {
        "sync_session": session,
        "state": control.state(session) if session else None,
        "labels": account_labels(session) if session else {},
        "last_completed": control.last_completed(current_user.id),
    }


def render_widget(session: SyncSession | None):
    return render_template("sync/_widget.html", **widget_context(session))


@bp.get("/sync")
def index():
    """The dashboard with the sync widget."""
    session = control.active_session(current_user.id) or control.latest_session(current_user.id)
    return render_template(
        "sync/index.html", has_accounts=bool(current_user.accounts), **widget_context(session)
    )


@bp.post("/sync_sessions")
def start():
    """Start syncing every account (or show the sync already running)."""
    try:
        session = control.start(current_user)
    except control.NoAccounts:
        flash("Agregue una cuenta de correo antes de sincronizar.", "error")
        return _redirect_or_hx(url_for("accounts.new"))
    except control.QueueUnavailable:
        flash(
            "No se pudo iniciar la sincronización: el servicio de tareas no responde. "
            "Intente de nuevo en un momento.",
            "error",
        )
        return _redirect_or_hx(url_for("sync.index"))
    if request.headers.get("HX-Request"):
        return render_widget(session)
    return redirect(url_for("sync.index"))


@bp.post("/sync_sessions/<token>/pause")
def pause(token: str):
    """Pause a running sync after the current batch."""
    session = own_session(token)
    control.pause(session)
    return render_widget(session)


@bp.post("/sync_sessions/<token>/resume")
def resume(token: str):
    """Resume a paused sync from its checkpoints."""
    session = own_session(token)
    control.resume(session)
    return render_widget(session)


@bp.get("/sync/widget")
def widget():
    """The widget of the user's active (else latest) sync, for polling when streams fail."""
    user_id = current_user.id
    return render_widget(control.active_session(user_id) or control.latest_session(user_id))


@bp.get("/sync_sessions/<token>/status")
def status(token: str):
    """The widget fragment, for polling."""
    return render_widget(own_session(token))


@bp.get("/sync_sessions/<token>/status.json")
def status_json(token: str):
    """The session's state as JSON."""
    return jsonify(control.state(own_session(token)))


@bp.get("/sync_sessions")
def history():
    """Past and current syncs, newest first."""
    page = db.paginate(
        db.select(SyncSession)
        .filter_by(user_id=current_user.id)
        .order_by(SyncSession.created_at.desc(), SyncSession.id.desc()),
        per_page=HISTORY_PAGE,
        error_out=False,
    )
    return render_template("sync/history.html", page=page)


@bp.get("/sync_sessions/<token>")
def detail(token: str):
    """One sync: per-account results, errors, detected expenses and unreadable emails."""
    session = own_session(token)
    expenses = db.session.scalars(
        db.select(Expense)
        .filter_by(sync_session_id=session.id, deleted_at=None)
        .order_by(Expense.occurred_at.desc())
        .limit(200)
    ).all()
    unreadable = db.session.scalars(
        db.select(UnreadableEmail)
        .filter_by(sync_session_id=session.id, status="unparsed")
        .order_by(UnreadableEmail.id)
    ).all()
    return render_template(
        "sync/detail.html",
        sync_session=session,
        state=control.state(session),
        expenses=expenses,
        unreadable=unreadable,
    )


def _redirect_or_hx(location: str):
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": location}
    return redirect(location)
