"""Syncing one account: scan, fetch in batches, parse, store with the checkpoint, report.

Transient network failures are retried with backoff (1 s, 2 s, 4 s), each retry announced;
the fourth failure, or any failure that retrying cannot fix, fails the account.
"""

import logging
import uuid

from rq import get_current_job
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from . import metrics
from .extensions import db, get_redis
from .ingest import message_key, store_batch
from .mailboxes import MailboxError
from .models import EmailAccount, SyncSession, SyncSessionAccount, now_utc
from .parsing import PARSER_VERSION, Outcome, bank_sender_domains, parse_message
from .parsing.model import PARSER_ERROR, unparsed
from .progress import Progress
from .sources import open_account

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_ATTEMPTS = 4
MAX_UIDVALIDITY_CHANGES = 5
LOCK_TIMEOUT = 30          # seconds; refreshed every batch, so a dead job's lock expires
LOCK_WAIT = 30             # a resumed job waits this long for a pausing one to let go


class SyncFailure(Exception):
    """The account cannot be synced; `message` tells the user what to do."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def senders_for(account: EmailAccount) -> list[str]:
    # The account's own address too: forwards count only when the user sent them.
    return [*bank_sender_domains(), account.address]


def rereading(account: EmailAccount) -> bool:
    """Whether what is stored of this account was read by older parsers than these."""
    return account.parser_version < PARSER_VERSION


def checkpoint(account: EmailAccount) -> int:
    """The last UID a scan starts after: none when the whole folder is to be read again."""
    return 0 if rereading(account) else account.last_uid


def account_fields(row: SyncSessionAccount) -> dict:
    """The figures of an account of a session, as the progress contract stores them."""
    return {"id": row.email_account_id, "bank": row.email_account.bank_name,
            "status": row.status, "total": row.total_emails,
            "processed": row.processed_emails, "detected": row.detected_expenses,
            "errors": row.error_count, "error_kind": row.error_kind,
            "error_message": row.error_message}


def seed_progress(session: SyncSession) -> None:
    """Write the session's state to Redis from the database (first time, or after a restart)."""
    started = session.started_at or session.created_at
    Progress(get_redis()).start_session(session.token, status=session.status,
                             started_at_ms=int(started.timestamp() * 1000),
                             accounts=[account_fields(row) for row in session.accounts])


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, MailboxError) and exc.transient


def _retrying(on_retry=None) -> Retrying:
    return Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS), wait=wait_exponential(multiplier=1, max=4),
        retry=retry_if_exception(_transient), before_sleep=on_retry, reraise=True,
    )


def count_account(account: EmailAccount) -> int:
    """How many candidate emails a sync of this account will read."""
    try:
        for attempt in _retrying():
            with attempt, open_account(account) as source:
                scan = source.scan(account.uidvalidity, checkpoint(account),
                                   senders_for(account))
        return len(scan.uids)
    except MailboxError as exc:
        raise _failure(exc) from exc


def _failure(exc: MailboxError) -> SyncFailure:
    if exc.transient:
        return SyncFailure(exc.kind, f"{exc.message} Falló {MAX_ATTEMPTS} veces seguidas; "
                                     "intente más tarde.")
    return SyncFailure(exc.kind, exc.message)


def safe_parse(raw: bytes, own_address: str) -> Outcome:
    """Parse, and turn even a parser bug into an unreadable email instead of a lost sync."""
    try:
        return parse_message(raw, own_addresses=[own_address])
    except Exception:
        log.exception("parser raised; recording the email as unreadable")
        return unparsed(PARSER_ERROR, None)


class AccountSync:
    """One run of one account of a session; returns the row's final or paused status."""

    def __init__(self, row: SyncSessionAccount, progress: Progress):
        self.row = row
        self.account = row.email_account
        self.session: SyncSession = row.sync_session
        self.progress = progress
        self.token = self.session.token
        self.lock = get_redis().lock(f"es:lock:row:{row.id}", timeout=LOCK_TIMEOUT,
                                     thread_local=False)

    def _claim(self) -> bool:
        """Hold the account: the same RQ job run again after a kill takes its lock back."""
        job = get_current_job()
        token = (job.id if job else uuid.uuid4().hex).encode()
        if self.lock.redis.get(self.lock.name) == token:
            self.lock.local.token = token
            return self.lock.reacquire()
        return self.lock.acquire(blocking_timeout=LOCK_WAIT, token=token)

    def run(self) -> str:
        if not self._claim():
            # Another live job holds this account (a pause that was resumed in time).
            return "busy"
        try:
            for attempt in _retrying(self._announce_retry):
                with attempt:
                    outcome = self._sync()
            return outcome
        except MailboxError as exc:
            raise _failure(exc) from exc
        finally:
            try:
                self.lock.release()
            except Exception:  # expired or lost with a Redis restart: nothing to release
                pass

    def _sync(self) -> str:
        row, account = self.row, self.account
        with open_account(account) as source:
            scan = source.scan(account.uidvalidity, checkpoint(account), senders_for(account))
            self._checkpoint_scan(scan)
            for start in range(0, len(scan.uids), BATCH_SIZE):
                chunk = scan.uids[start:start + BATCH_SIZE]
                if self._paused():
                    return "paused"
                items = [(uid, message_key(outcome, raw), outcome)
                         for uid, raw in source.fetch(chunk, batch_size=BATCH_SIZE)
                         for outcome in (safe_parse(raw, account.address),)]
                result = store_batch(account, row, items, scan.uidvalidity)
                metrics.record_batch(result.processed, result.detected, result.errors)
                self._refresh_lock()
                self.progress.record_sample(self.token, account.id, result.processed)
                self._report()
        row.status = "completed"
        row.total_emails = row.processed_emails  # mail deleted since the scan is not owed
        row.finished_at = now_utc()
        account.reread_until_uid = 0  # the whole folder was read, deleted mail or not
        db.session.commit()
        self._report("state")
        return "completed"

    def _checkpoint_scan(self, scan) -> None:
        row, account = self.row, self.account
        if scan.reset:
            account.uidvalidity_changes += 1
            if account.uidvalidity_changes > MAX_UIDVALIDITY_CHANGES:
                db.session.commit()
                raise SyncFailure("server", "El servidor cambió la identidad de la carpeta "
                                  "(UIDVALIDITY) más de 5 veces seguidas; revise la "
                                  "configuración del buzón con su proveedor.")
            account.last_uid = 0
        elif account.uidvalidity is not None:
            account.uidvalidity_changes = 0
        self._mark_reread(scan)
        account.uidvalidity = scan.uidvalidity
        row.status = "processing"
        row.started_at = row.started_at or now_utc()
        row.total_emails = row.processed_emails + len(scan.uids)
        db.session.commit()
        self._report("state")

    def _mark_reread(self, scan) -> None:
        """Remember up to which UID mail was read before, so its stored outcomes are redone.

        Committed with the scan: a job killed mid-re-read resumes from its batch checkpoint
        and still knows which mail to reconcile.
        """
        account = self.account
        if scan.reset and (rereading(account) or account.reread_until_uid):
            # Old mail got new UIDs: any message of the folder may have been read before.
            account.reread_until_uid = scan.uids[-1] if scan.uids else 0
        elif rereading(account):
            account.reread_until_uid = max(account.last_uid, account.reread_until_uid)
            account.last_uid = 0
        account.parser_version = PARSER_VERSION

    def _session_status(self) -> str:
        return db.session.scalar(
            db.select(SyncSession.status).where(SyncSession.id == self.session.id))

    def _paused(self) -> bool:
        if self._session_status() != "paused":
            return False
        self.row.status = "paused"
        db.session.commit()
        self._report("state")
        if self._session_status() == "running":  # resumed meanwhile: this job goes on
            self.row.status = "processing"
            db.session.commit()
            self._report("state")
            return False
        return True

    def _refresh_lock(self) -> None:
        try:
            self.lock.reacquire()
        except Exception:  # Redis restarted and forgot the lock: take it again
            self.lock.acquire(blocking=False)

    def _report(self, kind: str = "progress") -> None:
        if not self.progress.exists(self.token):  # Redis restarted: rebuild from the database
            seed_progress(self.session)
        self.progress.update_account(self.token, self.account.id, **account_fields(self.row))
        self.progress.publish(self.token, kind, force=kind != "progress")

    def _announce_retry(self, state: RetryCallState) -> None:
        db.session.rollback()
        exc = state.outcome.exception()
        delay = int(state.next_action.sleep) if state.next_action else 0
        message = (f"{self.account.bank_name}: {exc.message} Reintento "
                   f"{state.attempt_number} de {MAX_ATTEMPTS - 1} en {delay} s.")
        log.warning("retrying account %s: %s", self.account.id, exc.kind)
        metrics.record_retry(exc.kind)
        self.progress.publish(self.token, "retry", force=True, message=message)
