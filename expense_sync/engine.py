"""Syncing one account: scan, fetch in batches, parse, store with the checkpoint, report.

Transient failures (network, a throttling server) are retried with backoff (1 s, 2 s, 4 s,
or the delay the server asks for, up to 30 s), each retry announced; the fourth failure, or
any failure that retrying cannot fix, fails the account. A server that refuses connections
after this account reached it is restarting, not misconfigured.
Redis only carries progress: while it is away the job waits for it and goes on, and the
database checkpoint stays the truth.
"""

import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import get_current_job
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from . import metrics
from .account_mail import open_account
from .extensions import db, get_redis
from .ingest import message_key, store_batch
from .mailboxes import MailboxError, Scan
from .models import EmailAccount, SyncSession, SyncSessionAccount
from .parsing import PARSER_VERSION, Outcome, bank_sender_domains, parse_message
from .parsing.model import PARSER_ERROR, unparsed
from .progress import AccountLock, Progress
from .progress_rows import account_fields, seed_progress
from .states import (
    AccountStatus,
    SessionStatus,
    complete_account,
    pause_account,
    start_account,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_ATTEMPTS = 4
MAX_SUGGESTED_WAIT = 30  # seconds; a provider asking for minutes still gets our three tries
MAX_UIDVALIDITY_CHANGES = 5
LOCK_TIMEOUT = 30  # seconds; refreshed every batch, so a dead job's lock expires
LOCK_WAIT = 30  # a resumed job waits this long for a pausing one to let go
REDIS_WAIT = 300  # seconds a job waits out a Redis outage before leaving the account
# to the watchdog (it stays "processing", nothing is failed)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
RESTARTING = "El servidor de correo dejó de aceptar conexiones; puede estar reiniciándose."


class Superseded(Exception):
    """Another job holds this account now (its lock was lost while Redis was away)."""


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


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, MailboxError) and exc.transient


def wait_for_redis(call, *args, **kwargs):
    """Run a Redis call, waiting out an outage (backoff up to 10 s, for REDIS_WAIT at most)."""
    return Retrying(
        stop=stop_after_delay(REDIS_WAIT),
        wait=wait_exponential(multiplier=0.5, max=10),
        retry=retry_if_exception_type(REDIS_DOWN),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "Redis unavailable, waiting (%s)", state.outcome.exception()
        ),
    )(call, *args, **kwargs)


_backoff = wait_exponential(multiplier=1, max=4)


def _wait(state: RetryCallState) -> float:
    # A throttling server may say how long to back off: honoured, within MAX_SUGGESTED_WAIT.
    suggested = getattr(state.outcome.exception(), "retry_after", None)
    return min(suggested, MAX_SUGGESTED_WAIT) if suggested else _backoff(state)


def _retrying(on_retry=None) -> Retrying:
    return Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS),
        wait=_wait,
        retry=retry_if_exception(_transient),
        before_sleep=on_retry,
        reraise=True,
    )


def count_account(account: EmailAccount) -> Scan:
    """The candidate emails a sync of this account will read (len(scan.uids) of them)."""
    try:
        for attempt in _retrying():
            with attempt, open_account(account) as source:
                scan = source.scan(account.uidvalidity, checkpoint(account), senders_for(account))
        return scan
    except MailboxError as exc:
        raise _failure(exc) from exc


def finish_unchanged(row: SyncSessionAccount, scan: Scan) -> bool:
    """Complete an account whose count found nothing to do, without a job of its own.

    The usual case of a scheduled sync: a second login and scan would only confirm it.
    Anything the job has to record (a new folder identity, a first sync, a re-read by
    newer parsers) still goes through the job.
    """
    account = row.email_account
    if (
        scan.uids
        or scan.reset
        or scan.uidvalidity != account.uidvalidity
        or rereading(account)
        or account.reread_until_uid
    ):
        return False
    complete_account(row)
    row.started_at = row.finished_at
    account.uidvalidity_changes = 0
    return True


def _failure(exc: MailboxError) -> SyncFailure:
    if exc.transient:
        return SyncFailure(
            exc.kind, f"{exc.message} Falló {MAX_ATTEMPTS} veces seguidas; intente más tarde."
        )
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
        job = get_current_job()
        self.lock = AccountLock(
            get_redis(), row.id, job.id if job else uuid.uuid4().hex, LOCK_TIMEOUT
        )
        # Whether the server answered this account before: a refusal then is a restart.
        self.contacted = row.status in (AccountStatus.PROCESSING, AccountStatus.PAUSED)

    def _claim(self) -> bool:
        """Hold the account: the same RQ job run again after a kill takes its lock back."""
        return self.lock.claim(wait=LOCK_WAIT)

    def run(self) -> str:
        if not wait_for_redis(self._claim):
            # Another live job holds this account (a pause that was resumed in time).
            return "busy"
        try:
            db.session.refresh(self.row)
            if self.row.status in AccountStatus.TERMINAL:  # done while this job waited for the lock
                return "busy"
            for attempt in _retrying(self._announce_retry):
                with attempt:
                    outcome = self._sync()
            return outcome
        except Superseded:
            return "busy"
        except MailboxError as exc:
            raise _failure(exc) from exc
        finally:
            try:
                self.lock.release()  # unless it expired or was lost with a Redis restart
            except RedisError:
                pass  # Redis is away: the lock expires by itself

    @contextmanager
    def _opened(self) -> Iterator:
        """The account's mailbox; a refusal after the server answered once is transient."""
        try:
            with open_account(self.account) as source:
                self.contacted = True
                yield source
        except MailboxError as exc:
            if exc.unreachable and self.contacted:
                raise MailboxError("network", RESTARTING, transient=True) from exc
            raise

    def _sync(self) -> str:
        row, account = self.row, self.account
        with self._opened() as source:
            scan = self._scan(source)
            self._checkpoint_scan(scan)
            for start in range(0, len(scan.uids), BATCH_SIZE):
                chunk = scan.uids[start : start + BATCH_SIZE]
                if self._paused():
                    return AccountStatus.PAUSED
                items = [
                    (uid, message_key(outcome, raw), outcome)
                    for uid, raw in source.fetch(chunk, batch_size=BATCH_SIZE)
                    for outcome in (safe_parse(raw, account.address),)
                ]
                wait_for_redis(self._hold_lock)  # before storing: a superseded job stores nothing
                result = store_batch(account, row, items, scan.uidvalidity)
                metrics.record_batch(result.processed, result.detected, result.errors)
                wait_for_redis(
                    self.progress.record_sample, self.token, account.id, result.processed
                )
                self._report()
        complete_account(row)
        row.total_emails = row.processed_emails  # mail deleted since the scan is not owed
        account.reread_until_uid = 0  # the whole folder was read, deleted mail or not
        db.session.commit()
        self._report("state")
        return AccountStatus.COMPLETED

    def _scan(self, source) -> Scan:
        """What counting found, with any mail newer than it, if the checkpoint has not moved
        since (a first run); else a scan of its own."""
        account, senders = self.account, senders_for(self.account)
        start = (account.uidvalidity, checkpoint(account))
        try:
            kept = self.progress.take_scan(self.token, account.id)
        except REDIS_DOWN:
            kept = None
        if kept is not None and tuple(kept["start"]) == start:
            uids = kept["uids"]
            if uids:
                since = uids[-1]
            else:  # nothing found: from where counting started (the start, after a reset)
                since = 0 if kept["reset"] else start[1]
            newer = source.scan(kept["uidvalidity"], since, senders)
            if not newer.reset:  # the folder kept its identity since it was counted
                return Scan(kept["uidvalidity"], uids + newer.uids, kept["reset"])
        return source.scan(*start, senders)

    def _checkpoint_scan(self, scan) -> None:
        row, account = self.row, self.account
        if scan.reset:
            account.uidvalidity_changes += 1
            if account.uidvalidity_changes > MAX_UIDVALIDITY_CHANGES:
                db.session.commit()
                raise SyncFailure(
                    "server",
                    "El servidor cambió la identidad de la carpeta "
                    "(UIDVALIDITY) más de 5 veces seguidas; revise la "
                    "configuración del buzón con su proveedor.",
                )
            account.last_uid = 0
        elif account.uidvalidity is not None:
            account.uidvalidity_changes = 0
        self._mark_reread(scan)
        account.uidvalidity = scan.uidvalidity
        start_account(row)
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
            db.select(SyncSession.status).where(SyncSession.id == self.session.id)
        )

    def _paused(self) -> bool:
        if self._session_status() != SessionStatus.PAUSED:
            return False
        pause_account(self.row)
        db.session.commit()
        self._report("state")
        if self._session_status() == SessionStatus.RUNNING:  # resumed meanwhile: this job goes on
            start_account(self.row)
            db.session.commit()
            self._report("state")
            return False
        return True

    def _hold_lock(self) -> None:
        """Keep the account's lock for another LOCK_TIMEOUT; raise Superseded if it is gone."""
        # Expired while Redis was away, or forgotten by a restart: take it again, unless
        # another job (queued by the watchdog meanwhile) owns the account now.
        if not self.lock.extend() and not self.lock.claim():
            raise Superseded()

    def _report(self, kind: str = "progress") -> None:
        wait_for_redis(self._write_progress, kind)

    def _write_progress(self, kind: str) -> None:
        if not self.progress.exists(self.token):  # Redis restarted: rebuild from the database
            seed_progress(self.session)
        self.progress.update_account(self.token, self.account.id, **account_fields(self.row))
        self.progress.publish(self.token, kind, force=kind != "progress")

    def _announce_retry(self, state: RetryCallState) -> None:
        db.session.rollback()
        exc = state.outcome.exception()
        delay = math.ceil(state.next_action.sleep) if state.next_action else 0
        message = (
            f"{self.account.bank_name}: {exc.message} Reintento "
            f"{state.attempt_number} de {MAX_ATTEMPTS - 1} en {delay} s."
        )
        log.warning("retrying account %s: %s", self.account.id, exc.kind)
        metrics.record_retry(exc.kind)
        wait_for_redis(self.progress.publish, self.token, "retry", force=True, message=message)
