"""The RQ worker class the `worker` process runs, and the Redis connection it uses."""

import logging

from flask import Flask
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry
from rq import Queue, Worker

from . import metrics
from .extensions import db
from .jobs import reconcile


def redis_connection(url: str) -> Redis:
    """A connection that rides out a Redis restart instead of killing the worker."""
    return Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=10, base=0.2), retries=30),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=30,
    )


class AppWorker(Worker):
    """Runs each job in a forked work-horse, inside the app, with its own DB connections."""

    app: Flask

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        with self.app.app_context():
            try:
                reconcile()
            except Exception:  # maintenance must never stop the worker
                logging.getLogger(__name__).exception("reconcile failed")
            finally:
                db.session.remove()

    def main_work_horse(self, job, queue):
        metrics.enter_work_horse()
        with self.app.app_context():
            # Pooled connections were inherited from the parent: sharing them corrupts both.
            db.engine.dispose(close=False)
            super().main_work_horse(job, queue)


def make_worker(app: Flask, connection: Redis) -> AppWorker:
    """A worker for the app's queue, tuned so a killed worker's job runs again within ~2 min:
    a dead worker's job expires 70 s after its last heartbeat (every 10 s) and maintenance
    every 30 s retries it."""
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    worker = AppWorker([queue], connection=connection, worker_ttl=35, maintenance_interval=30,
                       job_monitoring_interval=10)
    worker.app = app
    return worker
