"""The progress contract from the database's side: the fields a session's account row gives,
a session seeded into Redis from its rows, and its state built from the rows alone.

The rows decide a sync's state; Redis only carries it to the widgets (progress.py). These
are where the two meet: the jobs seed and update Redis from the rows, and status.json and the
streams fall back on the rows when Redis has nothing (a restart) or the sync has ended.
"""

from .extensions import get_redis
from .models import SyncSession, SyncSessionAccount
from .progress import Progress, account_state, build_state


def account_fields(row: SyncSessionAccount) -> dict:
    """The figures of an account of a session, as the progress contract stores them."""
    return {
        "id": row.email_account_id,
        "bank": row.email_account.bank_name,
        "status": row.status,
        "total": row.total_emails,
        "processed": row.processed_emails,
        "detected": row.detected_expenses,
        "errors": row.error_count,
        "error_kind": row.error_kind,
        "error_message": row.error_message,
    }


def seed_progress(session: SyncSession) -> None:
    """Write the session's state to Redis from the database (first time, or after a restart)."""
    started = session.started_at or session.created_at
    Progress(get_redis()).start_session(
        session.token,
        status=session.status,
        started_at_ms=int(started.timestamp() * 1000),
        accounts=[account_fields(row) for row in session.accounts],
        trigger=session.trigger,
        owner={"user": session.user_id, "id": session.id, "labels": account_labels(session)},
    )


def account_labels(session: SyncSession) -> dict[int, str]:
    """The address shown under each account's bank in the widget."""
    return {row.email_account_id: row.email_account.address for row in session.accounts}


def database_state(session: SyncSession) -> dict:
    """Build the state from the durable rows (after a Redis restart or once finished)."""
    accounts = [
        account_state(row.email_account_id, account_fields(row)) for row in session.accounts
    ]
    started = session.started_at or session.created_at
    finished = session.finished_at
    state = build_state(
        session.status,
        accounts,
        started_at_ms=int(started.timestamp() * 1000),
        finished_at_ms=int(finished.timestamp() * 1000) if finished else None,
    )
    state["trigger"] = session.trigger
    return state
