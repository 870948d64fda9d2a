"""gunicorn settings for bench/sse.py --census / --experiment: the product's, plus probes.

Loaded instead of gunicorn.conf.py (whose settings it copies), it adds in the worker:

- a memory census whenever the file named by BENCH_CENSUS_TRIGGER appears (the file holds
  the output path): live objects by type (gc) and, with BENCH_TRACEMALLOC=1, what grew
  since the previous census by allocation site (tracemalloc, started once the app is
  loaded). tracemalloc makes everything slower and bigger: a census run's RSS is not the
  capacity's.
- BENCH_GC_LOG=path: every garbage collection's (generation, seconds, when), rewritten to
  that file every 0.2 s;
- BENCH_EXPERIMENT=name[,name]: monkeypatches that emulate a proposed product change, so
  its effect on memory per stream is measured before anyone edits the product:
    drop_last_chunk  after each event, yield "" (gunicorn skips empty chunks) so neither
                     gunicorn's `for item in respiter` nor werkzeug's _iter_encoded keeps
                     the last event's text alive while the stream waits;
    plain_context    the stream keeps plain values (token, finished_at, labels) instead of
                     the detached SQLAlchemy objects that widget_context() returns;
    light_context    the stream's generator runs in a small request context of its own
                     (enough for url_for) instead of keeping the subscribing request's
                     (its environ, cookies, session, g and the logged-in User object);
    no_greenlet_tree GEVENT_TRACK_GREENLET_TREE=0 (set by bench/sse.py, gevent's switch);
    gc_freeze        gc.freeze() once the app is loaded (a gunicorn post_worker_init hook).
"""

import gc
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_product: dict = {}
exec(compile((_ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), _product)
for _name, _value in _product.items():
    if not _name.startswith("_"):
        globals()[_name] = _value

_previous: list = []


def _type_name(kind: type) -> str:
    module = kind.__dict__.get("__module__", "builtins")
    return f"{module if isinstance(module, str) else '?'}.{kind.__qualname__}"


def _census(path: str) -> None:
    gc.collect()
    types = Counter(_type_name(type(o)) for o in gc.get_objects())
    result = {"types": dict(types), "blocks": sys.getallocatedblocks(), "sites": []}
    import tracemalloc

    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        result["traced"] = tracemalloc.get_traced_memory()[0]
        # The first census is the baseline; later ones give what grew since.
        stats = (snapshot.compare_to(_previous[0], "traceback") if _previous
                 else snapshot.statistics("traceback"))
        _previous[:] = [snapshot]
        result["sites"] = [
            {"size": getattr(stat, "size_diff", stat.size),
             "count": getattr(stat, "count_diff", stat.count),
             "where": [f"{f.filename}:{f.lineno}" for f in stat.traceback]}
            for stat in stats[:300]]
    Path(path).write_text(json.dumps(result))


def _experiments(names: set[str]) -> None:
    from types import SimpleNamespace

    from expense_sync.sync import stream

    if "drop_last_chunk" in names:
        event = stream._event

        def _event(event_id, payload, render):
            yield from event(event_id, payload, render)
            yield ""

        stream._event = _event
    if "plain_context" in names:
        widget_context = stream.widget_context

        def plain(session):
            context = widget_context(session)
            row = context["sync_session"]
            context["sync_session"] = SimpleNamespace(token=row.token,
                                                      finished_at=row.finished_at)
            done = context["last_completed"]
            context["last_completed"] = (SimpleNamespace(finished_at=done.finished_at)
                                         if done else None)
            return context

        stream.widget_context = plain
    if "gc_freeze" in names:
        gc.collect()
        gc.freeze()  # the loaded app's objects leave every later collection's scan
    if "light_context" in names:
        from flask import current_app, request

        def light(generator):
            app = current_app._get_current_object()
            base = request.host_url

            def run():
                with app.test_request_context("/", base_url=base):
                    yield from generator

            return run()

        stream.stream_with_context = light


def post_worker_init(worker):
    """Runs in the worker once gevent has patched it and the app is loaded."""
    import threading  # gevent's, by now

    names = {n for n in os.environ.get("BENCH_EXPERIMENT", "").split(",") if n}
    if names:
        _experiments(names)
        worker.log.info("bench experiments: %s", ", ".join(sorted(names)))
    if os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        tracemalloc.start(12)
    gc_log = os.environ.get("BENCH_GC_LOG")
    pauses: list = []
    if gc_log:
        started = {}

        def timing(phase, info):
            if phase == "start":
                started["t"] = time.perf_counter()
            elif "t" in started:
                pauses.append((info["generation"], time.perf_counter() - started.pop("t"),
                               time.time()))

        gc.callbacks.append(timing)
    trigger = os.environ.get("BENCH_CENSUS_TRIGGER")
    if not trigger and not gc_log:
        return
    trigger = Path(trigger) if trigger else None

    def watch() -> None:
        while True:
            if gc_log:
                Path(gc_log).write_text(json.dumps(pauses))
            if trigger and trigger.exists():
                target = trigger.read_text().strip()
                trigger.unlink()
                try:
                    _census(target)
                except Exception as exc:  # tell bench/sse.py instead of hanging it
                    Path(target).write_text(json.dumps({"error": repr(exc)}))
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="bench-census").start()
