"""How a sync session's events become SSE frames of the widget, and the per-user cap on
open streams: what both stream views (stream.py, user_stream.py) send and hold."""

import re
import threading
from collections import deque
from datetime import UTC, datetime
from types import SimpleNamespace

from ..extensions import db, get_redis
from ..models import SyncSession
from ..progress import Progress
from ..states import SessionStatus
from . import control
from .views import account_labels

# Sent to the oldest stream of a user who opened more than MAX_STREAMS_PER_USER in this
# process: the page polls instead, and does not reopen it (that would close another).
CLOSED = b"event: closed\ndata: polling\n\n"
# SSE ends a line at CR, LF or CRLF: all three, with the indentation and blank lines after.
_LINE_BREAK = re.compile(r"[\r\n]\s*")
_ANY_BREAK = re.compile(r"\r\n|\r|\n")


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


slots = Slots()


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
            if state is None or state["status"] in SessionStatus.TERMINAL:
                try:
                    state = control.state(db.session.get(SyncSession, self.session_id))
                finally:
                    db.session.close()
            event_id = progress.last_event_id(self.token) or "0-0"
        return [(event_id, {"kind": "snapshot", "message": None, "state": state}, True)]
