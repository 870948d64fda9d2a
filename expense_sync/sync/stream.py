"""GET /sync_sessions/<token>/stream: Server-Sent Events carrying the widget fragment."""

import json
import logging
import queue
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

from flask import Response, abort, current_app, render_template, request, stream_with_context
from flask_login import current_user

from .. import metrics
from ..events import RESYNC, get_hub
from ..extensions import db, get_redis, limiter
from ..models import SyncSession
from ..progress import TERMINAL_STATES, Progress
from . import bp, control
from .views import own_session

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15


def _stream_key() -> str:
    return f"stream:{current_user.id}" if current_user.is_authenticated else "anonymous"


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


@bp.get("/sync_sessions/<token>/stream")
@limiter.limit("10 per minute", key_func=_stream_key)
def stream(token: str):
    """Stream the widget: the current state first, then every update, until the end."""
    if not _same_origin():
        log.info("stream refused: foreign origin user=%s ip=%s", current_user.id,
                 request.remote_addr)
        metrics.stream_refused("foreign_origin")
        abort(403)
    session = own_session(token)
    log.info("stream opened user=%s ip=%s", current_user.id, request.remote_addr)
    context = _stream_context(session)
    session_id = session.id
    # A stream lives for minutes: give its database connection back to the pool now.
    db.session.close()
    last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    hub = get_hub(current_app._get_current_object())
    inbox = hub.subscribe(token)  # before reading the snapshot, so nothing falls between

    def render(state: dict) -> str:
        return render_template("sync/_widget.html", state=state, **context)

    def generate() -> Iterator[str]:
        progress = Progress(get_redis())
        metrics.stream_opened()
        try:
            sent, done = yield from _catch_up(progress, session_id, token, last_event_id, render)
            while not done:
                try:
                    item = inbox.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield b": heartbeat\n\n"
                    continue
                if item is RESYNC:
                    sent, done = yield from _catch_up(progress, session_id, token, sent, render)
                    continue
                event_id, data = item
                if sent and _newer(sent, event_id) is False:
                    continue
                payload = json.loads(data)
                yield from _event(event_id, payload, render)
                yield b""  # let the server drop its reference to the event while we wait
                metrics.record_event_sent(payload["state"].get("published_at"))
                sent = event_id
                done = payload["state"]["status"] in TERMINAL_STATES
        finally:
            hub.unsubscribe(token, inbox)
            metrics.stream_closed()

    return Response(stream_with_context(generate()), mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no",
    })


def _catch_up(progress, session_id, token, last_id, render):
    """Replay what a client missed, or send the full state; returns (last id, finished)."""
    replay = progress.events_after(token, last_id) if last_id else None
    if replay:
        for event_id, payload in replay:
            yield from _event(event_id, payload, render)
        return replay[-1][0], replay[-1][1]["state"]["status"] in TERMINAL_STATES
    state = progress.snapshot(token)
    if state is None or state["status"] in TERMINAL_STATES:
        try:
            state = control.state(db.session.get(SyncSession, session_id))
        finally:
            db.session.close()
    event_id = progress.last_event_id(token) or "0-0"
    yield from _event(event_id, {"kind": "snapshot", "message": None, "state": state}, render)
    return event_id, state["status"] in TERMINAL_STATES


def _stream_context(session) -> dict:
    """What the widget needs beyond the state, as plain values: a stream keeps its context
    for minutes, and ORM rows would pin a session's worth of objects per open stream."""
    last = control.last_completed(current_user.id)
    return {
        "sync_session": SimpleNamespace(token=session.token, finished_at=session.finished_at),
        "labels": {row.email_account_id: row.email_account.address for row in session.accounts},
        "last_completed": SimpleNamespace(finished_at=last.finished_at) if last else None,
    }


def _event(event_id: str, payload: dict, render) -> Iterator[bytes]:
    html = render(payload["state"])
    data = "data: " + html.replace("\n", "\ndata: ")
    yield f"id: {event_id}\nevent: widget\n{data}\n\n".encode()
    if payload.get("message"):
        yield f"event: toast\ndata: {payload['message']}\n\n".encode()


def _newer(previous: str, current: str) -> bool | None:
    try:
        return tuple(map(int, current.split("-"))) > tuple(map(int, previous.split("-")))
    except ValueError:
        return None


REFUSED = {401: "not_logged_in", 404: "not_found", 429: "rate_limited"}


@bp.after_request
def _log_refusal(response):
    """Log and count the subscriptions refused before the stream view could open one."""
    reason = REFUSED.get(response.status_code) if request.endpoint == "sync.stream" else None
    if reason:
        log.info("stream refused: %s user=%s ip=%s", reason.replace("_", " "),
                 getattr(current_user, "id", None), request.remote_addr)
        metrics.stream_refused(reason)
    return response
