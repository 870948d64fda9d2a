"""The load of bench/sse_compare.py: one stream client and a paced publisher, the same for
every server compared. Each runs as its own process:

    python bench/ssebench/raw.py client SPEC.json RESULT.json
    python bench/ssebench/raw.py publish SPEC.json RESULT.json

The client (gevent, raw sockets, HTTP/1.1, chunked decoding by hand) opens the spec's
paths at its rate, prints one JSON line when every stream got its first event or failed,
records (event id, receive time, bytes) of every event after that, and on SIGTERM writes
them. A stream fails on a refused or reset connection, an answer other than 200, or no
first event within 30 s. The publisher (no gevent) sends, for `seconds`, every topic
`rate` times a second, spread evenly, and records (event id, time of the Redis PUBLISH).
"""

from __future__ import annotations

import json
import os
import sys
import time

FIRST_EVENT_TIMEOUT = 30.0


def client(spec: dict, out: str) -> None:
    from gevent import monkey

    monkey.patch_all()
    import signal
    import socket

    import gevent
    import gevent.event

    host, port = "127.0.0.1", spec["port"]
    agent, cookie = spec.get("user_agent", "bench"), spec.get("cookie", "")
    request_head = (
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:"
        + str(port)
        + "\r\nUser-Agent: "
        + agent
        + "\r\nCookie: "
        + cookie
        + "\r\nAccept: text/event-stream\r\n\r\n"
    )
    events: list[tuple[str, float, int]] = []
    recording = [False]
    state = {"open": 0, "failed": 0, "reasons": {}}
    done = gevent.event.Event()
    total = len(spec["paths"])

    def fail(reason: str) -> None:
        state["failed"] += 1
        state["reasons"][reason] = state["reasons"].get(reason, 0) + 1
        if state["open"] + state["failed"] == total:
            done.set()

    def opened() -> None:
        state["open"] += 1
        if state["open"] + state["failed"] == total:
            done.set()

    def stream(path: str) -> None:
        first = True
        try:
            sock = socket.create_connection((host, port), timeout=FIRST_EVENT_TIMEOUT)
            sock.sendall(request_head.format(path=path).encode())
            raw = b""
            while b"\r\n\r\n" not in raw:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before the headers")
                raw += chunk
            head, raw = raw.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                fail("HTTP " + head[9:12].decode(errors="replace"))
                sock.close()
                return
            chunked = b"transfer-encoding: chunked" in head.lower()
            data = b""
            while True:
                if chunked:  # take every complete chunk out of raw
                    while True:
                        line_end = raw.find(b"\r\n")
                        if line_end < 0:
                            break
                        size = int(raw[:line_end], 16)
                        if len(raw) < line_end + 2 + size + 2:
                            break
                        data += raw[line_end + 2 : line_end + 2 + size]
                        raw = raw[line_end + 2 + size + 2 :]
                        if size == 0:
                            return
                else:
                    data, raw = data + raw, b""
                while b"\n\n" in data:
                    event, data = data.split(b"\n\n", 1)
                    now = time.time()
                    if first:
                        first = False
                        sock.settimeout(None)
                        opened()
                    if recording[0] and event.startswith(b"id: "):
                        events.append((event[4 : event.index(b"\n")].decode(), now, len(event) + 2))
                chunk = sock.recv(65536)
                if not chunk:
                    return
                raw += chunk
        except (OSError, ValueError) as exc:
            if first:
                fail(type(exc).__name__)

    def stop(*_):
        with open(out, "w") as f:
            json.dump({"events": events, **state}, f)
        os._exit(0)

    gevent.signal_handler(signal.SIGTERM, stop)
    started = time.monotonic()
    period = 1.0 / spec["open_rate"]
    for i, path in enumerate(spec["paths"]):
        delay = started + i * period - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        gevent.spawn(stream, path)
    done.wait(FIRST_EVENT_TIMEOUT + 60)
    recording[0] = True
    print(json.dumps({**state, "seconds": time.monotonic() - started}), flush=True)
    gevent.wait()  # until SIGTERM


def publish(spec: dict, out: str) -> None:
    import redis

    records: list[tuple[str, float]] = []
    topics = spec["topics"]
    n = len(topics)
    period = 1.0 / spec["rate"]
    ticks = int(spec["seconds"] * spec["rate"])
    late: list[float] = []

    if spec["kind"] == "ours":
        sys.path.insert(0, spec["product"])
        from common import timed_redis  # this file's neighbour (run as a script)

        from expense_sync.progress import Progress

        client = timed_redis(spec["redis_url"])
        progress = Progress(client)
        counts: dict[str, int] = {}

        def send(i: int, tick: int) -> None:
            token, accounts = topics[i]["token"], topics[i]["accounts"]
            account = accounts[tick % len(accounts)]
            key = f"{token}:{account}"
            counts[key] = counts.get(key, 0) + 37
            progress.update_account(token, account, status="processing", processed=counts[key])
            event_id = progress.publish(token, "progress", force=True)
            records.append((f"{token}:{event_id}", client.last_publish))
    else:
        client = redis.Redis.from_url(spec["redis_url"])

        def send(i: int, tick: int) -> None:
            name = topics[i]["token"]
            stamp = time.time()
            client.publish(spec["channel"], f"{name} {tick} {stamp}")
            records.append((f"{name}:{tick}", stamp))

    start = time.time() + 0.2
    for tick in range(ticks):
        for i in range(n):
            due = start + tick * period + i * period / n
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            late.append(max(0.0, time.time() - due))
            send(i, tick)
    with open(out, "w") as f:
        json.dump({"records": records, "late": late}, f)


if __name__ == "__main__":
    mode, spec_path, out_path = sys.argv[1:4]
    with open(spec_path) as f:
        loaded = json.load(f)
    {"client": client, "publish": publish}[mode](loaded, out_path)
