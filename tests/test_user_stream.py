"""The user's stream: an idle dashboard follows any sync started anywhere, then the next."""

import re
from contextlib import contextmanager

import pytest
from helpers import sse_events
from sqlalchemy import event

from expense_sync.extensions import db, get_redis
from expense_sync.models import EmailAccount, SyncSession, User
from expense_sync.progress import Progress
from expense_sync.sync import control, user_stream


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch):
    monkeypatch.setattr(user_stream, "HEARTBEAT_SECONDS", 0.3)


@pytest.fixture
def ana(app, auth, client, tmp_path):
    """A logged-in user with two accounts and no sync yet; returns her id."""
    user_id = auth.create()
    auth.login()
    with app.app_context():
        for bank in ("bac", "promerica"):
            db.session.add(
                EmailAccount(
                    user_id=user_id,
                    bank=bank,
                    address=f"{bank}@x.cr",
                    source_kind="maildir",
                    local_path=str(tmp_path),
                )
            )
        db.session.commit()
    return user_id


def start_elsewhere(app, user_id: int) -> str:
    """What the CLI, the schedule or another browser does: start a sync of the user."""
    with app.app_context():
        return control.start(db.session.get(User, user_id)).token


def end(app, token: str, status: str = "completed") -> None:
    with app.app_context():
        session = db.session.scalars(db.select(SyncSession).filter_by(token=token)).one()
        session.status = status
        db.session.commit()
        progress = Progress(get_redis())
        progress.set_status(token, status)
        progress.publish(token, "state", force=True)


HEARTBEAT = (None, "heartbeat", "")


def opened(response):
    """The stream's events after the heartbeat it opens with at once."""
    reader = sse_events(response)
    assert next(reader) == HEARTBEAT
    return reader


def widgets(reader):
    """The next widget event of a stream, skipping heartbeats."""
    return next(event for event in reader if event != HEARTBEAT)


def token_and_status(html: str) -> tuple[str | None, str]:
    token = re.search(r'data-token="([^"]+)"', html)
    status = re.search(r'data-status="([^"]*)"', html)
    return (token.group(1) if token else None), (status.group(1) if status else "idle")


def open_user_stream(client, shown=None, **headers):
    path = "/sync/stream" + (f"?shown={shown}" if shown else "")
    return client.get(path, headers=headers, buffered=False)


def test_an_idle_view_follows_syncs_started_elsewhere_one_after_another(app, client, ana):
    response = open_user_stream(client)
    reader = opened(response)
    assert next(reader) == HEARTBEAT  # nothing to show yet: it waits
    first = start_elsewhere(app, ana)
    assert token_and_status(widgets(reader)[2]) == (first, "pending")
    with app.app_context():
        progress = Progress(get_redis())
        progress.set_status(first, "running")
        progress.update_account(first, 1, status="processing", processed=5, total=10)
        progress.publish(first, "progress", force=True)
    event_id, kind, html = widgets(reader)
    assert kind == "message" and event_id.startswith(f"{first}:")
    assert 'id="sync-processed">5<' in html
    end(app, first)
    assert token_and_status(widgets(reader)[2]) == (first, "completed")
    assert next(reader) == HEARTBEAT  # still open after the end
    second = start_elsewhere(app, ana)
    assert second != first
    assert token_and_status(widgets(reader)[2]) == (second, "pending")
    response.close()


def test_a_view_that_shows_the_end_gets_nothing_again(app, client, ana):
    token = start_elsewhere(app, ana)
    end(app, token)
    reader = opened(client.get(f"/sync/stream?shown={token}&ended=1", buffered=False))
    assert next(reader) == HEARTBEAT


def test_a_view_that_missed_the_end_of_its_sync_gets_it(app, client, ana):
    token = start_elsewhere(app, ana)
    end(app, token)
    reader = opened(open_user_stream(client, shown=token))  # it still shows it running
    assert token_and_status(widgets(reader)[2]) == (token, "completed")


def test_a_view_showing_an_older_sync_gets_the_current_one(app, client, ana):
    old = start_elsewhere(app, ana)
    end(app, old, "failed")
    current = start_elsewhere(app, ana)
    reader = opened(open_user_stream(client, shown=old))
    assert token_and_status(widgets(reader)[2]) == (current, "pending")


def test_last_event_id_replays_only_within_the_shown_sync(app, client, ana):
    token = start_elsewhere(app, ana)
    with app.app_context():
        progress = Progress(get_redis())
        progress.set_status(token, "running")
        seen = progress.publish(token, "state", force=True)
        progress.update_account(token, 1, status="processing", processed=3, total=10)
        missed = progress.publish(token, "progress", force=True)
    reader = opened(open_user_stream(client, shown=token, **{"Last-Event-ID": seen}))
    assert widgets(reader)[0] == f"{token}:{missed}"


def test_a_reconnect_names_the_sync_it_saw_in_its_last_event_id(app, client, ana):
    # htmx reconnects to the URL the page opened, whatever the page shows since: the
    # Last-Event-ID alone says which sync the browser saw, and how far.
    old = start_elsewhere(app, ana)
    end(app, old)
    token = start_elsewhere(app, ana)
    with app.app_context():
        progress = Progress(get_redis())
        progress.set_status(token, "running")
        seen = progress.publish(token, "state", force=True)
        progress.update_account(token, 1, status="processing", processed=4, total=10)
        missed = progress.publish(token, "progress", force=True)
    reader = opened(
        client.get(
            f"/sync/stream?shown={old}&ended=1",
            buffered=False,
            headers={"Last-Event-ID": f"{token}:{seen}"},
        )
    )
    event_id, _, html = widgets(reader)
    assert event_id == f"{token}:{missed}" and 'id="sync-processed">4<' in html
    # One that saw the older sync gets the current one whole.
    reader = opened(open_user_stream(client, **{"Last-Event-ID": f"{old}:{seen}"}))
    assert token_and_status(widgets(reader)[2]) == (token, "running")


def test_anonymous_gets_401_and_a_foreign_page_403(app, client, ana, auth):
    assert open_user_stream(client, Origin="https://evil.example").status_code == 403
    auth.logout()
    assert open_user_stream(client).status_code == 401


def test_a_view_showing_the_running_sync_gets_its_state_at_once(app, client, ana):
    token = start_elsewhere(app, ana)
    reader = opened(open_user_stream(client, shown=token))
    assert token_and_status(widgets(reader)[2]) == (token, "pending")


@contextmanager
def connections_taken(app):
    """Every database connection taken from the pool meanwhile."""
    taken = []
    with app.app_context():
        engine = db.engine

    def checkout(*_):
        taken.append(1)

    event.listen(engine, "checkout", checkout)
    try:
        yield taken
    finally:
        event.remove(engine, "checkout", checkout)


def test_streams_open_without_the_database(app, client, ana):
    """Who is logged in, which sync is theirs and how it ended: Redis answers all three, so
    a burst of openings never waits for a connection of the pool."""
    token = start_elsewhere(app, ana)
    opened(client.get("/sync/stream", buffered=False)).close()  # remembers the login
    with connections_taken(app) as taken:
        reader = opened(client.get("/sync/stream", buffered=False))
        assert token_and_status(widgets(reader)[2]) == (token, "pending")
        reader.close()
        session_stream = sse_events(client.get(f"/sync_sessions/{token}/stream", buffered=False))
        assert 'data-status="pending"' in next(session_stream)[2]
        session_stream.close()
    assert taken == []
    end(app, token)
    with connections_taken(app) as taken:
        reader = opened(client.get("/sync/stream", buffered=False))
        assert token_and_status(widgets(reader)[2]) == (token, "completed")
        reader.close()
    assert taken == []


def test_a_logout_refuses_the_streams_of_every_copy_of_the_login(app, auth, client, ana):
    start_elsewhere(app, ana)
    opened(client.get("/sync/stream", buffered=False)).close()  # remembered for streams
    stolen = client.get_cookie("session").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/sync/stream").status_code == 401


def test_without_redis_s_copies_the_database_answers_and_they_are_kept_again(app, client, ana):
    token = start_elsewhere(app, ana)
    with app.app_context():
        get_redis().flushdb()  # a Redis restart: nothing is remembered
    reader = opened(client.get("/sync/stream", buffered=False))
    assert token_and_status(widgets(reader)[2])[0] == token
    reader.close()
    with app.app_context():
        assert Progress(get_redis()).latest(ana)["token"] == token
