"""The bench's phases: capacity, latency, the census and the browser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .common import (
    BROWSER_EMAIL,
    IDLE_EMAIL,
    PASSWORD,
    PROBE,
    ROOT,
    STREAMS_EMAIL,
    USER_AGENT,
    Data,
    Stack,
    cpu_seconds,
    log_in,
    machine_busy,
    open_streams_gauge,
    read_first_event,
    redis_clients,
    request,
    rss_kb,
)
from .load import (
    Client,
    Latency,
    flask_sse_latency,
    floor_latencies,
    floor_subscriber,
    product_latencies,
    publish,
    run_process,
)

# -- phases ---------------------------------------------------------------------------------


def stream_path(token: str) -> str:
    return f"/sync_sessions/{token}/stream"


def warm_up(stack: Stack, cookie: str, tokens: list[str]) -> None:
    """First requests import and compile everything; the hub connects to Redis."""
    for token in tokens[:5]:
        data = read_first_event(stack.port, stream_path(token), cookie)
        if b"\ndata: <section" not in data:
            raise RuntimeError(f"first event is not the widget: {data[:200]!r}")
        request(
            stack.port, "GET", f"/sync_sessions/{token}/status.json", headers={"Cookie": cookie}
        )
    time.sleep(1.0)


def capacity_user_streams(stack: Stack, args) -> dict:
    """--streams idle dashboards: GET /sync/stream of a user with no sync, as every open
    dashboard waits between syncs. Memory per stream from the worker's RSS, and the
    worker's CPU over a quiet 20 s (one heartbeat per stream falls in it)."""
    stack.start_web(config=PROBE)
    cookie = log_in(stack.port, IDLE_EMAIL)
    pid = stack.worker_pid()
    before = rss_kb(pid)
    headers = {"Cookie": cookie, "User-Agent": USER_AGENT, "Accept": "text/event-stream"}
    client = Client(
        stack.url,
        ["/sync/stream"] * args.streams,
        headers,
        "product",
        args.open_concurrency,
        args.open_timeout,
    )
    try:
        opened = client.wait_opened()
        time.sleep(2.0)
        rss_opened = rss_kb(pid)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(20.0)
        cpu_quiet, quiet = cpu_seconds(pid) - cpu0, time.monotonic() - t0
        rss_idle = rss_kb(pid)
        client.stop()
    finally:
        client.kill()
        stack.stop_web()
    return {
        "before_kb": before,
        "opened_kb": rss_opened,
        "idle_kb": rss_idle,
        "opened": opened,
        "cpu_quiet": cpu_quiet,
        "quiet": quiet,
    }


def capacity_floor(stack: Stack, args) -> dict:
    """The same streams against bench/sse_floor_app.py: what any stream costs at least."""
    stack.start_web("bench.sse_floor_app:app")
    pid = stack.worker_pid()
    for _ in range(5):
        read_first_event(stack.port, "/stream/warm-up", "")
    time.sleep(1.0)
    before = rss_kb(pid)
    paths = [f"/stream/{i}" for i in range(args.streams)]
    client = Client(
        stack.url,
        paths,
        {"User-Agent": USER_AGENT},
        "product",
        args.open_concurrency,
        args.open_timeout,
    )
    try:
        opened = client.wait_opened()
        time.sleep(2.0)
        after = rss_kb(pid)
        client.stop()
    finally:
        client.kill()
        stack.stop_web()
    return {"before_kb": before, "after_kb": after, "opened": opened}


def capacity(stack: Stack, data: Data, args) -> dict:
    """Open --streams, then measure the worker's RSS with every stream just past an event.

    A waiting stream keeps the text of the last chunk it wrote alive, so the figure depends
    on what that chunk was: right after opening it is the snapshot; a stream idle for 15 s
    holds a heartbeat instead. To measure the same thing every run, one update is published
    to every session (as a running sync does every second) before the "active" reading;
    with --idle, a second reading comes once every stream has written a heartbeat since.
    """
    # The product's gunicorn settings, plus a gc callback logging each collection's pause.
    gc_log = stack.workdir / "gc-capacity.json"
    stack.start_web(config=PROBE, env={"BENCH_GC_LOG": str(gc_log)})
    cookie = log_in(stack.port, STREAMS_EMAIL)
    warm_up(stack, cookie, data.stream_tokens)
    pid = stack.worker_pid()
    before = rss_kb(pid)
    cpu_before = cpu_seconds(pid)
    since = time.time()
    tokens = data.stream_tokens
    used = tokens[: min(len(tokens), args.streams)]
    paths = [stream_path(tokens[i % len(tokens)]) for i in range(args.streams)]
    headers = {"Cookie": cookie, "User-Agent": USER_AGENT, "Accept": "text/event-stream"}

    def update_round() -> int:
        """One update to every session; returns the worker's RSS once it is written."""
        publish(stack, "product", used, data.stream_accounts, 1, 1.0, args.publishers, 60)
        time.sleep(2.0)
        return rss_kb(pid)

    # Two waves, so the slope between them gives the marginal cost of a stream, free of
    # what the first streams pay once (Redis pool connections, allocator arenas).
    half = args.streams // 2
    clients, idle, rss_half = [], None, None
    try:
        wave = Client(
            stack.url, paths[:half], headers, "product", args.open_concurrency, args.open_timeout
        )
        clients.append(wave)
        first = wave.wait_opened()
        rss_half = update_round()
        wave = Client(
            stack.url, paths[half:], headers, "product", args.open_concurrency, args.open_timeout
        )
        clients.append(wave)
        second = wave.wait_opened()
        cpu_open = cpu_seconds(pid) - cpu_before
        rss_opened = rss_kb(pid)
        after = update_round()
        round_end = time.monotonic() - 2.0
        gauge = open_streams_gauge(stack.port)
        redis_conns = redis_clients(stack.redis.url)
        if args.idle:
            time.sleep(max(0.0, round_end + 15.0 + 2.0 - time.monotonic()))
            idle = rss_kb(pid)
        alive = stack.web.poll() is None and stack.worker_pid() == pid
        gc_stats = gc_pauses(gc_log, since, time.time())
        stops = [client.stop() for client in clients]
    finally:
        for client in clients:
            client.kill()
        stack.stop_web()
    opened = {
        "snapshots": first["snapshots"] + second["snapshots"],
        "seconds": first["seconds"] + second["seconds"],
        "errors": {**first["errors"], **second["errors"]},
    }
    stop = {
        "open_at_stop": sum(info["open_at_stop"] for info, _ in stops),
        "errors": {k: v for info, _ in stops for k, v in info["errors"].items()},
    }
    # Every stream gets the last round's event; the first wave also got the first round's.
    received = sum(len(records) for _, records in stops)
    return {
        "before_kb": before,
        "half_kb": rss_half,
        "half": first["snapshots"],
        "after_kb": after,
        "opened_kb": rss_opened,
        "idle_kb": idle,
        "opened": opened,
        "stop": stop,
        "gauge": gauge,
        "redis_clients": redis_conns,
        "cpu_open": cpu_open,
        "worker_survived": alive,
        "gc": gc_stats,
        "round": (received, half + args.streams),
    }


@dataclass
class Load:
    """CPU seconds each process used while the publishers ran (2 cores in all here)."""

    seconds: float
    worker: float | None = None
    publishers: float = 0.0
    client: float | None = None
    redis: float = 0.0
    machine: float = 0.0  # busy CPU seconds of every process on the machine
    floor: float | None = None

    @property
    def ours(self) -> float:
        return sum(
            v or 0.0 for v in (self.worker, self.publishers, self.client, self.redis, self.floor)
        )

    def describe(self) -> str:
        parts = [
            (name, value)
            for name, value in (
                ("worker", self.worker),
                ("publishers", self.publishers),
                ("client", self.client),
                ("redis", self.redis),
                ("floor subscriber", self.floor),
            )
            if value is not None
        ]
        total = sum(v for _, v in parts)
        return ", ".join(f"{name} {value / self.seconds:.2f}" for name, value in parts) + (
            f" = {total / self.seconds:.2f} of 2 cores"
        )


def run_load(
    stack: Stack,
    mode: str,
    data: Data,
    args,
    worker_pid: int | None,
    client: Client | None,
    floor_pid: int | None = None,
):
    """Publish the latency workload; returns (Published, Load)."""
    pids = {
        "redis": stack.redis._process.pid,
        "worker": worker_pid,
        "client": client.process.pid if client else None,
        "floor": floor_pid,
    }
    before: dict[str, float] = {}

    def on_start() -> None:  # once the publishers have imported, as their schedule starts
        before.update({name: cpu_seconds(pid) for name, pid in pids.items() if pid})
        before["machine"] = machine_busy()

    published = publish(
        stack,
        mode,
        data.stream_tokens,
        data.stream_accounts,
        args.seconds,
        1.0,
        args.publishers,
        args.seconds + 60,
        on_start,
    )
    machine = machine_busy() - before.pop("machine")
    used = {name: cpu_seconds(pids[name]) - value for name, value in before.items()}
    load = Load(
        published.seconds,
        publishers=published.cpu,
        redis=used["redis"],
        worker=used.get("worker"),
        client=used.get("client"),
        machine=machine,
        floor=used.get("floor"),
    )
    return published, load


def start_floor(stack: Stack):
    floor, conn = run_process(floor_subscriber, stack.redis.url)
    if not conn.poll(30):
        floor.terminate()
        raise RuntimeError("floor subscriber did not start")
    conn.recv()
    return floor, conn


def stop_floor(floor, conn) -> list:
    try:
        conn.send("stop")
        return conn.recv() if conn.poll(60) else []
    finally:
        floor.join(5)
        if floor.is_alive():
            floor.terminate()


def gc_pauses(path: Path, since: float, until: float) -> dict:
    """Collections the worker made between two moments, from BENCH_GC_LOG."""
    try:
        pauses = [p for p in json.loads(path.read_text()) if since <= p[2] <= until]
    except (OSError, ValueError):
        return {}
    full = [p[1] * 1000 for p in pauses if p[0] == 2]
    return {
        "count": len(pauses),
        "full": len(full),
        "full_max": max(full, default=0.0),
        "max": max((p[1] * 1000 for p in pauses), default=0.0),
        "total": sum(p[1] for p in pauses),
    }


# Where a delivered event's CPU goes in the worker: stacks holding one of these frames.
PROFILE_PARTS = [
    (
        "render the frame, once per session (template + SSE framing)",
        "frame (expense_sync/sync/stream.py",
    ),
    ("  of which the widget template", "render (jinja2/environment.py"),
    ("json.loads of the payload", "loads (json/__init__.py"),
    ("metrics.record_event_sent", "record_event_sent (expense_sync/metrics.py"),
    ("gunicorn writes the chunk", "write (gunicorn/http/wsgi.py"),
    ("hub: read Redis pub/sub, parse, render, deliver", "_run (expense_sync/events.py"),
    ("stream generators in all (incl. the writes)", "_follow (expense_sync/sync/stream.py"),
]


def start_py_spy(stack: Stack, args):
    """py-spy (a benchmark-only tool) samples the worker while the publishers run."""
    if not args.profile_worker:
        return None
    binary = Path(sys.executable).with_name("py-spy")
    out = stack.workdir / "worker.pyspy"
    process = subprocess.Popen(
        [
            str(binary),
            "record",
            "-p",
            str(stack.worker_pid()),
            "-d",
            str(args.seconds + 2),
            "-r",
            "100",
            "-f",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, out


def finish_py_spy(spy) -> dict | None:
    if spy is None:
        return None
    process, out = spy
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return None
    if not out.exists():
        return None
    stacks = []
    for line in out.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames, int(count)))
    total = sum(count for _, count in stacks) or 1
    parts = {
        name: sum(c for f, c in stacks if marker in f) / total for name, marker in PROFILE_PARTS
    }
    own: dict[str, int] = {}
    for frames, count in stacks:
        leaf = frames.rsplit(";", 1)[-1].split(" (")[0]
        where = frames.rsplit(";", 1)[-1].split(" (")[-1].split(":")[0].split("site-packages/")[-1]
        own[f"{leaf} ({where})"] = own.get(f"{leaf} ({where})", 0) + count
    top = sorted(own.items(), key=lambda kv: -kv[1])[:12]
    return {"samples": total, "parts": parts, "top": [(k, v / total) for k, v in top]}


def latency_product(stack: Stack, data: Data, args) -> dict:
    # The product's gunicorn settings plus a gc callback that logs each collection's pause.
    gc_log = stack.workdir / "gc.json"
    stack.start_web(config=PROBE, env={"BENCH_GC_LOG": str(gc_log)})
    cookie = log_in(stack.port, STREAMS_EMAIL)
    warm_up(stack, cookie, data.stream_tokens)
    tokens = data.stream_tokens
    floor, floor_conn = start_floor(stack)
    client = None
    try:
        headers = {"Cookie": cookie, "User-Agent": USER_AGENT, "Accept": "text/event-stream"}
        client = Client(
            stack.url,
            [stream_path(t) for t in tokens],
            headers,
            "product",
            args.open_concurrency,
            args.open_timeout,
        )
        opened = client.wait_opened()
        since = time.time()
        spy = start_py_spy(stack, args)
        published, load = run_load(
            stack, "product", data, args, stack.worker_pid(), client, floor.pid
        )
        profile = finish_py_spy(spy)
        time.sleep(2.0)  # stragglers
        gc_stats = gc_pauses(gc_log, since, time.time())
        info, records = client.stop()
        floor_records = stop_floor(floor, floor_conn)
        floor = None
    finally:
        if client:
            client.kill()
        if floor is not None:
            floor.terminate()
        stack.stop_web()
    ms, hires = product_latencies(records, published.records, tokens)
    floor_hires, _ = floor_latencies(
        floor_records, published.records, tokens, "(during the product run)"
    )
    excess = Latency("expense_sync - Redis floor, same event (web worker + HTTP + client)")
    floor_at = {(t, event_id): received for t, event_id, received, _ in floor_records}
    for index, event_id, received, _ in records:
        at = floor_at.get((tokens[index], event_id))
        if at is not None:
            excess.values_ms.append((received - at) * 1000)
    excess.received = excess.expected = len(excess.values_ms)
    if os.environ.get("BENCH_DUMP"):
        Path(os.environ["BENCH_DUMP"]).with_suffix(".latency.json").write_text(
            json.dumps(
                {
                    "records": records,
                    "floor": floor_records,
                    "published": published.records,
                    "late": published.late,
                }
            )
        )
    return {
        "excess": excess,
        "gc": gc_stats,
        "profile": profile,
        "opened": opened,
        "stop": info,
        "ms": ms,
        "hires": hires,
        "floor": floor_hires,
        "published": published,
        "load": load,
    }


def latency_floor_alone(stack: Stack, data: Data, args) -> dict:
    floor, floor_conn = start_floor(stack)
    try:
        published, load = run_load(stack, "product", data, args, None, None, floor.pid)
        time.sleep(1.0)
        floor_records = stop_floor(floor, floor_conn)
    finally:
        if floor.is_alive():
            floor.terminate()
    hires, ms = floor_latencies(floor_records, published.records, data.stream_tokens, "(alone)")
    if os.environ.get("BENCH_DUMP"):
        Path(os.environ["BENCH_DUMP"]).with_suffix(".floor.json").write_text(
            json.dumps({"floor": floor_records, "published": published.records})
        )
    return {"floor": hires, "floor_ms": ms, "published": published, "load": load}


def latency_flask_sse(stack: Stack, data: Data, args) -> dict:
    import redis

    stack.start_web("bench.sse_flask_sse_app:app")
    tokens = data.stream_tokens
    client = None
    try:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream"}
        paths = ["/stream?" + urllib.parse.urlencode({"channel": t}) for t in tokens]
        client = Client(stack.url, paths, headers, "flask_sse", len(paths), args.open_timeout)
        # Flask-SSE sends nothing (not even headers) before the first message: watch Redis.
        r = redis.Redis.from_url(stack.redis.url)
        deadline = time.monotonic() + args.open_timeout
        subscribed = 0
        while time.monotonic() < deadline:
            counts = r.pubsub_numsub(*tokens)
            subscribed = sum(1 for _, n in counts if n)
            if subscribed == len(tokens):
                break
            time.sleep(0.2)
        r.close()
        published, load = run_load(stack, "flask_sse", data, args, stack.worker_pid(), client)
        time.sleep(2.0)
        info, records = client.stop()
    finally:
        if client:
            client.kill()
        stack.stop_web()
    return {
        "subscribed": subscribed,
        "lat": flask_sse_latency(records, published.records),
        "published": published,
        "load": load,
        "stop": info,
    }


def census(stack: Stack, data: Data, args) -> None:
    """Where a held stream's memory goes: live objects and allocation sites, per stream."""
    trigger = stack.workdir / "census-trigger"
    stack.start_web(
        config=PROBE, env={"BENCH_CENSUS_TRIGGER": str(trigger), "BENCH_TRACEMALLOC": "1"}
    )

    def take(name: str) -> dict:
        out = stack.workdir / f"census-{name}.json"
        trigger.write_text(str(out))
        deadline = time.monotonic() + 300
        while not out.exists() or trigger.exists():
            if time.monotonic() > deadline or stack.web.poll() is not None:
                raise RuntimeError("no census:\n" + stack.log.read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(0.5)
        result = json.loads(out.read_text())
        if "error" in result:
            raise RuntimeError(f"census failed in the worker: {result['error']}")
        return result

    try:
        cookie = log_in(stack.port, STREAMS_EMAIL)
        warm_up(stack, cookie, data.stream_tokens)
        pid = stack.worker_pid()
        before, rss0 = take("before"), rss_kb(pid)
        tokens = data.stream_tokens
        paths = [stream_path(tokens[i % len(tokens)]) for i in range(args.streams)]
        headers = {"Cookie": cookie, "User-Agent": USER_AGENT, "Accept": "text/event-stream"}
        client = Client(
            stack.url, paths, headers, "product", args.open_concurrency, args.open_timeout
        )
        try:
            opened = client.wait_opened()
            used = tokens[: min(len(tokens), args.streams)]
            publish(stack, "product", used, data.stream_accounts, 1, 1.0, args.publishers, 60)
            time.sleep(3.0)  # every stream is just past an update, as in the capacity phase
            rss1 = rss_kb(pid)
            after = take("after")
            client.stop()
        finally:
            client.kill()
    finally:
        stack.stop_web()
    n = max(opened["snapshots"], 1)
    print(
        f"census: {n} streams; RSS {(rss1 - rss0) / n:.1f} KB per stream (under tracemalloc); "
        f"traced Python memory {(after['traced'] - before['traced']) / n / 1024:.1f} KB per "
        f"stream; allocated blocks {(after['blocks'] - before['blocks']) / n:.0f} per stream"
    )
    print("\nlive objects gained per stream (gc), top 25:")
    grown = {
        k: after["types"].get(k, 0) - before["types"].get(k, 0)
        for k in set(after["types"]) | set(before["types"])
    }
    for name, count in sorted(grown.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {count / n:8.2f}  {name}")
    by_package: dict[str, float] = {}
    for site in after["sites"]:
        where = site["where"][-1].replace(str(ROOT) + "/", "")
        package = where.split("site-packages/")[-1].split("/")[0].split(":")[0]
        by_package[package] = by_package.get(package, 0) + site["size"]
    print("\nmemory gained per stream by the package that allocated it (tracemalloc):")
    for package, size in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {size / n:8.0f} B  {package}")
    print("\nallocation sites holding the most memory per stream (tracemalloc), top 25:")
    for site in after["sites"][:25]:
        frames = [f.replace(str(ROOT) + "/", "").split("site-packages/")[-1] for f in site["where"]]
        print(
            f"  {site['size'] / n:8.0f} B {site['count'] / n:6.1f} blocks  "
            + " <- ".join(reversed(frames[-5:]))
        )


WRAP_JS = """() => {
  // htmx's SSE extension applies each update in the leading tab: the message event, the
  // fragment parsed, htmx:before:swap, the morph, htmx:after:swap. Style and layout are
  // forced at the end, so each figure holds the whole cost of showing the update.
  window.__morphMs = []; window.__applyMs = [];
  const widget = () => document.getElementById("sync-widget");
  const fromStream = (e) => e.target.id === "sync-live";
  let received = null, swapping = null;
  document.addEventListener("htmx:sse:before:message", (e) => {
    if (!fromStream(e) || e.detail.message.event) return;
    performance.mark("bench-apply-start");
    received = performance.now();
  });
  document.addEventListener("htmx:before:swap", (e) => {
    if (!fromStream(e) || received === null) return;
    performance.mark("bench-morph-start");
    swapping = performance.now();
  });
  document.addEventListener("htmx:after:swap", (e) => {
    if (!fromStream(e) || received === null || swapping === null) return;
    widget().getBoundingClientRect();  // forces style and layout now
    const now = performance.now();
    window.__morphMs.push(now - swapping);
    window.__applyMs.push(now - received);
    performance.mark("bench-morph-end");
    performance.mark("bench-apply-end");
    received = swapping = null;
  });
  return true;
}"""


def thread_times(trace: bytes, name: str) -> tuple[list[float], list[float]]:
    """(wall ms, main-thread CPU ms) between the bench-<name>-start/end marks of a trace."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    marks = sorted(
        (e for e in events if e.get("name") in (f"bench-{name}-start", f"bench-{name}-end")),
        key=lambda e: e["ts"],
    )
    wall, cpu, start = [], [], None
    for mark in marks:
        if mark["name"].endswith("-start"):
            start = mark
        elif start is not None and "tts" in mark and "tts" in start:
            wall.append((mark["ts"] - start["ts"]) / 1000)
            cpu.append((mark["tts"] - start["tts"]) / 1000)
            start = None
    return wall, cpu


def browser(stack: Stack, data: Data, args) -> dict:
    from browser.stack import launch_chromium  # tests/browser: the tests' own launcher
    from playwright.sync_api import sync_playwright

    stack.start_web()
    try:
        with sync_playwright() as p:
            chromium = launch_chromium(p)
            page = chromium.new_page()
            page.goto(stack.url + "/login")
            page.fill("#email", BROWSER_EMAIL)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/sync")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                live = page.evaluate(
                    "() => !!(window.syncWidget && window.syncWidget.connection === 'live')"
                )
                if live:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the widget never went live")
            page.evaluate(WRAP_JS)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def metrics() -> dict:
                return {
                    m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                }

            # User-timing marks carry the main thread's CPU clock (tts): the work itself,
            # whatever else the machine's cores were busy with.
            chromium.start_tracing(page=page, categories=["blink.user_timing"])
            m0 = metrics()
            rate = 5.0
            published = publish(
                stack,
                "product",
                [data.browser_token],
                [data.browser_accounts],
                args.browser_updates,
                rate,
                1,
                args.browser_updates / rate + 60,
            )
            sent = sum(1 for r in published.records if r[1])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if page.evaluate("() => window.__morphMs.length") >= sent:
                    break
                time.sleep(0.2)
            m1 = metrics()
            trace = chromium.stop_tracing()
            morph = page.evaluate("() => window.__morphMs")
            apply = page.evaluate("() => window.__applyMs")
            chromium.close()
    finally:
        stack.stop_web()
    deltas = {
        k: m1.get(k, 0) - m0.get(k, 0)
        for k in (
            "ScriptDuration",
            "RecalcStyleDuration",
            "LayoutDuration",
            "TaskDuration",
            "RecalcStyleCount",
            "LayoutCount",
            "Documents",
            "Nodes",
        )
    }
    morph_wall, morph_cpu = thread_times(trace, "morph")
    _, apply_cpu = thread_times(trace, "apply")
    return {
        "sent": sent,
        "morph": morph,
        "apply": apply,
        "cdp": deltas,
        "morph_cpu": morph_cpu,
        "apply_cpu": apply_cpu,
        "morph_wall_trace": morph_wall,
    }
