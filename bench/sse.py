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
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ssebench.common import Stack, prepare_data, raise_nofile
from ssebench.phases import (
    browser,
    capacity,
    capacity_floor,
    capacity_user_streams,
    census,
    latency_flask_sse,
    latency_floor_alone,
    latency_product,
)
from ssebench.report import report


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
