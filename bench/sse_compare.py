"""Our live updates beside a minimal gevent SSE hub: the same load on the same box.

    .venv/bin/python bench/sse_compare.py [--reps 1] [--sessions 1000] [--seconds 20]
                                          [--fanout 1000] [--idle 5000] [--open-rate 500]
                                          [--product PATH] [--skip-hub] [--profile FILE]

No packages beyond the product's. Everything runs on loopback, on free ports, with its own
redis-server and a throwaway SQLite database. Each server runs on a fresh process for each
scenario, pinned to CPU 0 (`taskset`): ours exactly as deployed (`gunicorn -c
gunicorn.conf.py`, one gevent worker, the real login cookie, rendering in the path), and
bench/sse_hub_app.py under the same gunicorn settings (one Redis subscription, one small
event per message, no login or rendering). The load runs on CPU 1: one stream client
(gevent, raw sockets: bench/ssebench/raw.py) and one paced publisher, the same for both;
ours publishes as the workers do (update_account, then Progress.publish), the hub a bare
PUBLISH.

Scenarios:
1. sessions: --sessions streams, one per session (/sync_sessions/<token>/stream), each
   session published once a second for --seconds, spread evenly over the second. Latency
   is receive time - the moment of the Redis PUBLISH call (same clock), per event; CPU per
   delivered update is the server's CPU time (/proc, master and worker) over the events
   delivered; bytes per update as the client received them (SSE text, chunking aside).
2. fan-out: --fanout streams on one session, one publish a second for 10 s; per event the
   last client's receive - publish; CPU per delivery as above.
3. idle: --idle streams opened at --open-rate a second: for ours each one a dashboard's
   (/sync/stream of a user whose last sync ended), the hub's on topics nobody publishes;
   failed connects, the seconds it took, and the worker's RSS growth per stream (KB).

--profile FILE samples our worker with py-spy (`pip install py-spy`, bench-only) during the
sessions scenario and writes py-spy's raw (collapsed) stacks there.
--product PATH measures another checkout of the product as "ours" (e.g. a `git worktree`
of an earlier commit: before and after in one sitting). A benchmark reports, it does not
fail: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE / "ssebench" / "raw.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--open-rate", type=float, default=500)
    parser.add_argument("--product", type=Path, default=HERE.parent)
    parser.add_argument("--skip-hub", action="store_true")
    parser.add_argument("--profile", type=Path, help="py-spy's raw samples of the worker")
    args = parser.parse_args()
    os.environ["BENCH_PRODUCT_ROOT"] = str(args.product.resolve())
    sys.path.insert(0, str(HERE))
    from ssebench import common

    common.raise_nofile()
    results: dict[str, list[dict]] = {"ours": [], "hub": []}
    with tempfile.TemporaryDirectory(prefix="sse-compare-") as tmp:
        workdir = Path(tmp)
        stack = common.Stack(workdir, max(args.sessions, args.fanout, args.idle))
        try:
            subprocess.run(
                ["taskset", "-pc", "1", str(stack.redis._process.pid)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            app = stack.app()
            data = common.prepare_data(app, args.sessions)
            dashboard = ended_dashboard_user(app)
            for rep in range(args.reps):
                for kind in ("ours", "hub")[: 1 if args.skip_hub else 2]:
                    print(f"rep {rep + 1}/{args.reps}: {kind}", flush=True)
                    results[kind].append(run_server(kind, stack, data, dashboard, args, workdir))
        finally:
            stack.close()
    report(results, args)


def ended_dashboard_user(app) -> str:
    """A user whose one sync ended: what an idle dashboard shows."""
    from ssebench.common import PASSWORD

    from expense_sync.auth import create_user
    from expense_sync.extensions import db
    from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount, now_utc

    email = "dashboard@bench.example.cr"
    with app.app_context():
        user = create_user(email, PASSWORD)
        db.session.flush()
        account = EmailAccount(
            user_id=user.id,
            bank="bac",
            address=f"bac.{email}",
            source_kind="maildir",
            local_path="/nonexistent/bac",
        )
        now = now_utc()
        session = SyncSession(user_id=user.id, status="completed", started_at=now, finished_at=now)
        session.accounts = [
            SyncSessionAccount(
                email_account=account,
                status="completed",
                total_emails=500,
                processed_emails=500,
                started_at=now,
                finished_at=now,
            )
        ]
        db.session.add_all([account, session])
        db.session.commit()
    return email


def run_server(kind, stack, data, dashboard, args, workdir) -> dict:
    from ssebench import common

    out: dict = {}
    cookie = ""
    hub = kind == "hub"
    wsgi = "bench.sse_hub_app:app" if hub else "wsgi:app"
    env = {"PYTHONPATH": str(HERE.parent)} if hub else None

    def start() -> None:
        nonlocal cookie
        stack.start_web(wsgi=wsgi, env=env)
        for pid in [stack.web.pid, *common.children(stack.web.pid)]:
            subprocess.run(["taskset", "-pc", "0", str(pid)], check=True, stdout=subprocess.DEVNULL)
        if not hub:
            cookie = common.log_in(stack.port, common.STREAMS_EMAIL)
            common.read_first_event(
                stack.port, f"/sync_sessions/{data.stream_tokens[0]}/stream", cookie
            )

    def path(token: str) -> str:
        return f"/stream/{token}" if hub else f"/sync_sessions/{token}/stream"

    topics = [
        {"token": t, "accounts": a}
        for t, a in zip(data.stream_tokens, data.stream_accounts, strict=True)
    ]

    # 1. sessions
    start()
    clients = Client(
        workdir, stack.port, cookie, [path(t["token"]) for t in topics], args.open_rate
    )
    opening = clients.wait_open()
    profiler = None
    if args.profile and not hub:  # py-spy (bench-only): where the worker spends the run
        profiler = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--format",
                "raw",
                "-o",
                str(args.profile),
                "--pid",
                str(stack.worker_pid()),
                "--duration",
                str(int(args.seconds)),
            ],
        )
    records, cpu = publish_and_measure(stack, kind, topics, 1.0, args.seconds, workdir, args)
    if profiler is not None:
        profiler.wait(timeout=60)
    events = clients.stop()
    latencies = join(records, events)
    out["sessions"] = {
        "opening": opening,
        "latency_ms": summary([x * 1000 for x in latencies]),
        "delivered": len(events),
        "published": len(records),
        "cpu_us_per_delivery": cpu / max(1, len(events)) * 1e6,
        "bytes_per_update": sum(e[2] for e in events) / max(1, len(events)),
        "bytes_per_update_p50": common.percentile([e[2] for e in events], 50),
    }
    stack.stop_web()

    # 2. fan-out
    start()
    one = topics[:1]
    clients = Client(
        workdir, stack.port, cookie, [path(one[0]["token"])] * args.fanout, args.open_rate
    )
    opening = clients.wait_open()
    records, cpu = publish_and_measure(stack, kind, one, 1.0, 10, workdir, args)
    events = clients.stop()
    last: dict[str, float] = {}
    for event_id, received, _ in events:
        last[event_id] = max(last.get(event_id, 0.0), received)
    out["fanout"] = {
        "opening": opening,
        "last_client_ms": summary([(last[i] - t) * 1000 for i, t in records if i in last]),
        "cpu_us_per_delivery": cpu / max(1, len(events)) * 1e6,
        "delivered": len(events),
    }
    stack.stop_web()

    # 3. idle
    start()
    if not hub:
        cookie = common.log_in(stack.port, dashboard)
        common.read_first_event(stack.port, "/sync/stream", cookie)
    worker = stack.worker_pid()
    time.sleep(1)
    before = common.rss_kb(worker)
    paths = [f"/stream/idle-{i}" for i in range(args.idle)] if hub else ["/sync/stream"] * args.idle
    clients = Client(workdir, stack.port, cookie, paths, args.open_rate)
    opening = clients.wait_open()
    time.sleep(2)
    after = common.rss_kb(worker)
    clients.stop()
    out["idle"] = {"opening": opening, "kb_per_stream": (after - before) / max(1, opening["open"])}
    stack.stop_web()
    return out


class Client:
    """The stream client process (raw.py client), pinned to CPU 1."""

    def __init__(self, workdir: Path, port: int, cookie: str, paths: list[str], rate: float):
        from ssebench.common import USER_AGENT

        self.result = workdir / f"client-{time.monotonic_ns()}.json"
        spec = workdir / f"client-spec-{time.monotonic_ns()}.json"
        spec.write_text(
            json.dumps(
                {
                    "port": port,
                    "cookie": cookie,
                    "user_agent": USER_AGENT,
                    "paths": paths,
                    "open_rate": rate,
                }
            )
        )
        self.process = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, str(RAW), "client", str(spec), str(self.result)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_raise_nofile,
        )

    def wait_open(self) -> dict:
        line = self.process.stdout.readline()
        return json.loads(line) if line else {"open": 0, "failed": -1, "seconds": None}

    def stop(self) -> list:
        time.sleep(1.0)  # the last events of the run arrive
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return json.loads(self.result.read_text())["events"]


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def publish_and_measure(stack, kind, topics, rate, seconds, workdir, args):
    """Run the publisher; the server's CPU seconds from its start until a second after."""
    from sse_hub_app import HUB_CHANNEL
    from ssebench import common

    spec = workdir / f"publish-spec-{time.monotonic_ns()}.json"
    result = workdir / f"publish-{time.monotonic_ns()}.json"
    spec.write_text(
        json.dumps(
            {
                "kind": kind,
                "topics": topics,
                "rate": rate,
                "seconds": seconds,
                "redis_url": stack.redis.url,
                "channel": HUB_CHANNEL,
                "product": str(args.product.resolve()),
            }
        )
    )
    pids = [stack.web.pid, *common.children(stack.web.pid)]
    cpu0 = sum(common.cpu_seconds(p) for p in pids)
    subprocess.run(
        ["taskset", "-c", "1", sys.executable, str(RAW), "publish", str(spec), str(result)],
        check=True,
    )
    time.sleep(1.0)
    cpu = sum(common.cpu_seconds(p) for p in pids) - cpu0
    published = json.loads(result.read_text())
    return published["records"], cpu


def join(records, events) -> list[float]:
    received = {event_id: at for event_id, at, _ in events}
    return [received[i] - t for i, t in records if i in received]


def summary(values: list[float]) -> dict:
    from ssebench.common import percentile

    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "median": percentile(values, 50),
    }


def report(results: dict, args) -> None:
    def best(kind: str, *keys: str):
        values = []
        for run in results[kind]:
            value = run
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
        return values

    def cell(kind: str, *keys: str, fmt="{:.1f}") -> str:
        values = best(kind, *keys)
        if not values:
            return "-"
        return " / ".join(fmt.format(v) for v in values)

    def ratio(*keys: str) -> str:
        ours, hub = best("ours", *keys), best("hub", *keys)
        if not ours or not hub or not all(hub):
            return "-"
        return f"{(sum(ours) / len(ours)) / (sum(hub) / len(hub)):.2f}x"

    rows = [
        (f"{args.sessions:,} sessions x 1/s: p50 ms", ("sessions", "latency_ms", "p50"), "{:.2f}"),
        ("  p99 ms", ("sessions", "latency_ms", "p99"), "{:.1f}"),
        ("  max ms", ("sessions", "latency_ms", "max"), "{:.0f}"),
        ("  delivered / published", None, None),
        ("  server CPU per delivered update (us)", ("sessions", "cpu_us_per_delivery"), "{:.0f}"),
        ("  bytes per update: median", ("sessions", "bytes_per_update_p50"), "{:.0f}"),
        ("  bytes per update: mean", ("sessions", "bytes_per_update"), "{:.0f}"),
        (
            f"1 -> {args.fanout:,} fan-out: last client median ms",
            ("fanout", "last_client_ms", "median"),
            "{:.0f}",
        ),
        ("  worst ms", ("fanout", "last_client_ms", "max"), "{:.0f}"),
        ("  CPU per delivery (us)", ("fanout", "cpu_us_per_delivery"), "{:.0f}"),
        (
            f"{args.idle:,} idle at {args.open_rate:.0f}/s: failed connects",
            ("idle", "opening", "failed"),
            "{:.0f}",
        ),
        ("  seconds to open all", ("idle", "opening", "seconds"), "{:.1f}"),
        ("  KB per stream", ("idle", "kb_per_stream"), "{:.1f}"),
    ]
    print(f"\nour server: {args.product.resolve()}; reps: {args.reps} (one figure per rep)")
    print("| | ours | minimal hub | ours / hub |\n| --- | --- | --- | --- |")
    for label, keys, fmt in rows:
        if keys is None:
            cells = [
                " / ".join(
                    f"{r['sessions']['delivered']}/{r['sessions']['published']}" for r in results[k]
                )
                or "-"
                for k in ("ours", "hub")
            ]
            print(f"| {label} | {cells[0]} | {cells[1]} | |")
            continue
        ours, hub = cell("ours", *keys, fmt=fmt), cell("hub", *keys, fmt=fmt)
        print(f"| {label} | {ours} | {hub} | {ratio(*keys)} |")
    failures = [
        (k, r[s]["opening"])
        for k in results
        for r in results[k]
        for s in r
        if r[s]["opening"].get("failed")
    ]
    for kind, opening in failures:
        print(f"{kind}: failed openings {opening}")


if __name__ == "__main__":
    main()
