"""The RQ worker class the `worker.py` process runs, and the Redis connection it uses.

Crash recovery: RQ notices a dead worker's job only when the job's heartbeat expires
(the monitoring interval + 60 s), and a dead worker's scheduler lock keeps retries waiting
another ~60 s. On the worker's own host we know sooner: a worker or scheduler whose process
is gone is dead. Maintenance (every 10 s) hands such a job back to RQ's retry, frees the
dead scheduler's lock so this worker schedules the retry, and releases the account lock the
job held, so the sync goes on within ~15 s. Workers on other hosts are left to RQ's expiry.
"""

import logging
import socket

from flask import Flask
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry
from rq import Queue, Worker
from rq.executions import Execution
from rq.registry import StartedJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock

from .extensions import db, redis_client
from .jobs import reconcile
from .progress import AccountLock

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 10  # seconds; also the longest a dead worker on this host goes unseen


def redis_connection(url: str) -> Redis:
    """A connection that rides out a Redis restart instead of killing the worker."""
    return redis_client(
        url,
        retry=Retry(ExponentialBackoff(cap=10, base=0.2), retries=30),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=30,
    )


def process_gone(hostname: str | None, pid: int | None) -> bool:
    """Whether a process of this host has exited (a zombie has exited too)."""
    if hostname != socket.gethostname() or not pid:
        return False  # another host's process: only its heartbeat can tell
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        return False


def release_account_lock(connection: Redis, job) -> None:
    """Free the account a dead job held, so its retry (or another job) starts at once."""
    if job is None or not job.func_name.endswith("sync_account"):
        return
    # Unless it already expired, or another job holds the account now.
    AccountLock(connection, job.args[1], job.id, timeout=0).release()


def abandon_dead_executions(queue: Queue) -> int:
    """Hand the jobs of dead workers back to RQ's retry: on this host as soon as their
    process is gone, on other hosts when their heartbeat expires. Returns this host's."""
    registry = StartedJobRegistry(queue=queue)
    connection = queue.connection
    dead = []
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        try:
            execution = Execution.fetch(execution_id, job_id, connection)
        except Exception:
            continue  # already gone
        worker = Worker.find_by_key(
            Worker.redis_worker_namespace_prefix + execution.worker_name, connection=connection
        )
        if worker is None or process_gone(worker.hostname, worker.pid):
            dead.append(execution)
    if dead:
        # An execution whose expiry is past is what RQ's cleanup treats as abandoned: it runs
        # the failure callback and the job's Retry, exactly as after the heartbeat runs out.
        connection.zadd(registry.key, {execution.composite_key: 1 for execution in dead}, xx=True)
    registry.cleanup()  # with them, other hosts' jobs whose heartbeat expired
    for execution in dead:
        release_account_lock(connection, queue.fetch_job(execution.job_id))
    if dead:
        log.warning("handed %d jobs of dead workers back to RQ", len(dead))
    return len(dead)


def free_dead_scheduler_lock(queue: Queue) -> bool:
    """Drop the scheduler lock of a scheduler process that died on this host."""
    connection = queue.connection
    key = RQScheduler.get_locking_key(queue.name)
    holder = connection.get(key)
    if holder is None:
        return False
    hostname, pid = connection.hmget(SCHEDULER_KEY_TEMPLATE % holder.decode(), "hostname", "pid")
    if not process_gone(hostname and hostname.decode(), int(pid) if pid else None):
        return False
    return release_lock(connection, key, holder.decode())


class AppWorker(Worker):
    """Runs each job in a forked work-horse, inside the app, with its own DB connections."""

    app: Flask

    def run_maintenance_tasks(self):
        with self.app.app_context():  # RQ's cleanup runs our failure callbacks
            try:
                for queue in self.queues:
                    abandon_dead_executions(queue)
                    if free_dead_scheduler_lock(queue) and self.scheduler:
                        self.scheduler.acquire_locks(auto_start=True)
                super().run_maintenance_tasks()
                reconcile()
            except Exception:  # maintenance must never stop the worker
                log.exception("worker maintenance failed")
            finally:
                db.session.remove()

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        # The horse is gone for sure: its retry need not wait for the account lock to expire.
        release_account_lock(self.connection, job)
        if not job.retries_left:
            # RQ calls no failure callback for a killed horse: the job's own one runs here.
            with self.app.app_context():
                try:
                    if job.failure_callback is not None:
                        job.failure_callback(job, self.connection, None, None, None)
                except Exception:
                    log.exception("failing the account of job %s failed", job.id)
                finally:
                    db.session.remove()

    def main_work_horse(self, job, queue):
        with self.app.app_context():
            # Pooled connections were inherited from the parent: sharing them corrupts both.
            db.engine.dispose(close=False)
            super().main_work_horse(job, queue)


def make_worker(app: Flask, connection: Redis) -> AppWorker:
    """A worker for the app's queue. A job whose work-horse dies runs again after the first
    retry interval (10 s); one whose whole worker died on this host, within a maintenance
    interval more. A worker heartbeats every 5 s; with no job it polls every 10 s
    (worker_ttl - 15), which is when maintenance is due."""
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    worker = AppWorker(
        [queue],
        connection=connection,
        worker_ttl=25,
        maintenance_interval=MAINTENANCE_INTERVAL,
        job_monitoring_interval=5,
    )
    worker.app = app
    return worker
