"""gunicorn settings for bench/sse.py: the product's, plus probes.

Loaded instead of gunicorn.conf.py (whose settings it copies), it adds in the worker:

- a memory census whenever the file named by BENCH_CENSUS_TRIGGER appears (the file holds
  the output path): live objects by type (gc) and, with BENCH_TRACEMALLOC=1, what grew
  since the previous census by allocation site (tracemalloc, started once the app is
  loaded). tracemalloc makes everything slower and bigger: a census run's RSS is not the
  capacity's.
- BENCH_GC_LOG=path: every garbage collection's (generation, seconds, when), rewritten to
  that file every 0.2 s.
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
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        result["traced"] = tracemalloc.get_traced_memory()[0]
        # The first census is the baseline; later ones give what grew since.
        stats = (
            snapshot.compare_to(_previous[0], "traceback")
            if _previous
            else snapshot.statistics("traceback")
        )
        _previous[:] = [snapshot]
        result["sites"] = [
            {
                "size": getattr(stat, "size_diff", stat.size),
                "count": getattr(stat, "count_diff", stat.count),
                "where": [f"{f.filename}:{f.lineno}" for f in stat.traceback],
            }
            for stat in stats[:300]
        ]
    Path(path).write_text(json.dumps(result))


def post_worker_init(worker):
    """Runs in the worker once gevent has patched it and the app is loaded."""
    import threading  # gevent's, by now

    product_hook = _product.get("post_worker_init")
    if product_hook:
        product_hook(worker)
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
                pauses.append(
                    (info["generation"], time.perf_counter() - started.pop("t"), time.time())
                )

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
