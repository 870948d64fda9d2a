"""The per-process event reader: one Redis subscription fans events out to every stream.

Browsers never get a Redis connection of their own. The reader keeps one Topic per session
watched in this process: each event is rendered once into its SSE frame, kept among the
topic's recent frames, and every stream of that session wakes and writes the same bytes. A
stream holds a cursor, not a queue or a copy.

Pub/sub drops what is published while the reader is disconnected. A new stream waits for
the reader's subscription before reading its own snapshot, and after a reconnection each
topic catches up by itself: it replays the session's Redis Stream after the last event it
saw, or takes a fresh snapshot that every stream sends.
"""

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from itertools import islice
from typing import Protocol

import redis

from .extensions import redis_client
from .progress import CHANNEL, TERMINAL_STATES, newer

log = logging.getLogger(__name__)

# Frames kept per topic: a stream further behind (its socket blocked for seconds) skips
# to the newest, which carries the full state.
RECENT_FRAMES = 4
YIELD_AFTER = 0.002  # seconds of delivering before the reader lets the streams write
CONNECT_WAIT = 5.0  # seconds a new stream waits for the reader's Redis subscription


class Frame:
    """One event of a topic: what its streams send, rendered once in this process.

    A stream whose browser shows the state of `base`, the event before it, sends `delta`:
    only the parts that changed (Feed.delta). Any other stream (it opened or fell behind
    meanwhile), or every stream of a frame without a delta, sends the whole widget, which
    a frame with a delta renders the first time a stream needs it.
    """

    __slots__ = (
        "seq",
        "event_id",
        "base",
        "delta",
        "terminal",
        "reset",
        "published_at",
        "_whole",
        "_render",
    )

    def __init__(
        self,
        event_id: str,
        state: dict,
        whole: bytes | Callable[[], bytes],
        base: str | None = None,
        delta: bytes | None = None,
        reset: bool = False,
    ):
        self.seq = 0  # this process's order within the topic, set when the topic adds it
        self.event_id = event_id  # the Redis Stream id, sent as the SSE id
        self.base, self.delta = base, delta
        self.terminal = state["status"] in TERMINAL_STATES
        self.reset = reset  # a snapshot after a gap: sent even if its id is not newer
        self.published_at = state.get("published_at")
        # The whole frame's bytes, or how to render them.
        self._whole: bytes | None = None
        self._render: Callable[[], bytes] | None = None
        if callable(whole):
            self._render = whole
        else:
            self._whole = whole

    def after(self, shown: str | None) -> bytes:
        """The bytes for a browser that shows the state of event `shown`."""
        if self.delta is not None and self.base == shown:
            return self.delta
        if self._whole is None:
            assert self._render is not None
            self._whole, self._render = self._render(), None
        return self._whole


class Feed(Protocol):
    """What a topic needs from the web layer: rendering and catching up."""

    def frame(self, event_id: str, payload: dict) -> bytes: ...

    def delta(self, event_id: str, base_id: str, before: dict, payload: dict) -> bytes | None: ...

    def catch_up(self, last_id: str | None) -> list[tuple[str, dict, bool]]: ...


class Topic:
    """One session's recent frames in this process, and the wake-up its streams wait on."""

    def __init__(self, token: str, feed: Feed):
        self.token, self.feed = token, feed
        self.streams = 0
        self.seq = 0  # of the newest frame
        self.last_id: str | None = None  # newest event id seen, for catching up
        # The newest event's id and state (of a frame or of a stream's opening): what the
        # next frame's delta starts from.
        self._base: tuple[str, dict] | None = None
        self.wake = threading.Event()  # replaced, after being set, by every new frame
        self._frames: deque[Frame] = deque(maxlen=RECENT_FRAMES)
        self._lock = threading.Lock()

    def add(self, event_id: str, payload: dict, reset: bool = False) -> None:
        state, base = payload["state"], self._base
        follows = base is None or reset or newer(base[0], event_id) is not False
        delta = None
        if base is not None and follows and not reset:
            delta = self.feed.delta(event_id, base[0], base[1], payload)
        if base is None or delta is None:
            frame = Frame(event_id, state, self.feed.frame(event_id, payload), reset=reset)
        else:
            whole = partial(self.feed.frame, event_id, payload)
            frame = Frame(event_id, state, whole, base[0], delta)
        with self._lock:
            self.seq = frame.seq = self.seq + 1
            self._frames.append(frame)
            self.seen(event_id, reset)
            if follows:
                self._base = (event_id, state)
            wake, self.wake = self.wake, threading.Event()
        wake.set()

    def opened(self, event_id: str, state: dict) -> None:
        """A stream opened on the state of event_id: the next frame may start from it."""
        with self._lock:
            self.seen(event_id)
            if self._base is None or newer(self._base[0], event_id):
                self._base = (event_id, state)

    def seen(self, event_id: str, reset: bool = False) -> None:
        if reset or self.last_id is None or newer(self.last_id, event_id):
            self.last_id = event_id

    def since(self, seq: int) -> list[Frame]:
        """The frames after seq; the ones still kept if the stream fell further behind."""
        with self._lock:
            if self.seq <= seq:
                return []
            return list(islice(self._frames, max(0, seq + 1 - self._frames[0].seq), None))

    def catch_up(self) -> None:
        for event_id, payload, reset in self.feed.catch_up(self.last_id):
            self.add(event_id, payload, reset)


class UserWatch:
    """One user's open views in this process, waiting to hear that a session started."""

    def __init__(self, user_id: int):
        self.user_id = user_id
        self.streams = 0
        self.seq = 0  # of the newest notice
        self.started: str | None = None  # its session's token; None: ask the database
        self.wake = threading.Event()  # replaced, after being set, by every notice
        self._lock = threading.Lock()

    def notify(self, token: str | None) -> None:
        with self._lock:
            self.seq += 1
            self.started = token
            wake, self.wake = self.wake, threading.Event()
        wake.set()


class Hub:
    """Streams subscribe to a session's topic; one thread reads Redis for all of them."""

    def __init__(self, redis_url: str):
        self._url = redis_url
        self._topics: dict[str, Topic] = {}
        self._users: dict[int, UserWatch] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pubsub = None
        self._closed = False
        self.connected = threading.Event()

    def subscribe(self, token: str, feed: Feed) -> Topic:
        """The session's topic (made with this feed if it is the first stream)."""
        with self._lock:
            topic = self._topics.get(token)
            if topic is None:
                topic = self._topics[token] = Topic(token, feed)
            topic.streams += 1
            self._start_reader()
        self.connected.wait(CONNECT_WAIT)  # else what is published meanwhile is lost
        return topic

    def _start_reader(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="event-hub", daemon=True)
            self._thread.start()

    def watch(self, user_id: int) -> UserWatch:
        """The user's watch: woken whenever a session of theirs starts anywhere."""
        with self._lock:
            watch = self._users.get(user_id)
            if watch is None:
                watch = self._users[user_id] = UserWatch(user_id)
            watch.streams += 1
            self._start_reader()
        self.connected.wait(CONNECT_WAIT)
        return watch

    def unwatch(self, watch: UserWatch) -> None:
        with self._lock:
            watch.streams -= 1
            if watch.streams <= 0 and self._users.get(watch.user_id) is watch:
                del self._users[watch.user_id]

    def unsubscribe(self, topic: Topic) -> None:
        with self._lock:
            topic.streams -= 1
            if topic.streams <= 0 and self._topics.get(topic.token) is topic:
                del self._topics[topic.token]

    def close(self) -> None:
        """Stop the reader (tests and shutdown); subscribers simply stop receiving."""
        self._closed = True
        if self._pubsub is not None:
            try:
                self._pubsub.connection.disconnect()
            except Exception:  # already gone
                pass

    def _topics_now(self) -> list[Topic]:
        with self._lock:
            return list(self._topics.values())

    def _catch_up_all(self) -> None:
        with self._lock:
            watches = list(self._users.values())
        for watch in watches:  # a start may have been missed: each view asks the database
            watch.notify(None)
        for topic in self._topics_now():
            try:
                topic.catch_up()
            except redis.RedisError:
                raise  # Redis went away again: reconnect and start over
            except Exception:  # one session's failure must not hold up the others
                log.exception("a sync session's streams could not catch up")

    def _deliver(self, message: dict) -> None:
        data = message["data"]
        if data[:1] == b"{":  # a notice (JSON), or an event as workers sent them before
            event = json.loads(data)
            if "started" in event:  # a session of a user started: their idle views follow
                watch = self._users.get(event["user"])
                if watch is not None:
                    watch.notify(event["started"])
                return
            token, event_id, payload = event["token"], event["id"], event["data"]
            topic = self._topics.get(token)
        else:  # "<token> <event id> <payload>": decoded only if a stream here watches
            cut = data.find(b" ")
            topic = self._topics.get(data[:cut].decode())
            if topic is not None:
                event_id, _, payload = data[cut + 1 :].decode().partition(" ")
        if topic is None:
            return  # nobody here watches that session
        try:
            topic.add(event_id, json.loads(payload))
        except Exception:  # one bad event must not stop every other session's
            log.exception("event %s of a sync session could not be rendered", event_id)

    def _run(self) -> None:
        delay, first = 0.1, True
        while not self._closed:
            client = redis_client(self._url, socket_keepalive=True, health_check_interval=10)
            try:
                pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                if not first:  # what was published meanwhile is in the Redis Streams
                    self._catch_up_all()
                self.connected.set()
                delay, first = 0.1, False
                busy_since = time.monotonic()
                for message in pubsub.listen():
                    self._deliver(message)
                    if time.monotonic() - busy_since > YIELD_AFTER:
                        # While Redis has more messages buffered, reading them never waits:
                        # under gevent, let the woken streams write now and then.
                        time.sleep(0)
                        busy_since = time.monotonic()
            except Exception as exc:  # the reader must outlive any failure: log and reconnect
                self.connected.clear()
                if self._closed:
                    return
                log.warning("event reader lost Redis (%s); reconnecting", type(exc).__name__)
                first = False
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                client.close()


def get_hub(app) -> Hub:
    """The app's hub, created on first use (after gunicorn has forked its workers)."""
    hub = app.extensions.get("event_hub")
    if hub is None:
        hub = app.extensions["event_hub"] = Hub(app.config["REDIS_URL"])
    return hub
