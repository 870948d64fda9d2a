"""Live updates under load: stream capacity, broadcast latency, and the browser's cost.

    .venv/bin/python bench/sse.py [--streams 10000] [--sessions 1000] [--seconds 20]
                                  [--browser-updates 200] [--skip-capacity] [--skip-latency]
                                  [--skip-flask-sse] [--skip-browser] [--idle]
                                  [--capacity-floor] [--floor-alone] [--profile-worker]
                                  [--census]

Benchmark-only packages (NOT product dependencies), installed into the venv with
    .venv/bin/pip install aiohttp flask-sse      # the stream client, the comparison
    .venv/bin/pip install py-spy                 # only for --profile-worker
Playwright (a dev dependency) and Debian's /usr/bin/chromium drive the browser part.

Everything runs on loopback, on free ports: its own redis-server (tests/servers.py), a
throwaway SQLite database, and gunicorn with the product's gunicorn.conf.py (gevent), but
`--workers 1`, RATELIMIT_ENABLED=false (one login opens every stream) and
PROMETHEUS_MULTIPROC_DIR set as `make run` does. The product's streams run under
bench/sse_gunicorn_probe.py: the same settings plus a gc callback that logs collection pauses.
Data is written
directly with the app: one user with --sessions running sessions of three accounts each (the
throwaway database drops the one-running-sync-per-user index for that), one user with one
running session for the browser; seed_progress() puts each in Redis. Streams log in once
through the real /login form (CSRF token from the meta tag) and send no Origin header.
Measuring processes (client, publishers, floor subscriber) run with the collector off: a
full collection in one of them would show up as a latency spike of the product.

1. Capacity: --streams concurrent SSE connections (spread over the sessions) from one
   asyncio+aiohttp process per wave, at most --open-concurrency handshakes in flight; a
   stream counts when its first event (the snapshot) arrived. Two waves of half each; after
   each, one update is published to every session (a waiting stream holds the last chunk
   it wrote, so the figure is taken with every stream just past an update, as during a
   sync). Worker VmRSS before (after a warm-up) and after: (after - before) / streams; the
   slope between the waves is the marginal cost, free of one-time costs. --capacity-floor
   opens the same streams on a bare WSGI generator (bench/sse_floor_app.py): what gunicorn
   and gevent alone hold per stream.
2. Latency: one stream per session on a fresh worker; publisher processes (--publishers,
   sessions sharded; one process cannot make 1,000 Progress.publish a second) call for every
   session once a second, spread evenly over the second, update_account() with a growing
   count, then Progress.publish(token, "progress", force=True). The client takes receive
   time - data-published-at (epoch ms: +-1 ms). From the publishers' clock, receive - the
   moment of the Redis PUBLISH call (us), joined on the SSE event id; and receive - the
   Redis floor's receive of the same event (time spent in the web worker, HTTP and client).
   Side by side on the same load: (a) Flask-SSE (bench/sse_flask_sse_app.py, same gunicorn
   settings) publishing {"t": time.time()} with sse.publish(channel=token); (b) the Redis
   floor: a redis-py SUBSCRIBE on expense_sync.progress.CHANNEL during the product run, no
   HTTP (--floor-alone: also with nothing else running). CPU of every process while
   publishing, and the machine's, tell whether other work disturbed the run.
3. Browser: Chromium (Playwright) on /sync of the running session, where htmx's SSE extension
   applies each update: htmx's swap (htmx:before:swap to htmx:after:swap: morph, processing)
   plus a forced style+layout (getBoundingClientRect on the widget), and the whole update from
   the message event (parsing the fragment too): wall time (performance.now) and the
   main thread's CPU time (user-timing marks in a trace carry it), whatever else the cores
   did; CDP Performance.getMetrics per update as a cross-check.

BENCH_DUMP=path writes raw samples as JSON files named after path.
--census (use ~1000 streams) prints what a held stream's memory is made of: objects by type
and allocation sites (tracemalloc in the worker). --profile-worker samples the worker with
py-spy during the product latency run (its own CPU disturbs that run's latencies).
A benchmark reports, it does not fail: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-clave-sse-1"
STREAMS_EMAIL = "streams@bench.example.cr"
BROWSER_EMAIL = "browser@bench.example.cr"
IDLE_EMAIL = "idle@bench.example.cr"  # no sync yet: its dashboards' streams only wait
USER_AGENT = "expense-sync-bench/sse"  # Flask-Login "strong": one UA for login and streams
METRICS_TOKEN = "bench-metrics-token"
BANKS = ("bac", "davibank", "promerica")
ACCOUNT_TOTAL = 200_000  # emails per account: bars move but never reach 100 %
STEP = 37  # emails added to one account per publish

PROBE = "bench/sse_gunicorn_probe.py"  # the product's gunicorn settings, plus probes
GOAL_STREAMS = 10_000
GOAL_KB_PER_STREAM = 24.0
GOAL_KB_PER_IDLE_STREAM = 21.0  # an idle dashboard's stream
HEARTBEAT_EVERY = 15.0  # seconds, as the streams send them
GOAL_P50_MS = 5.0
GOAL_P99_MS = 50.0
GOAL_BROWSER_P95_MS = 5.0

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# -- small helpers -------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def quiet_gc() -> None:
    """No collector pauses in the measuring processes (a bounded run; they keep little).

    A full collection of a process holding the app's modules takes ~50-100 ms: in the
    floor subscriber or the stream client it showed up as a latency spike of the product.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.disable()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    from servers import free_port as _free_port

    return _free_port()


def children(pid: int) -> list[int]:
    from servers import children as _children

    return list(_children(pid))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes of the machine have been busy (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# -- the stack: Redis, database, gunicorn ---------------------------------------------------


@dataclass
class Data:
    stream_tokens: list[str]
    stream_accounts: list[list[int]]
    browser_token: str
    browser_accounts: list[int]


class Stack:
    def __init__(self, workdir: Path, streams: int):
        from servers import RedisServer

        self.workdir = workdir
        self.redis = RedisServer()
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "REDIS_URL": self.redis.url,
            "EXPENSE_SYNC_ENV": "test",
            "RATELIMIT_ENABLED": "false",
            "WEB_CONCURRENCY": "1",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LOCAL_MAILBOX_ROOT": str(workdir),
            # One login opens every stream; the product lets a user hold 20 per process.
            "MAX_STREAMS_PER_USER": str(streams + 50),
        }
        # gunicorn.conf.py holds 10,000 connections by default; the bench needs a few more.
        if streams + 50 > 10_000:
            self.env["WORKER_CONNECTIONS"] = str(streams + 50)
        self.web: subprocess.Popen | None = None
        self.port = 0
        self.log = workdir / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self):
        from expense_sync import create_app

        os.environ.update(
            {
                k: self.env[k]
                for k in ("DATABASE_URL", "REDIS_URL", "RATELIMIT_ENABLED", "EXPENSE_SYNC_ENV")
            }
        )
        return create_app()

    def start_web(
        self, wsgi: str = "wsgi:app", config: str = "gunicorn.conf.py", env: dict | None = None
    ) -> None:
        self.stop_web()
        self.port = free_port()
        out = self.log.open("ab")
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                config,
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
                wsgi,
            ],
            cwd=ROOT,
            env={**self.env, "PORT": str(self.port), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log.read_text()[-3000:])
            try:
                status, _, _ = request(self.port, "GET", "/healthz")
                if status == 200 and self.worker_pid():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start:\n" + self.log.read_text()[-3000:])

    def worker_pid(self) -> int | None:
        pids = children(self.web.pid) if self.web else []
        return pids[0] if len(pids) == 1 else None

    def stop_web(self) -> None:
        if self.web is None:
            return
        if self.web.poll() is None:
            self.web.send_signal(signal.SIGQUIT)  # quick shutdown: streams do not drain
            try:
                self.web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()
        self.web = None

    def close(self) -> None:
        self.stop_web()
        self.redis.close()


def prepare_data(app, sessions: int) -> Data:
    """Migrate, then write users, accounts and running sessions; seed Redis for each."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from expense_sync.auth import create_user
    from expense_sync.extensions import db
    from expense_sync.jobs import seed_progress
    from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount, now_utc

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        # One user holds --sessions running syncs here, which the product forbids (one at a
        # time per user); the throwaway database drops that index so every stream follows the
        # running-session code path while one login serves them all.
        db.session.execute(sa.text("DROP INDEX IF EXISTS uq_sync_session_one_active"))
        db.session.commit()
        started = now_utc()

        def running(user, accounts) -> SyncSession:
            session = SyncSession(user_id=user.id, status="running", started_at=started)
            session.accounts = [
                SyncSessionAccount(
                    email_account=account,
                    status="processing",
                    total_emails=ACCOUNT_TOTAL,
                    started_at=started,
                )
                for account in accounts
            ]
            return session

        def accounts_of(user, email):
            rows = [
                EmailAccount(
                    user_id=user.id,
                    bank=bank,
                    address=f"{bank}.{email}",
                    source_kind="maildir",
                    local_path=f"/nonexistent/{bank}",
                )
                for bank in BANKS
            ]
            db.session.add_all(rows)
            return rows

        create_user(IDLE_EMAIL, PASSWORD)
        streams_user = create_user(STREAMS_EMAIL, PASSWORD)
        browser_user = create_user(BROWSER_EMAIL, PASSWORD)
        db.session.flush()
        stream_accounts = accounts_of(streams_user, STREAMS_EMAIL)
        browser_accounts = accounts_of(browser_user, BROWSER_EMAIL)
        db.session.flush()
        rows = [running(streams_user, stream_accounts) for _ in range(sessions)]
        browser = running(browser_user, browser_accounts)
        db.session.add_all([*rows, browser])
        db.session.commit()
        for session in [*rows, browser]:
            seed_progress(session)
        ids = [a.id for a in stream_accounts]
        return Data(
            [s.token for s in rows],
            [ids] * sessions,
            browser.token,
            [a.id for a in browser_accounts],
        )


# -- HTTP from the orchestrator -------------------------------------------------------------


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def log_in(port: int, email: str) -> str:
    """Log in through the real form; returns the Cookie header the streams send."""
    cookies: dict[str, str] = {}

    def keep(headers) -> None:
        for value in headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]

    status, headers, page = request(port, "GET", "/login")
    keep(headers)
    match = re.search(rb'<meta name="csrf-token" content="([^"]+)"', page)
    if status != 200 or not match:
        raise RuntimeError(f"no login form (HTTP {status})")
    form = urllib.parse.urlencode(
        {"csrf_token": match.group(1).decode(), "email": email, "password": PASSWORD}
    ).encode()
    status, headers, _ = request(
        port,
        "POST",
        "/login",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        },
    )
    keep(headers)
    if status != 302 or "/login" in (headers.get("Location") or ""):
        raise RuntimeError(f"login failed (HTTP {status})")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def read_first_event(port: int, path: str, cookie: str) -> bytes:
    """Open one stream, read up to its first event, close it (warm-up and checks)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "GET",
            path,
            headers={"User-Agent": USER_AGENT, "Cookie": cookie, "Accept": "text/event-stream"},
        )
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream {path}: HTTP {response.status}")
        data = b""
        while b"\n\n" not in data:
            chunk = response.read1(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        conn.close()


def open_streams_gauge(port: int) -> int | None:
    status, _, body = request(
        port, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    if status != 200:
        return None
    match = re.search(rb"^expense_sync_open_streams(?:\{[^}]*\})? ([0-9.e+]+)$", body, re.M)
    return int(float(match.group(1))) if match else None


def redis_clients(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return len(client.client_list())
    finally:
        client.close()


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
    import redis

    records: list[tuple] = []
    late: list[float] = []
    n = len(tokens)
    period = 1.0 / rate

    if mode == "product":
        from expense_sync.progress import CHANNEL, Progress

        class TimedRedis(redis.Redis):
            last_publish = 0.0

            def publish(self, channel, message, **kwargs):
                if channel == CHANNEL:
                    TimedRedis.last_publish = time.time()
                return super().publish(channel, message, **kwargs)

        progress = Progress(TimedRedis.from_url(redis_url))
        processed = [[0] * len(a) for a in accounts]

        def send(i: int, tick: int) -> None:
            slot = tick % len(accounts[i])
            processed[i][slot] = min(ACCOUNT_TOTAL - 1, processed[i][slot] + STEP)
            progress.update_account(
                tokens[i], accounts[i][slot], status="processing", processed=processed[i][slot]
            )
            event_id = progress.publish(tokens[i], "progress", force=True)
            records.append((i, event_id, TimedRedis.last_publish))
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
        event = json.loads(data)
        published = json.loads(event["data"])["state"].get("published_at") or 0
        records.append((event["token"], event["id"], received, published))
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
    from playwright.sync_api import sync_playwright

    stack.start_web()
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
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


# -- report ---------------------------------------------------------------------------------


def fmt(value, digits=1, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def section(self, title: str) -> None:
        self.rows.append((f"[{title}]", "", "", ""))

    def add(self, name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        self.rows.append((name, value, goal, verdict))

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(4)]
        widths = [
            max(w, len(h)) for w, h in zip(widths, ("figure", "value", "goal", ""), strict=True)
        ]
        line = "  ".join("-" * w for w in widths)
        print(line)
        print(
            "  ".join(
                h.ljust(w)
                for h, w in zip(("figure", "value", "goal", "verdict"), widths, strict=True)
            )
        )
        print(line)
        for row in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(line)


def quartet(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q):.1f}" for q in (50, 95, 99)) + (
        f" / {max(values):.1f} ms"
    )


def latency_rows(table: Table, lat: Latency, goals: bool) -> None:
    """p50/p95/p99/max on one line; with goals, p50 and p99 and delivery get verdicts."""
    table.add(f"{lat.name}", quartet(lat.values_ms))
    if lat.at:
        seconds: dict[int, list[float]] = {}
        start = min(lat.at)
        for at, value in zip(lat.at, lat.values_ms, strict=True):
            seconds.setdefault(int(at - start), []).append(value)
        p99s = sorted(percentile(v, 99) for v in seconds.values() if len(v) >= 10)
        if p99s:
            table.add(
                "    p99 of each second: median / worst",
                f"{percentile(p99s, 50):.1f} / {p99s[-1]:.1f} ms ({len(p99s)} seconds)",
            )
    table.add(
        "    events received / expected",
        f"{lat.received} / {lat.expected}",
        "all" if goals else "",
        (lat.expected > 0 and lat.received == lat.expected) if goals else None,
    )
    if goals:
        p50, p99 = lat.q(50), lat.q(99)
        table.add(
            "    p50",
            fmt(p50, 1, " ms"),
            f"<= {GOAL_P50_MS:g} ms",
            p50 is not None and p50 <= GOAL_P50_MS,
        )
        table.add(
            "    p99",
            fmt(p99, 1, " ms"),
            f"<= {GOAL_P99_MS:g} ms",
            p99 is not None and p99 <= GOAL_P99_MS,
        )


def load_rows(table: Table, name: str, result: dict, events: int) -> None:
    load, published = result["load"], result["published"]
    table.add(f"  {name}: CPU while publishing (cores)", load.describe())
    others = max(0.0, load.machine - load.ours) / load.seconds
    table.add(
        f"  {name}: machine busy / not the bench's processes (others, kernel)",
        f"{load.machine / load.seconds:.2f} / {others:.2f} cores"
        + ("  << other work competed: latencies inflated" if others > 0.5 else ""),
    )
    table.add(
        f"  {name}: publishes / lateness p99 vs schedule",
        f"{len(published.records)} in {published.seconds:.1f} s / "
        f"{(percentile(published.late, 99) or 0) * 1000:.1f} ms",
    )
    if load.worker is not None and events:
        per = load.worker * 1000 / events
        table.add(
            f"  {name}: worker CPU per event delivered",
            f"{per:.2f} ms (one worker saturates near {1000 / per:,.0f} events/s)",
        )


def report(args, cap, cap_user, cap_floor, prod, floor_alone, fsse, web, loadavg: str) -> None:
    table = Table()
    table.section(f"machine: {os.cpu_count()} cores, load average at start {loadavg}")
    if cap:
        table.section(
            f"1. capacity: one gevent worker, {args.streams} streams over "
            f"{min(args.sessions, args.streams)} sessions"
        )
        got = cap["opened"]["snapshots"]
        goal = min(args.streams, GOAL_STREAMS)
        table.add(
            "streams open that received the snapshot",
            f"{got} / {args.streams}",
            f">= {goal}",
            got >= goal,
        )
        table.add(
            "  open when measured: server gauge / client at stop",
            f"{cap['gauge']} (incl. 5 warm-up) / {cap['stop']['open_at_stop']}",
        )
        table.add("  update round: events received / sent", "{} / {}".format(*cap["round"]))
        errors = {**cap["opened"]["errors"], **cap["stop"]["errors"]}
        if errors:
            table.add("  client errors", ", ".join(f"{k}: {v}" for k, v in errors.items()))
        table.add(
            "  time to open them all / worker CPU per stream opened",
            f"{cap['opened']['seconds']:.1f} s / {cap['cpu_open'] * 1000 / max(got, 1):.2f} ms",
        )
        table.add("  Redis connections (all clients) while held", str(cap["redis_clients"]))
        table.add("  worker still the same process", str(cap["worker_survived"]))
        if cap["gc"]:
            g = cap["gc"]
            table.add(
                "  worker garbage collections while opening and holding",
                f"{g['count']}, {g['full']} full; longest full {g['full_max']:.0f} ms, "
                f"{g['total'] * 1000:.0f} ms in all",
            )
        mb = [cap["before_kb"], cap["half_kb"], cap["opened_kb"], cap["after_kb"]]
        label = "worker RSS: before / half, updated / all open / all, updated"
        if cap["idle_kb"]:
            mb.append(cap["idle_kb"])
            label += " / idle"
        table.add(label, " / ".join(f"{v / 1024:.0f}" for v in mb) + " MB")
        per = (cap["after_kb"] - cap["before_kb"]) / max(got, 1)
        table.add(
            "memory per stream (each just past an update)",
            fmt(per, 1, " KB"),
            f"<= {GOAL_KB_PER_STREAM:g} KB",
            per <= GOAL_KB_PER_STREAM,
        )
        slope = (cap["after_kb"] - cap["half_kb"]) / max(got - cap["half"], 1)
        table.add(f"  marginal: streams {cap['half']} -> {got}", fmt(slope, 1, " KB"))
        if cap["idle_kb"]:
            table.add(
                "  memory per stream once idle (last write a heartbeat)",
                fmt((cap["idle_kb"] - cap["before_kb"]) / max(got, 1), 1, " KB"),
            )
    if cap_user:
        got = cap_user["opened"]["snapshots"]
        table.section(f"1b. idle dashboards: {args.streams} x GET /sync/stream, no sync running")
        table.add(
            "streams open (first heartbeat received)",
            f"{got} / {args.streams}",
            str(args.streams),
            got == args.streams,
        )
        per = (cap_user["idle_kb"] - cap_user["before_kb"]) / max(got, 1)
        table.add(
            "memory per idle stream",
            fmt(per, 1, " KB"),
            f"<= {GOAL_KB_PER_IDLE_STREAM:g} KB",
            per <= GOAL_KB_PER_IDLE_STREAM,
        )
        busy = cap_user["cpu_quiet"] / cap_user["quiet"]
        beats = got * cap_user["quiet"] / HEARTBEAT_EVERY
        table.add(
            "worker CPU while they wait: share of a core / per heartbeat",
            f"{busy * 100:.2f} % / {cap_user['cpu_quiet'] / max(beats, 1) * 1e6:.0f} us",
        )
    if cap_floor:
        got = cap_floor["opened"]["snapshots"]
        table.add(
            "floor: bare WSGI generator, same worker (bench/sse_floor_app.py)",
            f"{got} streams, "
            f"{(cap_floor['after_kb'] - cap_floor['before_kb']) / max(got, 1):.1f} KB "
            f"per stream, {cap_floor['opened']['seconds']:.1f} s to open",
        )
    if prod or fsse:
        table.section(
            f"2. latency: {args.sessions} sessions x 1 update/s x {args.seconds} s "
            "(p50 / p95 / p99 / max)"
        )
    if prod:
        table.add(
            "expense_sync streams open (snapshot received)",
            f"{prod['opened']['snapshots']} / {args.sessions}",
        )
        load_rows(table, "expense_sync", prod, prod["hires"].received)
        latency_rows(table, prod["ms"], True)
        latency_rows(table, prod["hires"], False)
        latency_rows(table, prod["excess"], False)
        if prod["gc"]:
            g = prod["gc"]
            table.add(
                "  worker garbage collections during the run (gc.callbacks)",
                f"{g['count']}, {g['full']} full; longest {g['max']:.1f} ms, longest "
                f"full {g['full_max']:.1f} ms, {g['total'] * 1000:.0f} ms in all",
            )
    if fsse:
        table.add("Flask-SSE streams subscribed", f"{fsse['subscribed']} / {args.sessions}")
        load_rows(table, "Flask-SSE", fsse, fsse["lat"].received)
        latency_rows(table, fsse["lat"], False)
    if prod:
        latency_rows(table, prod["floor"], False)
    if floor_alone:
        load_rows(table, "floor alone", floor_alone, 0)
        latency_rows(table, floor_alone["floor"], False)
        latency_rows(table, floor_alone["floor_ms"], False)
    if web:
        table.section(f"3. browser: Chromium, {web['sent']} updates at 5/s")
        morph, cpu = web["morph"], web["morph_cpu"]
        table.add(
            "updates applied / published",
            f"{len(morph)} / {web['sent']}",
            "all",
            len(morph) >= web["sent"],
        )
        table.add(
            "swap + style + layout, wall (performance.now): p50 / p95",
            f"{fmt(percentile(morph, 50), 2)} / {fmt(percentile(morph, 95), 2)} ms",
        )
        p95 = percentile(morph, 95)
        table.add(
            "  p95 wall",
            fmt(p95, 2, " ms"),
            f"<= {GOAL_BROWSER_P95_MS:g} ms",
            p95 is not None and p95 <= GOAL_BROWSER_P95_MS,
        )
        table.add(
            "swap + style + layout, main-thread CPU (trace): p50 / p95",
            f"{fmt(percentile(cpu, 50), 2)} / {fmt(percentile(cpu, 95), 2)} ms "
            f"({len(cpu)} updates)",
        )
        p95 = percentile(cpu, 95)
        table.add(
            "  p95 CPU",
            fmt(p95, 2, " ms"),
            f"<= {GOAL_BROWSER_P95_MS:g} ms",
            p95 is not None and p95 <= GOAL_BROWSER_P95_MS,
        )
        table.add(
            "whole update (message to swapped): wall p50 / p95, CPU p50 / p95",
            f"{fmt(percentile(web['apply'], 50), 2)} / "
            f"{fmt(percentile(web['apply'], 95), 2)}, "
            f"{fmt(percentile(web['apply_cpu'], 50), 2)} / "
            f"{fmt(percentile(web['apply_cpu'], 95), 2)} ms",
        )
        n = max(len(morph), 1)
        cdp = web["cdp"]
        total = (
            (cdp["ScriptDuration"] + cdp["RecalcStyleDuration"] + cdp["LayoutDuration"]) * 1000 / n
        )
        table.add(
            "CDP getMetrics per update: script + style + layout (mean)",
            f"{total:.2f} ms = {cdp['ScriptDuration'] * 1000 / n:.2f}"
            f"{' (not reported)' if not cdp['ScriptDuration'] else ''} + "
            f"{cdp['RecalcStyleDuration'] * 1000 / n:.2f} + "
            f"{cdp['LayoutDuration'] * 1000 / n:.2f}",
        )
        table.add(
            "  CDP per update: style recalcs / layouts / all main-thread tasks",
            f"{cdp['RecalcStyleCount'] / n:.1f} / {cdp['LayoutCount'] / n:.1f} / "
            f"{cdp['TaskDuration'] * 1000 / n:.2f} ms (animations included)",
        )
    table.print()
    profile = prod and prod.get("profile")
    if profile:
        print(
            f"\nworker CPU during the product latency run, py-spy ({profile['samples']} "
            "samples, idle excluded): share of samples whose stack holds\n"
            "(py-spy's own CPU competes with the run: its latency figures are disturbed)"
        )
        for name, share in profile["parts"].items():
            print(f"  {share * 100:5.1f} %  {name}")
        print("busiest functions (own time):")
        for name, share in profile["top"]:
            print(f"  {share * 100:5.1f} %  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--browser-updates", type=int, default=200)
    parser.add_argument(
        "--open-concurrency",
        type=int,
        default=100,
        help="stream handshakes in flight at once (capacity phase)",
    )
    parser.add_argument("--open-timeout", type=float, default=120.0)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-flask-sse", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="capacity: also measure memory once every stream is idle (+17 s)",
    )
    parser.add_argument(
        "--user-streams",
        action="store_true",
        help="also open --streams idle dashboards' streams (GET /sync/stream "
        "of a user with no sync): memory and CPU per stream (+25 s)",
    )
    parser.add_argument(
        "--capacity-floor",
        action="store_true",
        help="also open the streams on a bare WSGI app (bench/sse_floor_app.py)"
        ": what gunicorn+gevent hold per stream whatever the app (+15 s)",
    )
    parser.add_argument(
        "--floor-alone",
        action="store_true",
        help="also measure the Redis floor with nothing else running (+25 s)",
    )
    parser.add_argument(
        "--publishers", type=int, default=3, help="publisher processes sharing the sessions"
    )
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="sample the worker with py-spy during the product latency run "
        "(pip install py-spy; benchmark-only)",
    )
    parser.add_argument(
        "--census",
        action="store_true",
        help="instead of the benchmark: where a held stream's memory goes "
        "(tracemalloc in the worker; use ~1000 streams)",
    )
    args = parser.parse_args()
    raise_nofile()
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = time.monotonic()
    cap = cap_user = cap_floor = prod = floor_alone = fsse = web = None
    with tempfile.TemporaryDirectory(prefix="bench-sse-") as tmp:
        stack = Stack(Path(tmp), args.streams)
        try:
            app = stack.app()
            data = prepare_data(app, args.sessions)
            print(
                f"setup: {args.sessions} sessions in {time.monotonic() - started:.1f} s", flush=True
            )
            if args.census:
                census(stack, data, args)
                return 0
            if not args.skip_capacity:
                cap = capacity(stack, data, args)
                print(f"capacity done at {time.monotonic() - started:.0f} s", flush=True)
            if args.user_streams:
                cap_user = capacity_user_streams(stack, args)
                print(f"idle user streams done at {time.monotonic() - started:.0f} s", flush=True)
            if args.capacity_floor:
                cap_floor = capacity_floor(stack, args)
            if not args.skip_latency:
                prod = latency_product(stack, data, args)
                print(f"product latency done at {time.monotonic() - started:.0f} s", flush=True)
                if not args.skip_flask_sse:
                    fsse = latency_flask_sse(stack, data, args)
                    print(
                        f"Flask-SSE latency done at {time.monotonic() - started:.0f} s", flush=True
                    )
                if args.floor_alone:
                    floor_alone = latency_floor_alone(stack, data, args)
                    print(f"floor done at {time.monotonic() - started:.0f} s", flush=True)
            if not args.skip_browser:
                web = browser(stack, data, args)
                print(f"browser done at {time.monotonic() - started:.0f} s", flush=True)
        finally:
            stack.close()
    if os.environ.get("BENCH_DUMP"):
        Path(os.environ["BENCH_DUMP"]).write_text(
            json.dumps({"web": web}, default=lambda o: o.__dict__)
        )
    report(args, cap, cap_user, cap_floor, prod, floor_alone, fsse, web, loadavg)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
