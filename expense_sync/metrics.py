"""Prometheus metrics: the metric objects, one small function per thing worth counting, and
what /metrics exposes.

One process (tests, `flask run`) uses prometheus_client's default in-process registry. Several
(gunicorn workers, the RQ worker and its work-horses) need PROMETHEUS_MULTIPROC_DIR set before
they start: each process then writes its values to files in that directory, and a scrape sums
the files of every process on the host. prometheus_client decides this when a metric is
created, that is when this module is imported; the scrape decides again from the environment,
so a process can read a directory that other processes wrote.
"""

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
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from rq import Queue, Worker

from .states import SessionStatus

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ERROR_TYPES = ("network", "authentication", "server", "tls", "folder", "unreadable_email")
REFUSAL_REASONS = ("rate_limited", "foreign_origin", "not_found", "not_logged_in")
SYNC_OUTCOMES = (SessionStatus.COMPLETED, SessionStatus.FAILED)

_work_horse_of: int | None = None


def _process_identifier() -> str:
    # Files are named after this. RQ forks a new work-horse for every job: named after their
    # pids, they would leave a few files per job behind and every scrape would read them all.
    # A worker runs one work-horse at a time, so its horses take turns on one set of files
    # named after the worker (they continue its counts); the worker itself records nothing.
    return f"horse-{_work_horse_of}" if _work_horse_of else str(os.getpid())


if os.environ.get(MULTIPROC_ENV):
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)
# A `_created` series per counter doubles what is stored and nothing here reads it.
disable_created_metrics()


def enter_work_horse() -> None:
    """Call first thing in an RQ work-horse, before anything is recorded."""
    global _work_horse_of
    _work_horse_of = os.getppid()


EMAILS = Counter("expense_sync_emails_processed", "Emails read and classified by syncs.")
EXPENSES = Counter("expense_sync_expenses_detected", "Expenses detected by syncs.")
ERRORS = Counter(
    "expense_sync_errors", "Sync errors: failed accounts by cause, and unreadable emails.", ["type"]
)
RETRIES = Counter("expense_sync_retries", "Mailbox retries after a transient failure.", ["type"])
SYNCS = Counter("expense_sync_syncs_finished", "Syncs that ended, by outcome.", ["outcome"])
BROADCASTS = Counter("expense_sync_broadcasts", "Progress snapshots published.", ["kind"])
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
ETA_ERROR = Histogram(
    "expense_sync_eta_relative_error",
    "|estimate - actual| / actual of the time remaining shown at half way, per completed sync.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5),
)

# Series that exist at zero can be rated and alerted on before the first event.
for _type in ERROR_TYPES:
    ERRORS.labels(_type)
for _reason in REFUSAL_REASONS:
    REFUSALS.labels(_reason)
for _outcome in SYNC_OUTCOMES:
    SYNCS.labels(_outcome)


def record_batch(processed: int, detected: int, errors: int) -> None:
    """A batch of emails was stored with its checkpoint."""
    EMAILS.inc(processed)
    EXPENSES.inc(detected)
    ERRORS.labels("unreadable_email").inc(errors)


def record_account_failure(kind: str) -> None:
    ERRORS.labels(kind if kind in ERROR_TYPES else "server").inc()


def record_retry(kind: str) -> None:
    RETRIES.labels(kind).inc()


def record_sync(outcome: str) -> None:
    SYNCS.labels(outcome).inc()


def record_broadcast(kind: str) -> None:
    BROADCASTS.labels(kind).inc()


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
        ETA_ERROR.observe(abs(estimate - actual) / actual)


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
