"""The per-process event reader: one Redis subscription fans events out to every stream.

Browsers never get a Redis connection of their own. Pub/sub drops what is published while
the reader is disconnected, so after a reconnect every subscriber is told to resync: it
replays the session's Redis Stream from the last event it sent, or sends a fresh snapshot.
"""

import json
import logging
import queue
import threading
import time

import redis

from .progress import CHANNEL

log = logging.getLogger(__name__)

RESYNC = object()  # queued to every subscriber after the reader reconnects


class Hub:
    """Subscribers register a queue per session token; one thread reads Redis for all."""

    def __init__(self, redis_url: str):
        self._url = redis_url
        self._subscribers: dict[str, set[queue.SimpleQueue]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pubsub = None
        self._closed = False
        self.connected = threading.Event()

    def subscribe(self, token: str) -> queue.SimpleQueue:
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._subscribers.setdefault(token, set()).add(inbox)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="event-hub",
                                                daemon=True)
                self._thread.start()
        return inbox

    def unsubscribe(self, token: str, inbox: queue.SimpleQueue) -> None:
        with self._lock:
            inboxes = self._subscribers.get(token)
            if inboxes:
                inboxes.discard(inbox)
                if not inboxes:
                    del self._subscribers[token]

    @property
    def open_streams(self) -> int:
        with self._lock:
            return sum(len(inboxes) for inboxes in self._subscribers.values())

    def _deliver(self, token: str, item) -> None:
        with self._lock:
            inboxes = list(self._subscribers.get(token, ()))
        for inbox in inboxes:
            inbox.put(item)

    def _resync_all(self) -> None:
        with self._lock:
            inboxes = [inbox for group in self._subscribers.values() for inbox in group]
        for inbox in inboxes:
            inbox.put(RESYNC)

    def close(self) -> None:
        """Stop the reader (tests and shutdown); subscribers simply stop receiving."""
        self._closed = True
        if self._pubsub is not None:
            try:
                self._pubsub.connection.disconnect()
            except Exception:  # already gone
                pass

    def _run(self) -> None:
        delay = 0.1
        first = True
        while not self._closed:
            client = redis.Redis.from_url(self._url, socket_keepalive=True,
                                          health_check_interval=10)
            try:
                pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self.connected.set()
                if not first:
                    self._resync_all()
                first, delay = False, 0.1
                for message in pubsub.listen():
                    event = json.loads(message["data"])
                    self._deliver(event["token"], (event["id"], event["data"]))
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
