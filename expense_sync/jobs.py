"""RQ entry points: `start_sync` counts every account, then one `sync_account` job each.

Jobs take ids only, load what they need, and turn any failure into an explicit `failed`
state with a user-readable reason before re-raising. The database holds the durable
checkpoint (last UID and counts), committed with each batch, so a job that is killed and
run again continues where the last commit left it.

The database alone decides a sync's state; Redis carries its progress to the widgets. So
every transition is committed first and announced after, and an announcement that Redis
cannot take is left to `reconcile`, the watchdog that worker maintenance runs: it queues
again work that no job holds, ends sessions whose accounts are all done, and republishes
the final state of sessions that ended while Redis was away.
"""

import errno
import functools
import logging
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Callback, Retry, get_current_job
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from . import metrics
from .engine import (
    REDIS_DOWN,
    AccountSync,
    SyncFailure,
    checkpoint,
    count_account,
    finish_unchanged,
)
from .extensions import db, get_queue, get_redis
from .models import SyncSession, SyncSessionAccount, now_utc
from .progress import Progress, account_lock_key, now_ms
from .progress_rows import account_fields, seed_progress
from .states import AccountStatus, SessionStatus, fail_account, finish_session, start_session

log = logging.getLogger(__name__)

JOB_TIMEOUT = 6 * 3600
JOB_RETRIES = 5
RECENTLY_ENDED = timedelta(hours=1)  # the progress keys of an ended session live this long
START_GRACE = timedelta(seconds=30)  # a new session's first job is queued right after commit

INTERNAL_ERROR = "Error interno al sincronizar esta cuenta; quedó registrado para revisión."
DATABASE_RETRY = "Reintentando: problema con la base de datos."
DATABASE_FAILED = (
    "La base de datos no respondió tras varios intentos; sincronice de nuevo más tarde."
)


def queue_start_sync(session: SyncSession) -> None:
    """Queue the job that counts a session's mail and then queues its accounts' jobs."""
    _enqueue(start_sync, start_sync_failed, session)


def queue_sync_account(session: SyncSession, row_id: int) -> None:
    """Queue the job that syncs one account of a session."""
    _enqueue(sync_account, sync_account_failed, session, row_id)


def _enqueue(func, on_failure, session: SyncSession, *args) -> None:
    """Queue a job of a session; one whose worker or work-horse died runs again (RQ's Retry).

    Once RQ gives up on it, `on_failure`, its kind's own callback, fails what it owed. The
    job knows its session's token without the database, to say why it runs again when the
    database is what failed.
    """
    intervals = current_app.config["JOB_RETRY_INTERVALS"]
    get_queue().enqueue(
        func,
        session.id,
        *args,
        retry=Retry(max=JOB_RETRIES, interval=intervals),
        job_timeout=JOB_TIMEOUT,
        failure_ttl=7 * 86400,
        on_failure=Callback(on_failure),
        meta={"token": session.token},
    )


def says_why_it_retries(job_function):
    """A job the database failed runs again (RQ's Retry); meanwhile the widget says why."""

    @functools.wraps(job_function)
    def run(*args):
        try:
            return job_function(*args)
        except Exception as exc:
            job = get_current_job()
            if database_trouble(exc) and job is not None and job.meta.get("token"):
                tell_retry(job.meta["token"], DATABASE_RETRY)
            raise

    return run


def database_trouble(exc: BaseException | None) -> bool:
    """Whether retrying may fix it: the database is down, restarting, locked or full."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def start_sync_failed(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """Once RQ gives up on counting a session, its open accounts fail with a clear reason."""
    if job.retries_left:
        return  # RQ runs it again
    session = db.session.get(SyncSession, job.args[0])
    if session is None:
        return
    message = failure_message(exc_value)
    for row in session.accounts:
        if row.status not in AccountStatus.TERMINAL:
            fail_row(row, "server", message)
    finalize_if_done(session)


def sync_account_failed(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """Once RQ gives up on syncing an account, the account fails with a clear reason."""
    if job.retries_left:
        return  # RQ runs it again
    row = db.session.get(SyncSessionAccount, job.args[1])
    if row is not None and row.status not in AccountStatus.TERMINAL:
        fail_row(row, "server", failure_message(exc_value))
        finalize_if_done(row.sync_session)


def job_failed(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """The one callback jobs queued before each kind had its own still name: they may be in
    Redis during a deploy. Remove once no queue can hold such a job (a release later)."""
    kind = sync_account_failed if job.func_name.endswith("sync_account") else start_sync_failed
    kind(job, connection, exc_type, exc_value, traceback)


def failure_message(exc: BaseException | None) -> str:
    """What the user reads of a job RQ gave up on (None: its work-horse was killed)."""
    return DATABASE_FAILED if database_trouble(exc) else INTERNAL_ERROR


def progress() -> Progress:
    return Progress(get_redis())


def announce(
    session: SyncSession,
    *rows: SyncSessionAccount,
    kind: str = "state",
    message: str | None = None,
    counting: bool | None = None,
) -> None:
    """Tell the widgets what the database now says; with Redis away, the watchdog will.

    `counting` marks the start (True) and end (False) of counting the accounts' mail; while
    it lasts, the rows given are the accounts just counted.
    """
    status_fields = {} if counting is None else {"counting": "1" if counting else ""}
    try:
        _tell(session, rows, kind, message, counted=bool(counting), **status_fields)
    except RedisError as exc:
        log.warning("sync session %s: progress not announced (%s)", session.id, exc)


def _tell(
    session: SyncSession,
    rows,
    kind: str,
    message: str | None,
    counted: bool = False,
    **status_fields,
) -> None:
    """Write the session's status (read again after its commit) and rows, then publish."""
    progress = Progress(get_redis())
    if not progress.exists(session.token):
        seed_progress(session)
    progress.set_status(session.token, session.status, **status_fields)
    for row in rows:
        fields = account_fields(row)
        if counted:
            fields["counted"] = 1
        progress.update_account(session.token, row.email_account_id, **fields)
    progress.publish(session.token, kind, force=True, message=message)


def tell_retry(token: str, message: str) -> None:
    """Say in the widget that the job will run again, and why."""
    try:
        progress().publish(token, "retry", force=True, message=message)
    except RedisError:
        pass


@says_why_it_retries
def start_sync(session_id: int) -> None:
    """Count every account's new mail so the bar has a total, then queue one job per account.

    An account with no new mail is complete once counted (one login, no job).
    """
    session = db.session.get(SyncSession, session_id)
    if session is None or not start_session(session):
        return  # paused or over; a retry after a kill while running counts again
    db.session.commit()
    # Each account's total goes out as soon as it is known: counting a large mailbox takes
    # seconds, and the widget says which accounts are counted meanwhile.
    announce(session, counting=True)
    for row in session.accounts:
        try:
            account = row.email_account
            scan = count_account(account)
            row.total_emails = len(scan.uids)
            if not finish_unchanged(row, scan):
                keep_scan(session, account, scan)
        except SyncFailure as failure:
            fail_row(row, failure.kind, failure.message)
        except Exception as exc:
            db.session.rollback()
            if database_trouble(exc):
                raise  # RQ counts again
            log.exception("counting account %s failed", row.email_account_id)
            fail_row(row, "server", INTERNAL_ERROR)
        db.session.commit()
        announce(session, row, counting=True)
    announce(session, counting=False)
    pending = [row for row in session.accounts if row.status == AccountStatus.PENDING]
    for row in pending:
        queue_sync_account(session, row.id)
    if not pending:
        finalize(session)


def keep_scan(session: SyncSession, account, scan) -> None:
    """Hand the count's scan to the account's job; without Redis the job scans again."""
    try:
        progress().keep_scan(
            session.token,
            account.id,
            start=(account.uidvalidity, checkpoint(account)),
            uidvalidity=scan.uidvalidity,
            uids=scan.uids,
            reset=scan.reset,
        )
    except RedisError:
        pass


@says_why_it_retries
def sync_account(session_id: int, row_id: int) -> None:
    """Sync one account of a session: scan, fetch in batches, parse, store, report."""
    row = db.session.get(SyncSessionAccount, row_id)
    if row is None or row.sync_session_id != session_id or row.status in AccountStatus.TERMINAL:
        return
    session = row.sync_session
    if session.status != SessionStatus.RUNNING:
        return
    try:
        outcome = AccountSync(row, progress()).run()
    except SyncFailure as failure:
        fail_row(row, failure.kind, failure.message)
        outcome = AccountStatus.FAILED
    except REDIS_DOWN:
        # Redis stayed away longer than the job waits: the account stays "processing" and
        # the watchdog queues it again once Redis is back. Nothing is lost or failed.
        db.session.rollback()
        raise
    except Exception as exc:
        db.session.rollback()
        if database_trouble(exc):
            raise  # RQ runs the job again from the last committed batch
        fail_row(row, "server", INTERNAL_ERROR)
        finalize_if_done(session)
        raise
    if outcome in AccountStatus.TERMINAL:
        finalize_if_done(session)


def fail_row(row: SyncSessionAccount, kind: str, message: str) -> None:
    """Mark an account of a session failed with a message the user can act on."""
    fail_account(row, kind, message)
    db.session.commit()
    metrics.record_account_failure(kind)
    announce(row.sync_session, row)


def finalize_if_done(session: SyncSession) -> None:
    """End the session once no account is left to sync."""
    db.session.expire_all()
    open_rows = db.session.scalar(
        db.select(db.func.count())
        .select_from(SyncSessionAccount)
        .where(
            SyncSessionAccount.sync_session_id == session.id,
            SyncSessionAccount.status.not_in(AccountStatus.TERMINAL),
        )
    )
    if open_rows == 0:
        finalize(session)


def finalize(session: SyncSession) -> None:
    """Record the final figures; only one caller wins the conditional update."""
    status = finish_session(session)
    db.session.commit()
    if status is not None:
        metrics.record_sync(status)
        log.info("sync session %s %s", session.id, status)
        try:
            metrics.record_eta_accuracy(status, progress().halfway_estimate(session.token))
        except RedisError:
            pass  # the estimate lived in Redis; the sync's outcome does not depend on it
        publish_end(session)


def publish_end(session: SyncSession) -> bool:
    """Give the progress keys the ended session's final state; False if Redis is away."""
    db.session.refresh(session)
    try:
        _tell(session, session.accounts, "state", None, finished_at=now_ms())
        progress().finish(session.token)
        return True
    except RedisError as exc:
        log.warning("sync session %s: final state not announced (%s)", session.id, exc)
        return False


def resume_rows(session: SyncSession) -> None:
    """Queue again every account that a pause stopped or that never started."""
    for row in session.accounts:
        if row.status in (AccountStatus.PENDING, AccountStatus.PAUSED):
            queue_sync_account(session, row.id)


def held_work() -> set[tuple]:
    """(function name, *arguments) of every job queued, scheduled or running.

    The name tells a session's job from another job with the same ids (a user's scheduled
    start takes a user id).
    """
    queue = get_queue()
    alive = set(queue.get_job_ids())
    alive.update(queue.intermediate_queue.get_job_ids())
    for registry in (StartedJobRegistry(queue=queue), ScheduledJobRegistry(queue=queue)):
        alive.update(registry.get_job_ids(cleanup=False))
    return {
        (job.func_name.rpartition(".")[2], *job.args)
        for job in Job.fetch_many(list(alive), connection=queue.connection)
        if job is not None
    }


def serve(session: SyncSession, held: set[tuple]) -> int:
    """Make sure a session is on its way: queue what no job holds, end it if nothing is left.

    Returns the jobs queued. A session is never left waiting for a job that does not exist,
    so it can never block its user's next sync.
    """
    redis = get_redis()
    if session.status == SessionStatus.PENDING:
        if ("start_sync", session.id) in held or now_utc() - session.created_at < START_GRACE:
            return 0
        queue_start_sync(session)
        return 1
    if all(row.status in AccountStatus.TERMINAL for row in session.accounts):
        finalize(session)
        return 0
    if session.status != SessionStatus.RUNNING or ("start_sync", session.id) in held:
        return 0  # paused (the user resumes it), or still counting: its jobs come next
    queued = 0
    for row in session.accounts:
        if row.status in AccountStatus.TERMINAL or ("sync_account", session.id, row.id) in held:
            continue
        if redis.exists(account_lock_key(row.id)):
            # A live job Redis forgot (restarted without persistence) still refreshes its
            # lock; a dead one's lock expires within 30 s and the next pass queues the row.
            continue
        queue_sync_account(session, row.id)
        queued += 1
    return queued


def reconcile() -> int:
    """The watchdog: every active session is served, every ended one shows its end.

    Jobs vanish when Redis restarts without persistence, a worker can die between two
    commits, and a resume can race with a job that is just stopping; the database says
    what is still owed. Returns jobs queued.
    """
    held = held_work()
    queued = 0
    active = db.session.scalars(
        db.select(SyncSession).where(SyncSession.status.in_(SessionStatus.ACTIVE))
    ).all()
    for session in active:
        queued += serve(session, held)
    if queued:
        log.warning("re-queued %d lost sync jobs", queued)
    republish_ended()
    return queued


def republish_ended() -> None:
    """Sessions that ended while Redis was away (or restarted): their end was never told."""
    ended = db.session.scalars(
        db.select(SyncSession).where(
            SyncSession.status.in_(SessionStatus.TERMINAL),
            SyncSession.finished_at >= now_utc() - RECENTLY_ENDED,
        )
    ).all()
    told = progress().statuses([session.token for session in ended])
    for session, status in zip(ended, told, strict=True):
        if status != session.status:
            publish_end(session)
