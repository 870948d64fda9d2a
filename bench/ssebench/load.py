"""The bench's load: the stream client, the publishers, the Redis floor, and the
latencies they give."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import time
from dataclasses import dataclass, field

from .common import (
    ACCOUNT_TOTAL,
    ROOT,
    STEP,
    Stack,
    percentile,
    quiet_gc,
    raise_nofile,
    timed_redis,
)

# -- the stream client (its own process, asyncio + aiohttp) ---------------------------------

_ID = re.compile(rb"^id: ?(\S+)", re.M)
_PUBLISHED = re.compile(rb'data-published-at="(\d*)"')
_T = re.compile(rb'"t": ?([0-9.]+)')


def stream_client(
    conn,
    base: str,
    paths: list[str],
    headers: dict,
    mode: str,
    concurrency: int,
    open_timeout: float,
) -> None:
    """Open every stream, report, then record events until told to stop.

    mode "product": a stream is open once its first event (the snapshot) arrived; later
    events are recorded as (stream, event id, receive s, published_at ms).
    mode "flask_sse": no first event exists; the parent checks Redis for subscribers;
    events are recorded as (stream, None, receive s, t s).
    """
    import asyncio

    import aiohttp

    raise_nofile()
    quiet_gc()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        records: list[tuple] = []
        state = {"snapshots": 0, "failed": 0, "open": 0, "errors": {}}
        all_settled = asyncio.Event()
        settled = [0]

        def settle() -> None:
            settled[0] += 1
            if settled[0] == len(paths):
                all_settled.set()

        async def one(index: int, path: str, session: aiohttp.ClientSession) -> None:
            first = mode == "product"
            held = False
            try:
                await gate.acquire()
                held = True
                async with session.get(path) as response:
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                    state["open"] += 1
                    if not first:
                        gate.release()
                        held = False
                        settle()
                    buffer = b""
                    try:
                        async for chunk in response.content.iter_any():
                            now = time.time()
                            buffer += chunk
                            while True:
                                end = buffer.find(b"\n\n")
                                if end < 0:
                                    break
                                block, buffer = buffer[:end], buffer[end + 2 :]
                                if block.startswith(b":"):
                                    continue  # heartbeat
                                if first:
                                    first = False
                                    state["snapshots"] += 1
                                    gate.release()
                                    held = False
                                    settle()
                                    continue
                                if mode == "product":
                                    if b"\nevent: " in block or block.startswith(b"event: "):
                                        continue  # a heartbeat or a toast: not the widget
                                    ident = _ID.search(block)
                                    published = _PUBLISHED.search(block)
                                    # "<token>:<event id>": the publishers know the id
                                    event_id = (
                                        ident.group(1).decode().rpartition(":")[2]
                                        if ident
                                        else None
                                    )
                                    records.append(
                                        (
                                            index,
                                            event_id,
                                            now,
                                            int(published.group(1) or 0) if published else 0,
                                        )
                                    )
                                else:
                                    stamp = _T.search(block)
                                    if stamp:
                                        records.append((index, None, now, float(stamp.group(1))))
                    finally:
                        state["open"] -= 1
            except Exception as exc:  # count every way a stream can fail, never crash on one
                if not isinstance(exc, asyncio.CancelledError):
                    name = type(exc).__name__ + (f" {exc}" if isinstance(exc, RuntimeError) else "")
                    state["errors"][name] = state["errors"].get(name, 0) + 1
                if first or held:
                    state["failed"] += 1
                    if held:
                        gate.release()
                    settle()

        async with aiohttp.ClientSession(
            base,
            connector=connector,
            timeout=timeout,
            headers=headers,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as session:
            started = time.perf_counter()
            tasks = [asyncio.create_task(one(i, p, session)) for i, p in enumerate(paths)]
            try:
                await asyncio.wait_for(all_settled.wait(), open_timeout)
            except TimeoutError:
                pass
            conn.send(
                (
                    "opened",
                    {
                        "snapshots": state["snapshots"],
                        "failed": state["failed"],
                        "open": state["open"],
                        "errors": dict(state["errors"]),
                        "seconds": time.perf_counter() - started,
                    },
                )
            )
            await loop.run_in_executor(None, conn.recv)  # "stop"
            still_open = state["open"]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(
            (
                "done",
                {
                    "open_at_stop": still_open,
                    "errors": state["errors"],
                    "snapshots": state["snapshots"],
                },
                records,
            )
        )

    asyncio.run(main())


class Client:
    """Runs stream_client in a spawned process."""

    def __init__(
        self,
        base: str,
        paths: list[str],
        headers: dict,
        mode: str,
        concurrency: int,
        open_timeout: float,
    ):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=stream_client,
            daemon=True,
            args=(child, base, paths, headers, mode, concurrency, open_timeout),
        )
        self.process.start()
        self.open_timeout = open_timeout

    def wait_opened(self) -> dict:
        if not self.conn.poll(self.open_timeout + 60):
            raise RuntimeError("stream client did not report")
        kind, info = self.conn.recv()
        assert kind == "opened"
        return info

    def stop(self) -> tuple[dict, list]:
        self.conn.send("stop")
        while True:  # Flask-SSE's client may still owe its "opened" report
            if not self.conn.poll(60):
                raise RuntimeError("stream client did not stop")
            message = self.conn.recv()
            if message[0] == "done":
                break
        _, info, records = message
        self.process.join(10)
        return info, records

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- the publisher and the Redis floor (their own processes) --------------------------------


def publisher(
    conn,
    redis_url: str,
    mode: str,
    tokens: list[str],
    accounts: list[list[int]],
    ticks: int,
    rate: float,
    start_at: float,
    shard: int,
    shards: int,
) -> None:
    """Publish every session `rate` times a second for `ticks` rounds, spread evenly.

    Session i is due at start_at + tick / rate + i / (n * rate); this process publishes the
    sessions i % shards == shard (one Python process cannot keep 1,000 Progress.publish a
    second: each makes six Redis round trips). Sends (records, lateness, CPU seconds):
    records are (session index, event id, time of the Redis PUBLISH call) for "product",
    (session index, None, t in the payload) for "flask_sse".
    """

    records: list[tuple] = []
    late: list[float] = []
    n = len(tokens)
    period = 1.0 / rate

    if mode == "product":
        from expense_sync.progress import Progress

        client = timed_redis(redis_url)
        progress = Progress(client)
        processed = [[0] * len(a) for a in accounts]

        def send(i: int, tick: int) -> None:
            slot = tick % len(accounts[i])
            processed[i][slot] = min(ACCOUNT_TOTAL - 1, processed[i][slot] + STEP)
            progress.update_account(
                tokens[i], accounts[i][slot], status="processing", processed=processed[i][slot]
            )
            event_id = progress.publish(tokens[i], "progress", force=True)
            records.append((i, event_id, client.last_publish))
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        os.environ["REDIS_URL"] = redis_url
        from flask_sse import sse
        from sse_flask_sse_app import app

        context = app.app_context()
        context.push()

        def send(i: int, tick: int) -> None:
            stamp = time.time()
            sse.publish({"t": stamp}, channel=tokens[i])
            records.append((i, None, stamp))

    quiet_gc()
    cpu0 = time.process_time()
    for tick in range(ticks):
        for i in range(shard, n, shards):
            due = start_at + tick * period + i * period / n
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            late.append(max(0.0, time.time() - due))
            send(i, tick)
    conn.send((records, late, time.process_time() - cpu0))


def floor_subscriber(conn, redis_url: str) -> None:
    """SUBSCRIBE to the product's channel; record (token, id, receive s, published_at ms)."""
    import redis

    from expense_sync.progress import CHANNEL

    quiet_gc()
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    while pubsub.get_message(timeout=0.1) is not None or not pubsub.subscribed:
        pass
    conn.send("ready")
    raw: list[tuple[float, bytes]] = []
    while not conn.poll():
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            raw.append((time.time(), message["data"]))
    records = []
    for received, data in raw:  # parse after the run, off the measured path
        if data[:1] == b"{":
            continue  # a notice (a session started), not an event
        token, event_id, payload = data.decode().split(" ", 2)  # progress.event_message
        published = json.loads(payload)["state"].get("published_at") or 0
        records.append((token, event_id, received, published))
    conn.send(records)


def run_process(target, *args):
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    return process, parent


@dataclass
class Published:
    records: list
    late: list
    cpu: float  # seconds, all publisher processes
    seconds: float  # wall time from the first due time to the last publish


def publish(
    stack: Stack,
    mode: str,
    tokens,
    accounts,
    ticks: int,
    rate: float,
    shards: int,
    timeout: float,
    on_start=None,
) -> Published:
    """Run the publishers; on_start() is called when their schedule begins."""
    shards = max(1, min(shards, len(tokens)))
    start_at = time.time() + 2.5  # the spawned processes need a moment to import
    started = [
        run_process(
            publisher, stack.redis.url, mode, tokens, accounts, ticks, rate, start_at, shard, shards
        )
        for shard in range(shards)
    ]
    records, late, cpu = [], [], 0.0
    try:
        if on_start:
            time.sleep(max(0.0, start_at - time.time()))
            on_start()
        for _, conn in started:
            if not conn.poll(max(1.0, timeout - (time.time() - start_at))):
                raise RuntimeError("publisher did not finish")
            part = conn.recv()
            records += part[0]
            late += part[1]
            cpu += part[2]
        seconds = time.time() - start_at
    finally:
        for process, _ in started:
            process.join(5)
            if process.is_alive():
                process.terminate()
    return Published(records, late, cpu, seconds)


# -- figures --------------------------------------------------------------------------------


@dataclass
class Latency:
    name: str
    values_ms: list[float] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # publish time (s) of each value
    received: int = 0
    expected: int = 0

    def q(self, p: float) -> float | None:
        return percentile(self.values_ms, p)


def product_latencies(records, pub_records, tokens) -> tuple[Latency, Latency]:
    ms = Latency("expense_sync: receive - data-published-at (ms resolution)")
    hires = Latency("expense_sync: receive - Redis PUBLISH call (us resolution)")
    published = {(i, event_id): t for i, event_id, t in pub_records if event_id}
    expected = len(published)
    seen = set()
    for index, event_id, received, published_at in records:
        key = (index, event_id)
        if key not in published or key in seen:
            continue  # a snapshot replayed after a resync would count twice
        seen.add(key)
        if published_at:
            ms.values_ms.append(received * 1000 - published_at)
            ms.at.append(published_at / 1000)
        hires.values_ms.append((received - published[key]) * 1000)
        hires.at.append(published[key])
    for lat in (ms, hires):
        lat.received, lat.expected = len(seen), expected
    return ms, hires


def floor_latencies(records, pub_records, tokens, label) -> tuple[Latency, Latency]:
    index = {token: i for i, token in enumerate(tokens)}
    published = {(i, event_id): t for i, event_id, t in pub_records if event_id}
    hires = Latency(f"Redis floor {label}: receive - PUBLISH call (us resolution)")
    ms = Latency(f"Redis floor {label}: receive - published_at (ms resolution)")
    seen = set()
    for token, event_id, received, published_at in records:
        key = (index.get(token), event_id)
        if key not in published or key in seen:
            continue
        seen.add(key)
        hires.values_ms.append((received - published[key]) * 1000)
        hires.at.append(published[key])
        ms.values_ms.append(received * 1000 - published_at)
        ms.at.append(published_at / 1000)
    for lat in (ms, hires):
        lat.received, lat.expected = len(seen), len(published)
    return hires, ms


def flask_sse_latency(records, pub_records) -> Latency:
    lat = Latency("Flask-SSE: receive - t before sse.publish (us resolution)")
    lat.values_ms = [(received - stamp) * 1000 for _, _, received, stamp in records]
    lat.at = [stamp for _, _, _, stamp in records]
    lat.received, lat.expected = len(records), len(pub_records)
    return lat
