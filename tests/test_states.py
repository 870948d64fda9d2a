"""The status families and their transitions (states.py)."""

import json
from types import SimpleNamespace

import pytest

from expense_sync import progress
from expense_sync.auth import create_user
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount
from expense_sync.states import (
    AccountStatus,
    SessionStatus,
    finish_session,
    pause_session,
    resume_session,
    start_session,
)

FAMILIES = [SessionStatus, AccountStatus]


@pytest.mark.parametrize("family", FAMILIES)
def test_active_and_terminal_partition_each_family(family):
    assert family.ACTIVE | family.TERMINAL == set(family)
    assert not family.ACTIVE & family.TERMINAL
    assert all(isinstance(status, family) for status in family.ACTIVE | family.TERMINAL)


def test_the_values_stay_the_strings_the_database_and_redis_hold():
    assert [str(s) for s in SessionStatus] == [
        "pending",
        "running",
        "paused",
        "completed",
        "failed",
    ]
    assert [str(s) for s in AccountStatus] == [
        "pending",
        "processing",
        "paused",
        "completed",
        "failed",
    ]
    assert SessionStatus.TERMINAL == AccountStatus.TERMINAL == {"completed", "failed"}
    assert SessionStatus.ACTIVE == {"pending", "running", "paused"}
    # What the modules that import the old names from progress get.
    assert progress.TERMINAL_STATES == {"completed", "failed"}
    assert progress.SESSION_STATES == ("pending", "running", "paused", "completed", "failed")
    assert progress.ACCOUNT_STATES == ("pending", "processing", "paused", "completed", "failed")


def test_a_member_is_written_as_its_plain_value(redis_client):
    running = SessionStatus.RUNNING
    assert (f"{running}", str(running), json.dumps({"status": running})) == (
        "running",
        "running",
        '{"status": "running"}',
    )
    redis_client.hset("es:test", mapping={"status": running})
    assert redis_client.hget("es:test", "status") == b"running"


@pytest.mark.parametrize(
    "transition, allowed",
    [
        (start_session, {SessionStatus.PENDING: "running", SessionStatus.RUNNING: "running"}),
        (pause_session, {SessionStatus.RUNNING: "paused"}),
        (resume_session, {SessionStatus.PAUSED: "running"}),
    ],
)
@pytest.mark.parametrize("status", list(SessionStatus))
def test_a_session_transition_changes_only_the_statuses_it_allows(transition, allowed, status):
    session = SyncSession(status=status)
    assert transition(session) == (status in allowed)
    assert session.status == allowed.get(status, status)
    if status in SessionStatus.TERMINAL:
        assert session.status == status  # nothing leaves an ended session


@pytest.fixture
def account(app):
    """An email account of a new user (its mail is never read here)."""
    with app.app_context():
        user = create_user("ana@example.cr", "contraseña-segura")
        db.session.flush()
        account = EmailAccount(user_id=user.id, bank="bac", address="ana@example.cr")
        db.session.add(account)
        db.session.commit()
        return account.id


def new_session(account_id: int, status: str, *row_statuses: str) -> SyncSession:
    account = db.session.get(EmailAccount, account_id)
    session = SyncSession(user_id=account.user_id, status=status)
    session.accounts = [
        SyncSessionAccount(email_account=account, status=row_status, processed_emails=3)
        for row_status in row_statuses
    ]
    db.session.add(session)
    db.session.commit()
    return session


@pytest.mark.parametrize(
    "rows, ended",
    [(("completed",), "completed"), (("failed",), "failed")],
)
@pytest.mark.parametrize("status", ["running", "paused"])
def test_finishing_a_session_records_its_end_once(app, account, status, rows, ended):
    with app.app_context():
        session = new_session(account, status, *rows)
        assert finish_session(session) == ended
        db.session.commit()
        assert finish_session(session) is None  # another caller came second
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(SyncSession, session.id)
        assert (stored.status, stored.processed_emails) == (ended, 3)
        assert stored.finished_at is not None
        synced = db.session.get(EmailAccount, account).last_synced_at
        assert (synced is not None) == (ended == "completed")


@pytest.mark.parametrize("status", sorted(SessionStatus.TERMINAL) + ["pending"])
def test_finishing_refuses_a_session_that_is_over_or_not_started(app, account, status):
    with app.app_context():
        session = new_session(account, status, "completed")
        assert finish_session(session) is None
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(SyncSession, session.id)
        assert (stored.status, stored.finished_at, stored.processed_emails) == (status, None, 0)


@pytest.mark.parametrize(
    "status, label",
    [("running", "En progreso"), ("paused", "En pausa"), ("processing", "Procesando")],
)
def test_templates_see_the_enums_outside_any_request(app, status, label):
    # The event reader renders fragments from app.jinja_env with no request (sync/stream.py).
    assert app.jinja_env.globals["SessionStatus"] is SessionStatus
    badge = app.jinja_env.get_template("sync/_status_badge.html")
    assert badge.render(s=SimpleNamespace(status=status)).endswith(f">{label}</span>")
