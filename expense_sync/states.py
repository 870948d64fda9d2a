"""The statuses of sync sessions and of their accounts, and the transitions between them.

Each family is a StrEnum: a member equals its value ("running"), so the database columns,
the Redis hashes and status.json keep the plain strings, with no migration. Each family has
two class attributes, `ACTIVE` (work is owed) and `TERMINAL` (nothing will change it again);
together they hold every member, and templates reach both families as Jinja globals.

The transitions are the one place where a status changes, for the web side (`sync/control.py`)
and the jobs (`jobs.py`, `engine.py`) alike. Each sets the fields that go with the change and
leaves the commit to its caller, which then announces it: the database decides a sync's state
and Redis only carries it to the widgets. A guarded transition returns False, and changes
nothing, when the current status does not allow it.
"""

from enum import StrEnum
from typing import ClassVar, cast

from sqlalchemy import CursorResult

from .extensions import db


class SessionStatus(StrEnum):
    """A sync session: pending until counting starts, then running (or paused) until it ends."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"  # at least one account failed, or the sync could not start

    ACTIVE: ClassVar[frozenset["SessionStatus"]]
    TERMINAL: ClassVar[frozenset["SessionStatus"]]


class AccountStatus(StrEnum):
    """An account of a session: pending until its job scans it, processing until it ends."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"

    ACTIVE: ClassVar[frozenset["AccountStatus"]]
    TERMINAL: ClassVar[frozenset["AccountStatus"]]


# Set after the classes: inside an Enum's body these would become members. The partial
# unique index uq_sync_session_one_active (models.py, migrations) spells SessionStatus.ACTIVE.
SessionStatus.ACTIVE = frozenset(
    {SessionStatus.PENDING, SessionStatus.RUNNING, SessionStatus.PAUSED}
)
SessionStatus.TERMINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED})
AccountStatus.ACTIVE = frozenset(
    {AccountStatus.PENDING, AccountStatus.PROCESSING, AccountStatus.PAUSED}
)
AccountStatus.TERMINAL = frozenset({AccountStatus.COMPLETED, AccountStatus.FAILED})

# models.py builds its column defaults from the enums above, so it is imported only once they
# exist (whichever of the two modules is imported first); the transitions use it when called.
from . import models  # noqa: E402

# -- sessions -------------------------------------------------------------------------------


def start_session(session: "models.SyncSession") -> bool:
    """Pending -> running as counting starts; a retry after a kill while running counts again.

    False when the session is paused or over.
    """
    if session.status not in (SessionStatus.PENDING, SessionStatus.RUNNING):
        return False
    session.status = SessionStatus.RUNNING
    session.started_at = models.now_utc()
    return True


def pause_session(session: "models.SyncSession") -> bool:
    """Running -> paused: the workers stop after their current batch."""
    if session.status != SessionStatus.RUNNING:
        return False
    session.status = SessionStatus.PAUSED
    return True


def resume_session(session: "models.SyncSession") -> bool:
    """Paused -> running: the accounts continue from their checkpoints."""
    if session.status != SessionStatus.PAUSED:
        return False
    session.status = SessionStatus.RUNNING
    return True


def fail_to_start(session: "models.SyncSession", message: str) -> None:
    """A session whose first job could not be queued fails at once, saying why."""
    session.status = SessionStatus.FAILED
    session.error_message = message


def finish_session(session: "models.SyncSession") -> SessionStatus | None:
    """End a running or paused session with its accounts' figures: failed if any failed.

    One conditional UPDATE, so of any number of callers only one ends the session: it gets
    the final status, the others (and a session that was not active) get None. The accounts
    that completed record when their mailbox was last synced.
    """
    rows = session.accounts
    failed = [row for row in rows if row.status == AccountStatus.FAILED]
    status = SessionStatus.FAILED if failed else SessionStatus.COMPLETED
    finished = models.now_utc()
    result = db.session.execute(
        db.update(models.SyncSession)
        .where(
            models.SyncSession.id == session.id,
            models.SyncSession.status.in_((SessionStatus.RUNNING, SessionStatus.PAUSED)),
        )
        .values(
            status=status,
            finished_at=finished,
            total_emails=sum(r.total_emails for r in rows),
            processed_emails=sum(r.processed_emails for r in rows),
            detected_expenses=sum(r.detected_expenses for r in rows),
            error_count=sum(r.error_count for r in rows),
            error_message="\n".join(
                f"{r.email_account.bank_name}: {r.error_message}" for r in failed
            )
            or None,
        )
    )
    won = cast(CursorResult, result).rowcount  # an UPDATE's result is a cursor's
    for row in rows:
        if row.status == AccountStatus.COMPLETED:
            row.email_account.last_synced_at = finished
    return status if won else None


# -- accounts of a session ------------------------------------------------------------------


def start_account(row: "models.SyncSessionAccount") -> None:
    """The account's job reads it: processing (again, after a pause that was resumed)."""
    row.status = AccountStatus.PROCESSING
    row.started_at = row.started_at or models.now_utc()


def pause_account(row: "models.SyncSessionAccount") -> None:
    """The account's job stopped at a batch boundary because its session is paused."""
    row.status = AccountStatus.PAUSED


def complete_account(row: "models.SyncSessionAccount") -> None:
    """Every candidate email of the account was read and stored."""
    row.status = AccountStatus.COMPLETED
    row.finished_at = models.now_utc()


def fail_account(row: "models.SyncSessionAccount", kind: str, message: str) -> None:
    """The account failed, with a message the user can act on."""
    row.status = AccountStatus.FAILED
    row.error_kind = kind
    row.error_message = message
    row.finished_at = models.now_utc()
