"""RQ entry points: `start_sync` counts every account, then one `sync_account` job each.

Jobs take ids only, load what they need, and turn any failure into an explicit `failed`
state with a user-readable reason before re-raising. The database holds the durable
checkpoint (last UID and counts), committed with each batch, so a job that is killed and
run again continues where the last commit left it.
"""

import logging

from flask import current_app
from rq import Callback, Retry
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from . import metrics
from .engine import AccountSync, SyncFailure, account_fields, count_account, seed_progress
from .extensions import db, get_queue, get_redis
from .models import SyncSession, SyncSessionAccount, now_utc
from .progress import Progress, now_ms

log = logging.getLogger(__name__)

JOB_TIMEOUT = 6 * 3600
JOB_RETRIES = 5

INTERNAL_ERROR = "Error interno al sincronizar esta cuenta; quedó registrado para revisión."


def enqueue(func, *args) -> None:
    """Queue a job; one whose worker or work-horse died runs again (RQ's Retry)."""
    intervals = current_app.config["JOB_RETRY_INTERVALS"]
    get_queue().enqueue(func, *args, retry=Retry(max=JOB_RETRIES, interval=intervals),
                        job_timeout=JOB_TIMEOUT, failure_ttl=7 * 86400,
                        on_failure=Callback(job_failed))


def job_failed(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """Once RQ gives up on a job, its account (or session) fails with a clear reason."""
    if job.retries_left:
        return  # RQ runs it again
    if job.func_name.endswith("sync_account"):
        row = db.session.get(SyncSessionAccount, job.args[1])
        if row is not None and row.status not in ("completed", "failed"):
            fail_row(row, "server", INTERNAL_ERROR)
            finalize_if_done(row.sync_session)
    elif job.func_name.endswith("start_sync"):
        session = db.session.get(SyncSession, job.args[0])
        if session is not None:
            for row in session.accounts:
                if row.status not in ("completed", "failed"):
                    fail_row(row, "server", INTERNAL_ERROR)
            finalize_if_done(session)


def progress() -> Progress:
    return Progress(get_redis())


def start_sync(session_id: int) -> None:
    """Count every account's new mail so the bar has a total, then queue one job per account."""
    session = db.get_or_404(SyncSession, session_id)
    if session.status not in ("pending", "running"):
        return  # paused or over; a retry after a kill while running counts again
    session.status = "running"
    session.started_at = now_utc()
    db.session.commit()
    seed_progress(session)
    for row in session.accounts:
        try:
            row.total_emails = count_account(row.email_account)
        except SyncFailure as failure:
            fail_row(row, failure.kind, failure.message)
        except Exception:
            log.exception("counting account %s failed", row.email_account_id)
            db.session.rollback()
            fail_row(row, "server", INTERNAL_ERROR)
        db.session.commit()
        progress().update_account(session.token, row.email_account_id, **account_fields(row))
    progress().publish(session.token, "state", force=True)
    pending = [row for row in session.accounts if row.status == "pending"]
    for row in pending:
        enqueue(sync_account, session.id, row.id)
    if not pending:
        finalize(session)


def sync_account(session_id: int, row_id: int) -> None:
    """Sync one account of a session: scan, fetch in batches, parse, store, report."""
    row = db.get_or_404(SyncSessionAccount, row_id)
    session = row.sync_session
    if row.sync_session_id != session_id or row.status in ("completed", "failed"):
        return
    if session.status not in ("running",):
        return
    if not progress().exists(session.token):
        seed_progress(session)
    try:
        outcome = AccountSync(row, progress()).run()
    except SyncFailure as failure:
        fail_row(row, failure.kind, failure.message)
        outcome = "failed"
    except Exception:
        db.session.rollback()
        fail_row(row, "server", INTERNAL_ERROR)
        finalize_if_done(session)
        raise
    if outcome in ("completed", "failed"):
        finalize_if_done(session)


def fail_row(row: SyncSessionAccount, kind: str, message: str) -> None:
    """Mark an account of a session failed with a message the user can act on."""
    row.status = "failed"
    row.error_kind = kind
    row.error_message = message
    row.finished_at = now_utc()
    db.session.commit()
    metrics.record_account_failure(kind)
    token = row.sync_session.token
    progress().update_account(token, row.email_account_id, **account_fields(row))
    progress().publish(token, "state", force=True)


def finalize_if_done(session: SyncSession) -> None:
    """End the session once no account is left to sync."""
    db.session.expire_all()
    open_rows = db.session.scalar(
        db.select(db.func.count()).select_from(SyncSessionAccount).where(
            SyncSessionAccount.sync_session_id == session.id,
            SyncSessionAccount.status.not_in(("completed", "failed")),
        ))
    if open_rows == 0:
        finalize(session)


def finalize(session: SyncSession) -> None:
    """Record the final figures; only one caller wins the conditional update."""
    rows = session.accounts
    failed = [row for row in rows if row.status == "failed"]
    status = "failed" if failed else "completed"
    finished = now_utc()
    won = db.session.execute(
        db.update(SyncSession)
        .where(SyncSession.id == session.id, SyncSession.status.in_(("running", "paused")))
        .values(
            status=status, finished_at=finished,
            total_emails=sum(r.total_emails for r in rows),
            processed_emails=sum(r.processed_emails for r in rows),
            detected_expenses=sum(r.detected_expenses for r in rows),
            error_count=sum(r.error_count for r in rows),
            error_message="\n".join(f"{r.email_account.bank_name}: {r.error_message}"
                                    for r in failed) or None,
        )
    ).rowcount
    for row in rows:
        if row.status == "completed":
            row.email_account.last_synced_at = finished
    db.session.commit()
    if won:
        progress().set_status(session.token, status, finished_at=now_ms())
        progress().publish(session.token, "state", force=True)
        metrics.record_sync(status)
        metrics.record_eta_accuracy(status, progress().halfway_estimate(session.token))
        progress().finish(session.token)
        log.info("sync session %s %s", session.id, status)


def resume_rows(session: SyncSession) -> None:
    """Queue again every account that a pause stopped or that never started."""
    for row in session.accounts:
        if row.status in ("pending", "paused"):
            enqueue(sync_account, session.id, row.id)



def reconcile() -> int:
    """Queue again the work of running sessions that no queued or running job holds.

    Jobs vanish when Redis restarts without persistence, and a resume can race with a job
    that is just stopping; the database says what is still owed. Returns jobs queued.
    """
    queue = get_queue()
    alive = set()
    for registry in (StartedJobRegistry(queue=queue), ScheduledJobRegistry(queue=queue)):
        alive.update(registry.get_job_ids())
    alive.update(queue.get_job_ids())
    held = {tuple(job.args) for job in Job.fetch_many(list(alive), connection=queue.connection)
            if job is not None}
    queued = 0
    sessions = db.session.scalars(
        db.select(SyncSession).where(SyncSession.status.in_(("pending", "running")))).all()
    for session in sessions:
        if session.status == "pending":
            if (session.id,) not in held:
                enqueue(start_sync, session.id)
                queued += 1
            continue
        for row in session.accounts:
            if row.status in ("pending", "processing", "paused") and (
                    (session.id, row.id) not in held):
                enqueue(sync_account, session.id, row.id)
                queued += 1
    if queued:
        log.warning("re-queued %d lost sync jobs", queued)
    return queued
