"""History and details pages, and starting a sync from the page."""

import re

import pytest
from helpers import csrf_token

from expense_sync.extensions import db
from expense_sync.models import EmailAccount, SyncSession, SyncSessionAccount, UnreadableEmail, User


def finished_session(app, status="failed"):
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        good = EmailAccount(
            user_id=user.id,
            bank="bac",
            address="ana@bac.cr",
            source_kind="maildir",
            local_path="/x",
        )
        bad = EmailAccount(
            user_id=user.id,
            bank="promerica",
            address="ana@pro.cr",
            source_kind="maildir",
            local_path="/y",
        )
        session = SyncSession(
            user_id=user.id,
            status=status,
            total_emails=12,
            processed_emails=12,
            detected_expenses=9,
            error_count=1,
        )
        session.accounts = [
            SyncSessionAccount(
                email_account=good,
                status="completed",
                total_emails=12,
                processed_emails=12,
                detected_expenses=9,
                error_count=1,
            ),
            SyncSessionAccount(
                email_account=bad,
                status="failed",
                error_kind="authentication",
                error_message="Usuario o contraseña incorrectos.",
            ),
        ]
        db.session.add(session)
        db.session.flush()
        db.session.add(
            UnreadableEmail(
                user_id=user.id,
                email_account_id=good.id,
                sync_session_id=session.id,
                message_key="<m@x>",
                sender="alerta@baccredomatic.com",
                subject="<b>Notificación</b>",
                reason="truncated",
            )
        )
        db.session.commit()
        return session.token


def test_history_and_details(app, auth, client):
    auth.create()
    auth.login()
    token = finished_session(app)
    history = client.get("/sync_sessions").get_data(as_text=True)
    assert "Con errores" in history and f"/sync_sessions/{token}" in history
    detail = client.get(f"/sync_sessions/{token}").get_data(as_text=True)
    assert "Usuario o contraseña incorrectos." in detail
    assert "El mensaje llegó incompleto" in detail and "&lt;b&gt;Notificación&lt;/b&gt;" in detail
    assert "<b>Notificación</b>" not in detail


def test_another_users_session_is_404_everywhere(app, auth, client):
    auth.create()
    auth.login()
    token = finished_session(app)
    auth.logout()
    auth.create("otra@example.cr")
    auth.login("otra@example.cr")
    for path in ("", "/status", "/status.json"):
        assert client.get(f"/sync_sessions/{token}{path}").status_code == 404
    other = csrf_token(client, "/sync")
    for action in ("pause", "resume"):
        response = client.post(f"/sync_sessions/{token}/{action}", headers={"X-CSRFToken": other})
        assert response.status_code == 404
    assert token not in client.get("/sync_sessions").get_data(as_text=True)


def test_widget_shows_last_completed_sync_when_idle(app, auth, client):
    auth.create()
    auth.login()
    finished_session(app, status="completed")
    with app.app_context():
        session = db.session.execute(db.select(SyncSession)).scalar_one()
        from expense_sync.models import now_utc

        session.finished_at = now_utc()
        db.session.commit()
    html = client.get("/sync").get_data(as_text=True)
    assert "Sincronizar todas las cuentas" in html and "Ver historial" in html
    assert "Terminó hace" in html
    for title_case in ("Sincronizar Todas", "Ver Historial", "Sincronización de Correos"):
        assert title_case not in html


def test_first_visit_speaks_usted_and_shows_no_check_mark(auth, client):
    auth.create()
    auth.login()
    widget = client.get("/sync").get_data(as_text=True)
    assert "Inicie su primera sincronización" in widget and "Comienza" not in widget
    assert 'd="M5 13l4 4L19 7"' not in widget  # the ✓ says done; nothing was done yet


def test_details_name_failed_accounts_and_say_legacy_reasons_in_spanish(app, auth, client):
    auth.create()
    auth.login()
    token = finished_session(app)
    with app.app_context():
        session = db.session.execute(db.select(SyncSession)).scalar_one()
        db.session.add(
            UnreadableEmail(
                user_id=session.user_id,
                email_account_id=session.accounts[0].email_account_id,
                sync_session_id=session.id,
                message_key="<old@x>",
                reason="unrecognised notification format",
            )
        )
        db.session.commit()
    detail = client.get(f"/sync_sessions/{token}").get_data(as_text=True)
    assert "Formato de notificación no reconocido" in detail
    assert "unrecognised" not in detail
    assert "1 cuenta falló" in detail
    widget = text(client.get(f"/sync_sessions/{token}/status").get_data(as_text=True))
    assert "1 error · 1 cuenta falló" in widget


def test_counts_have_thousands_separators(app, auth, client):
    auth.create()
    auth.login()
    token = finished_session(app, status="completed")
    with app.app_context():
        session = db.session.execute(db.select(SyncSession)).scalar_one()
        session.processed_emails = session.total_emails = 12059
        session.detected_expenses = 10423
        row = session.accounts[0]
        row.processed_emails = row.total_emails = 12059
        row.detected_expenses = 10423
        db.session.commit()
    nbsp = "\N{NO-BREAK SPACE}"
    for path in ("", "/status"):
        html = client.get(f"/sync_sessions/{token}{path}").get_data(as_text=True)
        assert f"12{nbsp}059" in html and f"10{nbsp}423" in html, path
        assert "12059" not in html.replace('data-processed="12059"', "").replace(
            'data-total="12059"', ""
        ), path
    assert f"12{nbsp}059/12{nbsp}059" in client.get("/sync_sessions").get_data(as_text=True)


def test_start_without_accounts_asks_for_one(auth, client):
    auth.create()
    auth.login()
    response = client.post("/sync_sessions", data={"csrf_token": csrf_token(client, "/sync")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/accounts/new")


def test_start_twice_gives_the_same_running_sync(app, auth, client, tmp_path):
    auth.create()
    auth.login()
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        db.session.add(
            EmailAccount(
                user_id=user.id,
                bank="bac",
                address="a@b.cr",
                source_kind="maildir",
                local_path=str(tmp_path),
            )
        )
        db.session.commit()
    token = csrf_token(client, "/sync")
    for _ in range(2):
        response = client.post(
            "/sync_sessions", data={"csrf_token": token}, headers={"HX-Request": "true"}
        )
        assert 'data-status="pending"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(SyncSession).count() == 1


@pytest.mark.slow
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)  # Redis is what is down here
def test_with_redis_down_pages_answer_in_spanish_and_nobody_is_locked_out(app):
    """Login (limits kept in memory meanwhile), the pages from the database, 503 elsewhere."""
    from helpers import AuthActions
    from servers import RedisServer

    from expense_sync import create_app

    with RedisServer() as server:
        down = create_app(
            {**app.config, "REDIS_URL": server.url, "RATELIMIT_STORAGE_URI": server.url}
        )
        client = down.test_client()
        auth = AuthActions(down, client)
        auth.create()
        finished_session(down, status="running")  # a sync whose progress lives in Redis
        server.stop()
        assert auth.login().status_code == 302
        page = client.get("/sync")
        assert page.status_code == 200
        assert "12" in page.get_data(as_text=True)  # the committed figures
        token = db_token(down)
        assert "12" in client.get(f"/sync_sessions/{token}/status").get_data(as_text=True)
        start = client.post(
            "/sync_sessions",
            data={"csrf_token": csrf_token(client, "/sync")},
            follow_redirects=True,
        )
        assert start.status_code == 200
        assert "el servicio de tareas no responde" in start.get_data(as_text=True)


def text(html: str) -> str:
    """What a reader sees of some HTML: no tags, runs of white space as one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def db_token(app) -> str:
    with app.app_context():
        return db.session.execute(db.select(SyncSession.token)).scalar_one()
