"""GET /sync_sessions/<token>/stream: Server-Sent Events carrying the widget fragment."""

import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import urlsplit

from flask import Response, abort, current_app, request
from flask_login import current_user

from .. import metrics
from ..events import get_hub
from ..extensions import db, get_redis, limiter
from ..models import SyncSession
from ..progress import TERMINAL_STATES, Progress, newer
from . import bp, control
from .views import account_labels, own_session

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
HEARTBEAT = b": heartbeat\n\n"
# Sent to the oldest stream of a user who opened more than MAX_STREAMS_PER_USER in this
# process: the page polls instead, and does not reopen it (that would close another).
CLOSED = b"event: closed\ndata: polling\n\n"
# SSE ends a line at CR, LF or CRLF: all three, with the indentation and blank lines after.
_LINE_BREAK = re.compile(r"[\r\n]\s*")
_ANY_BREAK = re.compile(r"\r\n|\r|\n")


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
        log.info(
            "stream refused: foreign origin user=%s ip=%s", current_user.id, request.remote_addr
        )
        metrics.stream_refused("foreign_origin")
        abort(403)
    session = own_session(token)
    if request.method == "HEAD":
        return Response(mimetype="text/event-stream")
    log.info("stream opened user=%s ip=%s", current_user.id, request.remote_addr)
    app = current_app._get_current_object()
    feed = WidgetFeed(app, session, app.create_url_adapter(request), current_user.id)
    # A stream lives for minutes: give its database connection back to the pool now.
    db.session.close()
    last_event_id = position_in(
        token, request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    )
    hub = get_hub(app)
    topic = hub.subscribe(token, feed)  # before catching up, so nothing falls between
    try:
        cursor = topic.seq
        opening = (feed.catch_up(last_event_id) if last_event_id else None) or feed.snapshot()
        frames = [feed.frame(event_id, payload) for event_id, payload, _ in opening]
    except BaseException:
        hub.unsubscribe(topic)
        raise
    sent, payload = opening[-1][:2]
    topic.seen(sent)
    slot = _slots.claim(current_user.id, current_app.config["MAX_STREAMS_PER_USER"])
    body = _follow(
        hub, topic, cursor, sent, frames, payload["state"]["status"] in TERMINAL_STATES, slot
    )
    next(body)  # into its try block: from now on closing or dropping it unsubscribes
    # The generator itself is the WSGI body (direct_passthrough): no wrapper generators
    # around it, so every waiting stream's greenlet saves fewer C stack frames.
    return Response(
        body,
        mimetype="text/event-stream",
        direct_passthrough=True,
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


def _follow(hub, topic, cursor: int, sent: str, frames: list[bytes], done: bool, slot):
    """The opening frames, then the topic's new frames as they come, until the terminal one.

    Runs for minutes in its own greenlet per stream and holds only these locals: the frames
    are the topic's, rendered once for every stream of the session in this process.
    """
    metrics.stream_opened()
    try:
        yield  # where the view leaves it
        yield from frames
        frames = None
        yield b""  # let the server drop its reference to the last frame while we wait
        while not done:
            if slot.closed:  # a newer stream of the user took its place (within a heartbeat)
                yield CLOSED
                return
            wake = topic.wake
            frames = topic.since(cursor)
            if not frames:
                if not wake.wait(HEARTBEAT_SECONDS):
                    yield HEARTBEAT
                continue
            for frame in frames:
                cursor = frame.seq
                if frame.reset or newer(sent, frame.event_id) is not False:
                    yield frame.data
                    metrics.record_event_sent(frame.published_at)
                    sent, done = frame.event_id, frame.terminal
                    if done:
                        break
            frames = frame = None
            yield b""
    finally:
        _slots.release(slot)
        hub.unsubscribe(topic)
        metrics.stream_closed()


def position_in(token: str, last_event_id: str | None) -> str | None:
    """The event id within session `token` that a client's Last-Event-ID names, if any.

    Frames are numbered "<token>:<event id>", so a stream that follows one sync after another
    knows from the header alone which sync the browser last saw; a bare event id (a client
    of the per-session stream from before) is taken as the session's own.
    """
    if not last_event_id:
        return None
    seen, _, event_id = last_event_id.rpartition(":")
    return event_id if seen in ("", token) else None


def session_of(last_event_id: str | None) -> str | None:
    """The session token a Last-Event-ID names, or None for a bare or missing one."""
    return (last_event_id or "").rpartition(":")[0] or None


def sse_data(text: str, breaks: re.Pattern = _ANY_BREAK) -> str:
    """Text as SSE data lines: every line break of any kind starts a new "data:" line, so no
    value (an IMAP host with a CR in a message) can end the event or add a field to it."""
    return "data: " + breaks.sub("\ndata: ", text) + "\n"


class Slot:
    """One open stream of a user in this process."""

    __slots__ = ("user_id", "closed")

    def __init__(self, user_id: int):
        self.user_id, self.closed = user_id, False


class Slots:
    """Each user's open streams in this process, oldest first: past the cap the oldest is
    closed. Ten tabs share one stream (the leading tab's), so the cap is only reached by
    scripts or leaks; with N web processes a user holds at most N times the cap."""

    def __init__(self):
        self._open: dict[int, deque[Slot]] = {}
        self._lock = threading.Lock()

    def claim(self, user_id: int, cap: int) -> Slot:
        slot = Slot(user_id)
        with self._lock:
            streams = self._open.setdefault(user_id, deque())
            streams.append(slot)
            while len(streams) > cap:
                streams.popleft().closed = True
        return slot

    def release(self, slot: Slot) -> None:
        with self._lock:
            streams = self._open.get(slot.user_id)
            if streams is not None and slot in streams:
                streams.remove(slot)
                if not streams:
                    del self._open[slot.user_id]


_slots = Slots()


class WidgetFeed:
    """How one session's events become SSE frames of the widget, with plain values only:
    a topic keeps its feed as long as streams watch, and ORM rows would pin a session's
    worth of objects."""

    def __init__(self, app, session, urls, user_id: int):
        last = control.last_completed(user_id)
        self.app, self.token, self.session_id = app, session.token, session.id
        self.template = app.jinja_env.get_template("sync/_widget.html")
        # Topics render from the event reader, outside any request: URLs are built as the
        # opening request would build them (its application root), with no context to push.
        self.context = {
            "sync_session": SimpleNamespace(token=session.token, finished_at=session.finished_at),
            "labels": account_labels(session),
            "last_completed": SimpleNamespace(finished_at=last.finished_at) if last else None,
            "url_for": lambda endpoint, **values: urls.build(endpoint, values),
            # One rendering serves every tab and browser of the user: nothing of one browser
            # session in it (forms take the CSRF token from the page's hx-headers).
            "shared": True,
        }

    def frame(self, event_id: str, payload: dict) -> bytes:
        state = payload["state"]
        context = self.context
        if state.get("finished_at"):  # ended after this stream opened: "Terminó hace…"
            finished = datetime.fromtimestamp(state["finished_at"] / 1000, UTC)
            context = {
                **context,
                "sync_session": SimpleNamespace(token=self.token, finished_at=finished),
            }
        html = self.template.render(state=state, **context)
        # Indentation is a third of the fragment and means nothing to the browser: every
        # update goes to every open tab, so it is left out (the line breaks stay).
        # Unnamed: htmx's SSE extension swaps these into the widget; named ones (the toast)
        # become DOM events.
        text = f"id: {self.token}:{event_id}\n{sse_data(html.strip(), _LINE_BREAK)}\n"
        if payload.get("message"):
            text += f"event: toast\n{sse_data(payload['message'])}\n"
        return text.encode()

    def catch_up(self, last_id: str | None) -> list[tuple[str, dict, bool]]:
        """The events after last_id ([] if none), or a snapshot if they are not all kept."""
        with self.app.app_context():
            replay = Progress(get_redis()).events_after(self.token, last_id) if last_id else None
        if replay is None:
            return self.snapshot()
        return [(event_id, payload, False) for event_id, payload in replay]

    def snapshot(self) -> list[tuple[str, dict, bool]]:
        """The full current state: from Redis while it runs, else from the database."""
        with self.app.app_context():
            progress = Progress(get_redis())
            state = progress.snapshot(self.token)
            if state is None or state["status"] in TERMINAL_STATES:
                try:
                    state = control.state(db.session.get(SyncSession, self.session_id))
                finally:
                    db.session.close()
            event_id = progress.last_event_id(self.token) or "0-0"
        return [(event_id, {"kind": "snapshot", "message": None, "state": state}, True)]


def streams_apart(wsgi_app: Callable) -> Callable:
    """WSGI middleware for gevent: a stream's request is handled in a greenlet of its own,
    which ends once the response is ready, and not in the connection's greenlet.

    A greenlet keeps, for as long as it lives, the memory its deepest call touched (each
    has its own stack of Python frames), and the connection's greenlet lives as long as the
    stream. Flask's dispatch, the login and the snapshot's rendering go deep; run apart,
    they leave the long-lived greenlet only the shallow loop that waits and writes: about
    5 KB less per open stream (bench/sse.py). Without gevent's patching (the app loaded
    before it, or no gevent at all) it returns the app unchanged.
    """
    from gevent import monkey, spawn

    if not monkey.is_module_patched("socket"):
        return wsgi_app

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").endswith("/stream"):
            return spawn(wsgi_app, environ, start_response).get()
        return wsgi_app(environ, start_response)

    return app


REFUSED = {401: "not_logged_in", 404: "not_found", 429: "rate_limited"}


@bp.after_request
def _log_refusal(response):
    """Log and count the subscriptions refused before the stream view could open one."""
    reason = REFUSED.get(response.status_code) if request.endpoint == "sync.stream" else None
    if reason:
        log.info(
            "stream refused: %s user=%s ip=%s",
            reason.replace("_", " "),
            getattr(current_user, "id", None),
            request.remote_addr,
        )
        metrics.stream_refused(reason)
    return response
