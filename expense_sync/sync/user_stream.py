"""GET /sync/stream: one stream per browser that follows whatever the user's syncs do.

An idle dashboard listens too: a sync started anywhere (another tab or device, the command
line, the schedule) appears in every open view as its coordinator starts it, is followed
live to its end, and the stream then waits for the next one. The per-session stream
(stream.py) stays for pages that watch one given session.
"""

import logging

from flask import Response, current_app, request
from flask_login import current_user

from .. import metrics
from ..events import get_hub
from ..extensions import db, limiter
from ..progress import TERMINAL_STATES, newer
from . import bp
from .feed import CLOSED, WidgetFeed, position_in, session_of, slots
from .stream import HEARTBEAT_SECONDS, event_stream, refuse_foreign_origin, stream_key

log = logging.getLogger(__name__)

# A named event, not a comment: the page's htmx SSE extension surfaces events only, and the
# page tells a live stream from a silent one (a buffering proxy, a dead connection) by them.
# It is also the first thing sent, at once: an idle stream has nothing else to say.
HEARTBEAT = b"event: heartbeat\n\n"


class Following:
    """The session a user stream shows now: its topic, cursor and the last event sent."""

    def __init__(self, hub, feed: WidgetFeed, last_event_id: str | None = None):
        self.hub, self.token = hub, feed.token
        self.topic = hub.subscribe(feed.token, feed)  # before reading: nothing falls between
        try:
            self.cursor = self.topic.seq
            opening = (feed.catch_up(last_event_id) if last_event_id else None) or feed.snapshot()
            self.frames = [feed.frame(event_id, payload) for event_id, payload, _ in opening]
        except BaseException:
            hub.unsubscribe(self.topic)
            raise
        self.sent, payload = opening[-1][:2]
        self.topic.opened(self.sent, payload["state"])
        self.done = payload["state"]["status"] in TERMINAL_STATES

    def close(self) -> None:
        if self.topic is not None:
            self.hub.unsubscribe(self.topic)
            self.topic = None


def feed_of(app, urls, user_id: int, token: str | None) -> WidgetFeed | None:
    """The feed of the user's session `token`, or of their newest one."""
    with app.app_context():
        return WidgetFeed.of(app, urls, user_id, token)


@bp.get("/sync/stream")
@limiter.limit("10 per minute", key_func=stream_key)
def user_stream():
    """Stream the widget of whatever sync the user runs, and wait for the next one."""
    refuse_foreign_origin()
    if request.method == "HEAD":
        return Response(mimetype="text/event-stream")
    app, user_id = current_app._get_current_object(), current_user.id
    # A stream lives for minutes: the connection that loaded the user goes back to the pool
    # now (each lookup below takes one and gives it back), or 15 open dashboards would hold
    # every connection and the next one would wait for the pool's timeout.
    db.session.close()
    urls = app.create_url_adapter(request)
    # The session the page shows, and whether it shows how it ended: from the last event
    # it saw when it reconnects, else from the page.
    last_event_id = request.headers.get("Last-Event-ID")
    shown = session_of(last_event_id) or request.args.get("shown") or None
    shows_end = request.args.get("ended") == "1" and not session_of(last_event_id)
    hub = get_hub(app)
    watch = hub.watch(user_id)  # before looking: a start meanwhile wakes the stream
    try:
        seen = watch.seq
        feed = feed_of(app, urls, user_id, None)
        following = None
        if feed is not None:
            following = Following(
                hub, feed, position_in(feed.token, last_event_id) if feed.token == shown else None
            )
            if following.done and feed.token == shown and shows_end:
                following.frames = []  # the page already shows how it ended
    except BaseException:
        hub.unwatch(watch)
        raise
    log.info("user stream opened user=%s ip=%s", user_id, request.remote_addr)
    slot = slots.claim(user_id, app.config["MAX_STREAMS_PER_USER"])
    body = _follow(app, urls, hub, watch, seen, following, slot)
    next(body)  # into its try block: from now on closing or dropping it unsubscribes
    return event_stream(body)


def _follow(app, urls, hub, watch, seen: int, following: Following | None, slot):
    """Send the followed session's frames to its end, then wait for the user's next one."""
    metrics.stream_opened()
    try:
        yield
        yield HEARTBEAT
        if following is not None:
            yield from following.frames
            following.frames = None
            yield b""  # let the server drop its reference to the last frame while we wait
        while not slot.closed:
            if following is not None and not following.done:
                yield from _next_frames(following)
                continue
            if following is not None:
                following.close()
            wake = watch.wake
            if watch.seq == seen:
                if not wake.wait(HEARTBEAT_SECONDS):
                    yield HEARTBEAT
                continue
            seen, token = watch.seq, watch.started  # None after a reconnect: ask the database
            feed = feed_of(app, urls, watch.user_id, token)
            if feed is None or (following is not None and feed.token == following.token):
                continue
            following = Following(hub, feed)
            yield from following.frames
            following.frames = None
            yield b""
        yield CLOSED
    finally:
        if following is not None:
            following.close()
        slots.release(slot)
        hub.unwatch(watch)
        metrics.stream_closed()


def _next_frames(following: Following):
    """The followed topic's new frames, or a heartbeat after a quiet while."""
    topic = following.topic
    wake = topic.wake
    frames = topic.since(following.cursor)
    if not frames:
        if not wake.wait(HEARTBEAT_SECONDS):
            yield HEARTBEAT
        return
    for frame in frames:
        following.cursor = frame.seq
        if frame.reset or newer(following.sent, frame.event_id) is not False:
            yield frame.after(following.sent)
            metrics.record_event_sent(frame.published_at)
            following.sent, following.done = frame.event_id, frame.terminal
            if following.done:
                break
    yield b""
