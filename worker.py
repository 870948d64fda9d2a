"""RQ worker: builds the app once, then runs the worker with its scheduler (no gevent here)."""

import sys

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry
from rq import Queue, Worker

from expense_sync import create_app

app = create_app()


def redis_connection(url: str) -> Redis:
    """A connection that rides out a Redis restart instead of killing the worker."""
    return Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=10, base=0.2), retries=30),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=30,
    )


def main() -> None:
    connection = redis_connection(app.config["REDIS_URL"])
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    with app.app_context():
        # A killed worker's job must be picked up again within about two minutes: a short
        # worker TTL marks the dead worker, frequent maintenance re-enqueues its job.
        worker = Worker([queue], connection=connection, worker_ttl=35,
                        maintenance_interval=30, job_monitoring_interval=10)
        worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    sys.exit(main())
