"""Prometheus metrics: the metric objects, one small function per thing worth counting, and
what /metrics exposes.

What the workers count (emails, expenses, errors, retries, syncs, broadcasts, the ETA's
accuracy) is kept in Redis, one hash for the whole deployment, and read at scrape time: any
web host shows all of it, wherever the workers run, and a worker that restarts continues
the counts. What a web process counts about its own streams (open streams, events sent,
their latency, refusals) stays in the process: one process (tests, `flask run`) uses
prometheus_client's default in-process registry; several (gunicorn workers) need
PROMETHEUS_MULTIPROC_DIR set before they start, each then writes its values to files in that
directory, and a scrape sums the files of the host's processes. prometheus_client decides
this when a metric is created, that is when this module is imported; the scrape decides
again from the environment.
"""

import logging
import os
import time

import redis
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from rq import Queue, Worker

from .states import SessionStatus

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ERROR_TYPES = ("network", "authentication", "server", "tls", "folder", "unreadable_email")
REFUSAL_REASONS = ("rate_limited", "foreign_origin", "not_found", "not_logged_in")
SYNC_OUTCOMES = (SessionStatus.COMPLETED, SessionStatus.FAILED)

# A `_created` series per counter doubles what is stored and nothing here reads it.
disable_created_metrics()

# -- what a web process counts, in the process -------------------------------------------

EVENTS = Counter("expense_sync_stream_events", "Live events written to browser streams.")
LATENCY = Histogram(
    "expense_sync_broadcast_latency_seconds",
    "From the worker's publish to the write on a stream.",
    # Dense around 200 ms, the alert's threshold, so its p95 is interpolated in a narrow bucket.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5, 10),
)
OPEN_STREAMS = Gauge(
    "expense_sync_open_streams", "Event streams open now.", multiprocess_mode="livesum"
)
REFUSALS = Counter("expense_sync_stream_refusals", "Stream subscriptions refused.", ["reason"])
for _reason in REFUSAL_REASONS:  # series that exist at zero can be rated and alerted on
    REFUSALS.labels(_reason)

# -- what the workers count, in Redis ----------------------------------------------------

SHARED_KEY = "es:metrics"  # field "<name>" or "<name>:<label value>" -> count
# name: (help, label, label values that exist at zero)
SHARED_COUNTERS = {
    "expense_sync_emails_processed": ("Emails read and classified by syncs.", None, ()),
    "expense_sync_expenses_detected": ("Expenses detected by syncs.", None, ()),
    "expense_sync_errors": (
        "Sync errors: failed accounts by cause, and unreadable emails.",
        "type",
        ERROR_TYPES,
    ),
    "expense_sync_retries": ("Mailbox retries after a transient failure.", "type", ()),
    "expense_sync_syncs_finished": ("Syncs that ended, by outcome.", "outcome", SYNC_OUTCOMES),
    "expense_sync_broadcasts": ("Progress snapshots published.", "kind", ()),
}
ETA_ERROR = "expense_sync_eta_relative_error"
ETA_ERROR_HELP = (
    "|estimate - actual| / actual of the time remaining shown at half way, per completed sync."
)
ETA_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5)

_shared: redis.Redis | None = None


def init_app(app) -> None:
    """Count the workers' figures in the app's Redis."""
    global _shared
    _shared = app.extensions["redis"]


def _count(*increments: tuple[str, float]) -> None:
    """Add to shared counters; a Redis that is away loses the counts, never the sync."""
    if _shared is None:
        return
    try:
        pipe = _shared.pipeline(transaction=False)
        for field, amount in increments:
            if isinstance(amount, float):
                pipe.hincrbyfloat(SHARED_KEY, field, amount)
            else:
                pipe.hincrby(SHARED_KEY, field, amount)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics not counted, Redis is away (%s)", type(exc).__name__)


def record_batch(processed: int, detected: int, errors: int) -> None:
    """A batch of emails was stored with its checkpoint."""
    _count(
        ("expense_sync_emails_processed", processed),
        ("expense_sync_expenses_detected", detected),
        ("expense_sync_errors:unreadable_email", errors),
    )


def record_account_failure(kind: str) -> None:
    _count((f"expense_sync_errors:{kind if kind in ERROR_TYPES else 'server'}", 1))


def record_retry(kind: str) -> None:
    _count((f"expense_sync_retries:{kind}", 1))


def record_sync(outcome: str) -> None:
    _count((f"expense_sync_syncs_finished:{outcome}", 1))


def record_broadcast(kind: str) -> None:
    _count((f"expense_sync_broadcasts:{kind}", 1))


def record_event_sent(published_at_ms: int | None) -> None:
    """A live event reached a stream; its latency counts from the worker's publish."""
    EVENTS.inc()
    if published_at_ms:
        # Worker and web clocks can differ by a little: never observe a negative latency.
        LATENCY.observe(max(0.0, time.time() - published_at_ms / 1000))


def stream_opened() -> None:
    OPEN_STREAMS.inc()


def stream_closed() -> None:
    OPEN_STREAMS.dec()


def stream_refused(reason: str) -> None:
    REFUSALS.labels(reason).inc()


def record_eta_accuracy(
    outcome: str, midpoint: tuple[float, int] | None, now: float | None = None
) -> None:
    """Grade the estimate shown at half way (when, seconds) against when the sync ended."""
    if outcome != SessionStatus.COMPLETED or midpoint is None:
        return  # a failed sync stops early: its end says nothing about the estimate
    made_at, estimate = midpoint
    actual = (time.time() if now is None else now) - made_at
    if actual >= 1:  # below a second the relative error is noise
        error = abs(estimate - actual) / actual
        bucket = next((floatToGoString(b) for b in ETA_BUCKETS if error <= b), "+Inf")
        _count((f"{ETA_ERROR}:{bucket}", 1), (f"{ETA_ERROR}:sum", float(error)))


class SharedCollector:
    """The workers' counters, read from Redis at scrape time (the same on every web host)."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def collect(self):
        try:
            raw = self.connection.hgetall(SHARED_KEY)
        except redis.RedisError:
            return  # the queue collector's expense_sync_queue_up says Redis is away
        values = {k.decode(): float(v) for k, v in raw.items()}
        for name, (help_text, label, known) in SHARED_COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=[label] if label else None)
            if label is None:
                family.add_metric([], values.get(name, 0))
            else:
                prefix = name + ":"
                found = {f[len(prefix) :]: v for f, v in values.items() if f.startswith(prefix)}
                for value in dict.fromkeys([*known, *sorted(found)]):
                    family.add_metric([value], found.get(value, 0))
            yield family
        # Bounds written as prometheus_client writes them ("1.0"), so the series keep their
        # names whichever code exposed them.
        bounds = (*map(floatToGoString, ETA_BUCKETS), "+Inf")
        counts = [values.get(f"{ETA_ERROR}:{b}", 0) for b in bounds]
        cumulative, running = [], 0.0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily(
            ETA_ERROR,
            ETA_ERROR_HELP,
            buckets=cumulative,
            sum_value=values.get(f"{ETA_ERROR}:sum", 0),
        )


class QueueCollector:
    """Queue depth, failed jobs and live workers, read from RQ at scrape time."""

    def __init__(self, connection: redis.Redis, queue_names: list[str]):
        self.connection = connection
        self.queue_names = queue_names

    def collect(self):
        depth = GaugeMetricFamily(
            "expense_sync_queue_depth", "Jobs waiting in the queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "expense_sync_queue_failed_jobs",
            "Jobs in the queue's failed registry.",
            labels=["queue"],
        )
        up = GaugeMetricFamily("expense_sync_queue_up", "1 when Redis answered this scrape.")
        try:
            for name in self.queue_names:
                queue = Queue(name, connection=self.connection)
                depth.add_metric([name], queue.count)
                failed.add_metric([name], queue.failed_job_registry.get_job_count(cleanup=False))
            workers = Worker.count(connection=self.connection)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (depth, failed, up)
        yield GaugeMetricFamily("expense_sync_workers", "RQ workers alive.", value=workers)


def registry(*collectors) -> CollectorRegistry:
    """What a scrape exposes: this process's metrics, or every process's in multiprocess mode."""
    scrape = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(REGISTRY)
    for collector in collectors:
        scrape.register(collector)
    return scrape


def exposition(accept: str | None, *collectors) -> tuple[bytes, str]:
    """registry(*collectors) in the format the scraper accepts, and its content type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry(*collectors)), content_type


def samples(*collectors) -> dict[str, list]:
    """Every sample of a scrape, grouped by sample name (for the health page)."""
    grouped: dict[str, list] = {}
    for family in registry(*collectors).collect():
        for sample in family.samples:
            grouped.setdefault(sample.name, []).append(sample)
    return grouped


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over cumulative (upper bound, count) buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower  # like Prometheus: the highest finite bound
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return None
