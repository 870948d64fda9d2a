"""Each kind of sync job carries its own failure callback (jobs.py), on a real Redis."""

import pytest

from expense_sync import jobs
from expense_sync.auth import create_user
from expense_sync.extensions import db, get_queue
from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount
from expense_sync.progress import Progress


@pytest.fixture
def session_id(app):
    """A running session with two accounts still owed, as counting leaves it."""
    with app.app_context():
        user = create_user("ana@example.cr", "contraseña-segura")
        db.session.flush()
        accounts = [
            EmailAccount(user_id=user.id, bank="bac", address=f"ana{i}@example.cr")
            for i in range(2)
        ]
        session = SyncSession(user_id=user.id, status="running")
        session.accounts = [SyncSessionAccount(email_account=a) for a in accounts]
        db.session.add(session)
        db.session.commit()
        return session.id


def queued_job(session: SyncSession, queue_it, *args):
    queue_it(session, *args)
    (job,) = get_queue().get_jobs()
    return job


def test_each_job_kind_is_queued_with_its_own_failure_callback(app, session_id):
    with app.app_context():
        session = db.session.get(SyncSession, session_id)
        start = queued_job(session, jobs.queue_start_sync)
        assert (start.func, start.args) == (jobs.start_sync, (session_id,))
        assert start.failure_callback is jobs.start_sync_failed
        get_queue().empty()
        row = session.accounts[0]
        account = queued_job(session, jobs.queue_sync_account, row.id)
        assert (account.func, account.args) == (jobs.sync_account, (session_id, row.id))
        assert account.failure_callback is jobs.sync_account_failed


def test_an_account_fails_only_once_rq_gives_up_on_its_job(app, session_id, redis_client):
    with app.app_context():
        session = db.session.get(SyncSession, session_id)
        first, second = session.accounts
        job = queued_job(session, jobs.queue_sync_account, first.id)
        jobs.sync_account_failed(job, redis_client, None, None, None)
        assert first.status == "pending"  # retries are left: RQ runs it again
        job.retries_left = 0
        jobs.sync_account_failed(job, redis_client, None, None, None)
        db.session.expire_all()
        assert (first.status, first.error_message) == ("failed", jobs.INTERNAL_ERROR)
        assert (second.status, session.status) == ("pending", "running")  # still owed


def test_a_count_rq_gave_up_on_fails_the_open_accounts_and_ends_the_session(
    app, session_id, redis_client
):
    with app.app_context():
        session = db.session.get(SyncSession, session_id)
        session.accounts[0].status = "completed"
        db.session.commit()
        job = queued_job(session, jobs.queue_start_sync)
        job.retries_left = 0
        jobs.start_sync_failed(job, redis_client, None, None, None)
        db.session.expire_all()
        assert [row.status for row in session.accounts] == ["completed", "failed"]
        assert session.status == "failed"
        assert Progress(redis_client).snapshot(session.token)["status"] == "failed"


def test_a_callback_for_a_row_or_session_gone_does_nothing(app, session_id, redis_client):
    with app.app_context():
        session = db.session.get(SyncSession, session_id)
        start = queued_job(session, jobs.queue_start_sync)
        get_queue().empty()
        account = queued_job(session, jobs.queue_sync_account, session.accounts[0].id)
        db.session.delete(session)
        db.session.commit()
        for job, callback in ((start, jobs.start_sync_failed), (account, jobs.sync_account_failed)):
            job.retries_left = 0
            callback(job, redis_client, None, None, None)
        assert db.session.scalar(db.select(db.func.count()).select_from(SyncSessionAccount)) == 0
