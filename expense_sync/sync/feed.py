"""How a sync session's events become SSE frames of the widget, and the per-user cap on
open streams: what both stream views (stream.py, user_stream.py) send and hold."""

import json
import re
import threading
from collections import deque
from datetime import UTC, datetime
from types import SimpleNamespace

from markupsafe import Markup

from .. import formatting
from ..extensions import db, get_redis
from ..models import SyncSession
from ..progress import Progress
from ..progress_rows import account_labels
from ..states import SessionStatus
from . import control

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


def _shape(state: dict) -> tuple:
    """What an update changes only rarely, and with it more than a few parts (the status,
    the buttons, an account's icon or error): when it changes, the whole widget is sent."""
    return (
        state["status"],
        state.get("trigger"),
        state.get("counting"),
        state.get("finished_at"),
        tuple(
            (a["id"], a["status"], a["bank"], a["counted"], a["error_message"])
            for a in state["accounts"]
        ),
    )


def _counting(state: dict) -> dict | None:
    """The "counting" of the widget: shown while a running sync counts its mail."""
    return state["counting"] if state["status"] == SessionStatus.RUNNING else None


def _figures(s: dict) -> tuple:
    return s["progress_percentage"], s["processed_emails"], s["total_emails"]


# What makes a part of an update swap out of band: htmx morphs it into its element.
OOB = Markup(' hx-swap-oob="outerMorph"')

# The widget's parts an update may send alone (templates/sync/_widget_parts.html), each
# with what it shows: it is sent when that changed since the stream's last event.
SESSION_PARTS = (
    ("percentage", lambda s: s["progress_percentage"]),
    ("processed", lambda s: s["processed_emails"]),
    ("total", lambda s: s["total_emails"]),
    ("bar", lambda s: (*_figures(s), s.get("published_at"))),
    ("counts", lambda s: (s["detected_expenses"], s["error_count"], s["failed_accounts"])),
    ("remaining", lambda s: formatting.remaining(s["time_remaining_seconds"])),
)
# Each account's: rendered with the session's counting, as in the whole widget.
ACCOUNT_PARTS = (("account_figures", _figures), ("account_bar", _figures))


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

    def __init__(self, app, urls, user_id: int, session: dict, final=None):
        """`session`: its "token", row "id" and "labels" (each account's address by id);
        `final`: its last event (id, payload) if it ended."""
        self.app, self.user_id, self.final = app, user_id, final
        self.token, self.session_id = session["token"], session["id"]
        self.template = app.jinja_env.get_template("sync/_widget.html")
        self.parts = app.jinja_env.get_template("sync/_widget_parts.html").module
        # Topics render from the event reader, outside any request: URLs are built as the
        # opening request would build them (its application root), with no context to push.
        self.context = {
            "sync_session": SimpleNamespace(token=self.token, finished_at=None),
            "labels": session["labels"],
            "url_for": lambda endpoint, **values: urls.build(endpoint, values),
            # One rendering serves every tab and browser of the user: nothing of one browser
            # session in it (forms take the CSRF token from the page's hx-headers).
            "shared": True,
        }

    @classmethod
    def of(cls, app, urls, user_id: int, token: str | None = None) -> "WidgetFeed | None":
        """The feed of the user's session `token`, or of their newest one; None if there is
        none (or it is not theirs). Needs an application context.

        A stream opens often and lives for minutes: which session is a user's newest, how it
        ended and who owns a session come from Redis, where sessions are seeded with them;
        the database answers only for sessions Redis no longer holds, and is let go at once.
        """
        progress = Progress(get_redis())
        latest = progress.latest(user_id)
        if latest is not None and token in (None, latest["token"]):
            return cls(app, urls, user_id, latest, latest["final"])
        owner = progress.owner(token) if token else None
        if owner is not None:
            if owner["user"] != user_id:
                return None
            return cls(app, urls, user_id, {"token": token, **owner})
        try:
            if token:
                row = db.session.scalar(
                    db.select(SyncSession).filter_by(token=token, user_id=user_id)
                )
            else:
                row = control.active_session(user_id) or control.latest_session(user_id)
            if row is None:
                return None
            session = {"token": row.token, "id": row.id, "labels": account_labels(row)}
            if not token:
                progress.remember_latest(user_id, row.token, row.id, session["labels"])
            return cls(app, urls, user_id, session)
        finally:
            db.session.close()

    def frame(self, event_id: str, payload: dict) -> bytes:
        """The whole widget at this event."""
        state = payload["state"]
        context = self.context
        if state.get("finished_at"):  # an ended one says when: "Terminó hace…"
            finished = datetime.fromtimestamp(state["finished_at"] / 1000, UTC)
            context = {
                **context,
                "sync_session": SimpleNamespace(token=self.token, finished_at=finished),
            }
        html = self.template.render(state=state, event_id=event_id, **context)
        # Indentation is a third of the fragment and means nothing to the browser: every
        # update goes to every open tab, so it is left out (the line breaks stay).
        # Unnamed: htmx's SSE extension swaps these into the widget; named ones (the toast)
        # become DOM events.
        return self._event(event_id, html.strip(), payload)

    def delta(self, event_id: str, base_id: str, before: dict, payload: dict) -> bytes | None:
        """Only the parts that changed since state `before` (event `base_id`), out of band;
        None when more than those changed (the whole widget is sent then). It opens with
        the event it starts from, in a comment: a page that shows another state (a poll or
        a button answered meanwhile) asks for the whole widget instead of applying it."""
        state = payload["state"]
        if _shape(before) != _shape(state):
            return None
        parts, html = self.parts, []
        for name, shows in SESSION_PARTS:
            if shows(before) != shows(state):
                html.append(getattr(parts, name)(state, OOB))
        counting = _counting(state)
        for old, account in zip(before["accounts"], state["accounts"], strict=True):
            for name, shows in ACCOUNT_PARTS:
                if shows(old) != shows(account):
                    html.append(getattr(parts, name)(account, counting, OOB))
        return self._event(event_id, f"<!--base:{base_id}-->" + "\n".join(html), payload)

    def _event(self, event_id: str, html: str, payload: dict) -> bytes:
        text = f"id: {self.token}:{event_id}\n{sse_data(html, _LINE_BREAK)}\n"
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
        """The full current state: the newest event while it runs, how it ended once it
        did (kept in Redis for the user's newest session, else from the database).

        While it runs the state is exactly the one its event id names, so the updates after
        it can carry only what changed."""
        if self.final is not None:
            event_id, payload = self.final  # its toast was shown when it came
            return [(event_id, {**payload, "message": None}, True)]
        with self.app.app_context():
            progress = Progress(get_redis())
            newest = progress.newest_event(self.token)
            if newest is not None and progress.statuses([self.token])[0] in SessionStatus.ACTIVE:
                event_id, payload = newest
                return [(event_id, {**payload, "message": None}, True)]
            state = progress.snapshot(self.token)
            event_id = newest[0] if newest else "0-0"
            if state is None or state["status"] in SessionStatus.TERMINAL:
                try:
                    state = control.state(db.session.get(SyncSession, self.session_id))
                finally:
                    db.session.close()
            payload = {"kind": "snapshot", "message": None, "state": state}
            if state["status"] in SessionStatus.TERMINAL:
                progress.keep_final(self.user_id, self.token, event_id, json.dumps(payload))
        return [(event_id, payload, True)]
