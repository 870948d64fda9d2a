"""The minimal SSE hub of bench/sse_compare.py: the least a gevent server does to fan out.

    gunicorn -k gevent --workers 1 --worker-connections 20000 bench.sse_hub_app:app

One Redis subscription per process (channel HUB_CHANNEL, messages "<topic> <n> <stamp>"),
one gevent Event per topic, and GET /stream/<topic>: a heartbeat at once, then one small
event per message of its topic, with no login, no database and no rendering. What our
server costs beyond this is what the product itself adds.
"""

import os
import threading

import gevent.event
import redis

HUB_CHANNEL = "bench:hub"


class Topic:
    __slots__ = ("frame", "wake")

    def __init__(self):
        self.frame = b""
        self.wake = gevent.event.Event()


topics: dict[str, Topic] = {}
_reader: threading.Thread | None = None
_ready = gevent.event.Event()


def _read() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(HUB_CHANNEL)
    _ready.set()
    for message in pubsub.listen():
        name, _, rest = message["data"].partition(b" ")
        topic = topics.get(name.decode())
        if topic is None:
            continue
        number, _, stamp = rest.partition(b" ")
        topic.frame = b'id: %s:%s\ndata: {"t": %s}\n\n' % (name, number, stamp)
        wake, topic.wake = topic.wake, gevent.event.Event()
        wake.set()


def app(environ, start_response):
    global _reader
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/stream/"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    if _reader is None:  # after the fork, in the worker
        _reader = threading.Thread(target=_read, daemon=True)
        _reader.start()
    _ready.wait(5)
    name = path.removeprefix("/stream/")
    topic = topics.get(name)
    if topic is None:
        topic = topics[name] = Topic()
    start_response(
        "200 OK",
        [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")],
    )

    def stream():
        yield b"event: heartbeat\n\n"
        while True:
            wake = topic.wake
            if wake.wait(15):
                yield topic.frame
            else:
                yield b"event: heartbeat\n\n"

    return stream()
