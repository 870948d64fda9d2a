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
from itertools import islice
from typing import NamedTuple, Protocol

import redis

from .progress import CHANNEL, TERMINAL_STATES, newer

log = logging.getLogger(__name__)

# Frames kept per topic: a stream further behind (its socket blocked for seconds) skips
# to the newest, which carries the full state.
RECENT_FRAMES = 4
YIELD_AFTER = 0.002  # seconds of delivering before the reader lets the streams write
CONNECT_WAIT = 5.0  # seconds a new stream waits for the reader's Redis subscription


class Frame(NamedTuple):
    seq: int  # this process's order within the topic
    event_id: str  # the Redis Stream id, sent as the SSE id
    data: bytes  # the whole SSE frame, shared by every stream of the topic
    terminal: bool
    reset: bool  # a snapshot after a gap: sent even if its id is not newer
    published_at: int | None


class Feed(Protocol):
    """What a topic needs from the web layer: rendering and catching up."""

    def frame(self, event_id: str, payload: dict) -> bytes: ...

    def catch_up(self, last_id: str | None) -> list[tuple[str, dict, bool]]: ...


class Topic:
    """One session's recent frames in this process, and the wake-up its streams wait on."""

    def __init__(self, token: str, feed: Feed):
        self.token, self.feed = token, feed
        self.streams = 0
        self.seq = 0  # of the newest frame
        self.last_id: str | None = None  # newest event id seen, for catching up
        self.wake = threading.Event()  # replaced, after being set, by every new frame
        self._frames: deque[Frame] = deque(maxlen=RECENT_FRAMES)
        self._lock = threading.Lock()

    def add(self, event_id: str, payload: dict, reset: bool = False) -> None:
        data = self.feed.frame(event_id, payload)
        state = payload["state"]
        with self._lock:
            self.seq += 1
            self._frames.append(
                Frame(
                    self.seq,
                    event_id,
                    data,
                    state["status"] in TERMINAL_STATES,
                    reset,
                    state.get("published_at"),
                )
            )
            self.seen(event_id, reset)
            wake, self.wake = self.wake, threading.Event()
        wake.set()

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
        event = json.loads(message["data"])
        if "started" in event:  # a session of a user started: their idle views follow it
            watch = self._users.get(event["user"])
            if watch is not None:
                watch.notify(event["started"])
            return
        topic = self._topics.get(event["token"])
        if topic is None:
            return  # nobody here watches that session
        try:
            topic.add(event["id"], json.loads(event["data"]))
        except Exception:  # one bad event must not stop every other session's
            log.exception("event %s of a sync session could not be rendered", event["id"])

    def _run(self) -> None:
        delay, first = 0.1, True
        while not self._closed:
            client = redis.Redis.from_url(
                self._url, socket_keepalive=True, health_check_interval=10
            )
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
