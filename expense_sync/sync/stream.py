"""GET /sync_sessions/<token>/stream: Server-Sent Events carrying one session's widget.

The view, the loop that follows the session, and what both stream views share on the web
side: the limit key, the origin check, the response. The frames come from feed.py.
"""

import logging
from urllib.parse import urlsplit

from flask import Response, abort, current_app, request
from flask_login import current_user

from .. import metrics
from ..events import get_hub
from ..extensions import limiter
from ..progress import TERMINAL_STATES, newer
from . import bp
from .feed import CLOSED, WidgetFeed, position_in, slots

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
HEARTBEAT = b": heartbeat\n\n"


def stream_key() -> str:
    """Rate limits count a user's stream openings, whatever the address."""
    return f"stream:{current_user.id}" if current_user.is_authenticated else "anonymous"


def refuse_foreign_origin() -> None:
    """403 for a stream asked for by another site's page (no Origin: same site)."""
    origin = request.headers.get("Origin")
    if not origin:
        return
    parts = urlsplit(origin)
    if f"{parts.scheme}://{parts.netloc}" != request.host_url.rstrip("/"):
        log.info(
            "stream refused: foreign origin user=%s ip=%s", current_user.id, request.remote_addr
        )
        metrics.stream_refused("foreign_origin")
        abort(403)


def event_stream(body) -> Response:
    """The streaming response. The generator itself is the WSGI body (direct_passthrough):
    no wrapper generators around it, so every waiting stream's greenlet saves fewer C stack
    frames."""
    return Response(
        body,
        mimetype="text/event-stream",
        direct_passthrough=True,
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@bp.get("/sync_sessions/<token>/stream")
@limiter.limit("10 per minute", key_func=stream_key)
def stream(token: str):
    """Stream the widget: the current state first, then every update, until the end."""
    refuse_foreign_origin()
    app = current_app._get_current_object()
    feed = WidgetFeed.of(app, app.create_url_adapter(request), current_user.id, token)
    if feed is None:
        abort(404)  # another user's session is as unknown as a missing one
    if request.method == "HEAD":
        return Response(mimetype="text/event-stream")
    log.info("stream opened user=%s ip=%s", current_user.id, request.remote_addr)
    seen = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    return event_stream(follow_session(app, feed, position_in(token, seen), current_user.id))


def follow_session(app, feed: WidgetFeed, last_event_id: str | None, user_id: int):
    """The stream's body, primed: subscribed to the session's topic and holding its slot."""
    hub = get_hub(app)
    topic = hub.subscribe(feed.token, feed)  # before catching up, so nothing falls between
    try:
        cursor = topic.seq
        opening = (feed.catch_up(last_event_id) if last_event_id else None) or feed.snapshot()
        frames = [feed.frame(event_id, payload) for event_id, payload, _ in opening]
    except BaseException:
        hub.unsubscribe(topic)
        raise
    sent, payload = opening[-1][:2]
    topic.opened(sent, payload["state"])
    slot = slots.claim(user_id, app.config["MAX_STREAMS_PER_USER"])
    done = payload["state"]["status"] in TERMINAL_STATES
    body = _follow(hub, topic, cursor, sent, frames, done, slot)
    next(body)  # into its try block: from now on closing or dropping it unsubscribes
    return body


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
                    yield frame.after(sent)
                    metrics.record_event_sent(frame.published_at)
                    sent, done = frame.event_id, frame.terminal
                    if done:
                        break
            frames = frame = None
            yield b""
    finally:
        slots.release(slot)
        hub.unsubscribe(topic)
        metrics.stream_closed()


REFUSED = {401: "not_logged_in", 404: "not_found", 429: "rate_limited"}


@bp.after_request
def _log_refusal(response):
    """Log and count the subscriptions refused before the stream view could open one."""
    streams = ("sync.stream", "sync.user_stream")
    reason = REFUSED.get(response.status_code) if request.endpoint in streams else None
    if reason:
        log.info(
            "stream refused: %s user=%s ip=%s",
            reason.replace("_", " "),
            getattr(current_user, "id", None),
            request.remote_addr,
        )
        metrics.stream_refused(reason)
    return response
