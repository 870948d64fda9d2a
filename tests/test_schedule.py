"""The "Sincronizar automáticamente" setting: its card, its route, its migration."""

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import csrf_token

from expense_sync.auth import find_user
from expense_sync.extensions import db
from expense_sync.models import SyncSession, now_utc
from expense_sync.parsing.dates import COSTA_RICA
from expense_sync.schedule import next_sync


def setting(app, email="ana@example.cr"):
    with app.app_context():
        user = find_user(email)
        return user.auto_sync_minutes, user.next_auto_sync_at


def test_the_accounts_page_offers_the_setting_in_spanish(client, auth):
    auth.create()
    auth.login()
    html = client.get("/accounts").get_data(as_text=True)
    assert "Sincronizar automáticamente" in html
    for label in ("Apagado", "Cada 15 min", "Cada hora", "Cada 6 horas"):
        assert f">{label}</option>" in html
    assert '<option value="" selected>Apagado</option>' in html
    assert "Sus cuentas se sincronizan solo cuando usted lo pide." in html


@pytest.mark.parametrize("choice, minutes", [("15", 15), ("60", 60), ("360", 360)])
def test_choosing_an_interval_schedules_the_next_sync(app, client, auth, choice, minutes):
    auth.create()
    auth.login()
    before = now_utc()
    response = client.post(
        "/accounts/auto_sync",
        data={"auto_sync_minutes": choice, "csrf_token": csrf_token(client, "/accounts")},
    )
    assert response.status_code == 302 and response.location.endswith("/accounts")
    saved, next_at = setting(app)
    assert saved == minutes
    # Within one interval (and the jitter) from now, at the user's own phase.
    assert before < next_at <= before + timedelta(minutes=minutes, seconds=31)
    html = client.get("/accounts").get_data(as_text=True)
    assert "Sincronización automática cada" in html  # the flash
    assert f"Próxima: {next_sync(next_at)}" in html
    assert f'<option value="{choice}" selected>' in html


def test_turning_it_off_clears_the_next_sync(app, client, auth):
    auth.create()
    auth.login()
    token = csrf_token(client, "/accounts")
    client.post("/accounts/auto_sync", data={"auto_sync_minutes": "60", "csrf_token": token})
    client.post("/accounts/auto_sync", data={"auto_sync_minutes": "", "csrf_token": token})
    assert setting(app) == (None, None)
    assert "Sincronización automática apagada." in client.get("/accounts").get_data(as_text=True)


def test_an_interval_not_offered_is_refused(app, client, auth):
    auth.create()
    auth.login()
    client.post(
        "/accounts/auto_sync",
        data={"auto_sync_minutes": "1", "csrf_token": csrf_token(client, "/accounts")},
    )
    assert setting(app) == (None, None)
    assert "Elija una de las opciones" in client.get("/accounts").get_data(as_text=True)


def test_the_route_needs_a_login_and_a_csrf_token(app, client, auth):
    response = client.post(
        "/accounts/auto_sync", data={"auto_sync_minutes": "15", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302 and "/login" in response.location
    auth.create()
    auth.login()
    response = client.post("/accounts/auto_sync", data={"auto_sync_minutes": "15"})
    assert response.status_code == 400
    assert setting(app) == (None, None)


def test_next_sync_says_today_or_tomorrow_in_costa_rica_time(app):
    now = now_utc()
    soon = now + timedelta(minutes=10)
    local = soon.astimezone(COSTA_RICA)
    day = "hoy" if local.date() == now.astimezone(COSTA_RICA).date() else "mañana"
    assert next_sync(soon) == f"{day} {local:%H:%M}"
    assert next_sync(now - timedelta(seconds=5)) == "en un momento"
    later = now + timedelta(days=3)
    assert ":" in next_sync(later) and not next_sync(later).startswith(("hoy", "mañana"))


def test_migration_leaves_everyone_off_and_old_syncs_manual(app):
    from flask_migrate import downgrade, upgrade

    migrations = str(Path(__file__).resolve().parents[1] / "migrations")
    with app.app_context():
        db.session.remove()
        downgrade(directory=migrations, revision="7e3a9c41d2b8")
        try:
            db.session.execute(
                db.text(
                    'INSERT INTO "user" (id, email, password_hash, is_admin, session_nonce,'
                    " created_at) VALUES (1, 'a@example.cr', 'x', false, 'n', CURRENT_TIMESTAMP)"
                )
            )
            db.session.execute(
                db.text(
                    "INSERT INTO sync_session (token, user_id, status, total_emails,"
                    " processed_emails, detected_expenses, error_count, created_at) VALUES"
                    " ('t', 1, 'completed', 0, 0, 0, 0, CURRENT_TIMESTAMP)"
                )
            )
            db.session.commit()
        finally:
            db.session.remove()
            upgrade(directory=migrations)
        user = find_user("a@example.cr")
        assert (user.auto_sync_minutes, user.next_auto_sync_at) == (None, None)
        assert db.session.scalars(db.select(SyncSession.trigger)).one() == "manual"
