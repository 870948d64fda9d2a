"""Starting, pausing and resuming syncs, and reading a session's current state."""

from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from ..extensions import db, get_redis
from ..jobs import announce, held_work, queue_start_sync, resume_rows, serve
from ..models import SyncSession, SyncSessionAccount, User
from ..progress import Progress
from ..progress_rows import database_state
from ..states import SessionStatus, fail_to_start, pause_session, resume_session


class NoAccounts(Exception):
    """The user has no email account to sync."""


class QueueUnavailable(Exception):
    """The job queue (Redis) did not accept the sync."""


def active_session(user_id: int) -> SyncSession | None:
    return db.session.execute(
        db.select(SyncSession).where(
            SyncSession.user_id == user_id, SyncSession.status.in_(SessionStatus.ACTIVE)
        )
    ).scalar_one_or_none()


def latest_session(user_id: int) -> SyncSession | None:
    return db.session.execute(
        db.select(SyncSession)
        .where(SyncSession.user_id == user_id)
        .order_by(SyncSession.created_at.desc(), SyncSession.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def last_completed(user_id: int) -> SyncSession | None:
    return db.session.execute(
        db.select(SyncSession)
        .where(SyncSession.user_id == user_id, SyncSession.status == SessionStatus.COMPLETED)
        .order_by(SyncSession.finished_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def start(user: User, trigger: str = "manual") -> SyncSession:
    """Start a sync of all the user's accounts, or return the one already running.

    The running one is served first: a session whose jobs were lost gets them again, and
    one with nothing left to do ends, so a stuck session never stands in the way.
    `trigger` (models.TRIGGERS) says what started it: the button, the schedule or the CLI.
    """
    existing = active_session(user.id)
    if existing:
        try:
            serve(existing, held_work())
        except RedisError as exc:
            raise QueueUnavailable() from exc
        db.session.refresh(existing)
        if existing.status in SessionStatus.ACTIVE:
            return existing
    if not user.accounts:
        raise NoAccounts()
    session = SyncSession(user_id=user.id, status=SessionStatus.PENDING, trigger=trigger)
    session.accounts = [SyncSessionAccount(email_account=account) for account in user.accounts]
    db.session.add(session)
    try:
        db.session.commit()
    except IntegrityError:  # another request started one a moment ago
        db.session.rollback()
        return active_session(user.id)
    try:
        announce(session)
        queue_start_sync(session)
    except Exception as exc:
        fail_to_start(session, "No se pudo iniciar: el servicio de tareas no responde.")
        db.session.commit()
        raise QueueUnavailable() from exc
    try:
        Progress(get_redis()).announce_start(user.id, session.token)
    except RedisError:  # open views catch up when their stream or poll reconnects
        pass
    return session


def pause(session: SyncSession) -> None:
    """Ask the workers to stop after their current batch."""
    if not pause_session(session):
        return
    db.session.commit()
    announce(session)


def resume(session: SyncSession) -> None:
    """Continue a paused sync from its checkpoints."""
    if not resume_session(session):
        return
    db.session.commit()
    announce(session)
    resume_rows(session)


def state(session: SyncSession) -> dict:
    """The session's state as status.json gives it: Redis while it runs, else the database."""
    if session.status not in SessionStatus.TERMINAL:
        try:
            snapshot = Progress(get_redis()).snapshot(session.token)
        except RedisError:
            snapshot = None  # Redis is away: the last committed batch is the truth
        if snapshot is not None:
            return snapshot
    return database_state(session)
