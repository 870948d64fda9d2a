import uuid

import pytest
import sqlalchemy as sa
from helpers import csrf_token

from expense_sync.extensions import db
from expense_sync.models import EmailAccount

IMAP_PASSWORD = "imap-secreto-123"


def imap_form(dovecot, user="ana", **overrides):
    form = {
        "bank": "bac",
        "address": "ana@example.cr",
        "source_kind": "imap",
        "imap_host": "127.0.0.1",
        "imap_port": str(dovecot.port),
        "imap_security": "none",
        "imap_user": user,
        "imap_password": IMAP_PASSWORD,
        "folder": "INBOX",
    }
    return form | overrides


@pytest.fixture
def imap_user(dovecot):
    name = f"u{uuid.uuid4().hex[:10]}"
    dovecot.add_user(name, IMAP_PASSWORD)
    return name


def post(client, path, data, **kwargs):
    return client.post(path, data=data | {"csrf_token": csrf_token(client, "/accounts")}, **kwargs)


def add_account(client, dovecot, **overrides):
    response = post(client, "/accounts/new", imap_form(dovecot, **overrides))
    assert response.status_code == 302, response.get_data(as_text=True)


def test_add_and_list_account(app, auth, client, dovecot):
    auth.create()
    auth.login()
    add_account(client, dovecot)
    html = client.get("/accounts").get_data(as_text=True)
    assert "BAC San José" in html and "ana@example.cr" in html
    assert IMAP_PASSWORD not in client.get("/accounts/1/edit").get_data(as_text=True)


def test_database_holds_no_plaintext_password(app, auth, client, dovecot):
    auth.create()
    auth.login()
    add_account(client, dovecot)
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                for value in row:
                    text = value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
                    assert IMAP_PASSWORD not in text, table.name


def test_edit_with_blank_password_keeps_it(app, auth, client, dovecot):
    auth.create()
    auth.login()
    add_account(client, dovecot)
    with app.app_context():
        before = db.session.get(EmailAccount, 1).imap_password_encrypted
    response = post(
        client, "/accounts/1/edit", imap_form(dovecot, imap_password="", folder="Bancos")
    )
    assert response.status_code == 302
    with app.app_context():
        account = db.session.get(EmailAccount, 1)
        assert account.folder == "Bancos"
        assert account.imap_password_encrypted == before


def test_missing_fields_are_reported(auth, client, dovecot):
    auth.create()
    auth.login()
    html = post(client, "/accounts/new", imap_form(dovecot, imap_host="", imap_password=""))
    assert html.status_code == 200
    assert html.get_data(as_text=True).count("Este campo es obligatorio.") == 2


def test_another_users_account_is_404(app, auth, client, dovecot):
    auth.create()
    auth.create("intruso@example.cr")
    auth.login()
    add_account(client, dovecot)
    auth.logout()
    auth.login("intruso@example.cr")
    assert client.get("/accounts/1/edit").status_code == 404
    assert post(client, "/accounts/1/edit", imap_form(dovecot)).status_code == 404
    assert post(client, "/accounts/1/delete", {}).status_code == 404
    assert post(client, "/accounts/1/test", {}).status_code == 404
    assert "ana@example.cr" not in client.get("/accounts").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(EmailAccount, 1) is not None


def test_delete_account(app, auth, client, dovecot):
    auth.create()
    auth.login()
    add_account(client, dovecot)
    assert post(client, "/accounts/1/delete", {}).status_code == 302
    with app.app_context():
        assert db.session.get(EmailAccount, 1) is None


def test_probar_conexion_succeeds_against_dovecot(auth, client, dovecot, imap_user):
    auth.create()
    auth.login()
    dovecot.append(imap_user, [b"From: a@b.cr\r\nSubject: hola\r\n\r\nhola\r\n"])
    html = post(
        client, "/accounts/test", imap_form(dovecot, user=imap_user)
    ).get_data(as_text=True)
    assert 'data-result="ok"' in html and "Conexión exitosa" in html


def test_probar_conexion_wrong_password(auth, client, dovecot, imap_user):
    auth.create()
    auth.login()
    html = post(
        client, "/accounts/test", imap_form(dovecot, user=imap_user, imap_password="mala")
    ).get_data(as_text=True)
    assert 'data-result="error"' in html
    assert "contraseña" in html.lower()
    assert "mala" not in html


def test_probar_conexion_unreachable_host(auth, client, dovecot):
    from servers import free_port

    auth.create()
    auth.login()
    html = post(client, "/accounts/test", imap_form(dovecot, imap_port=str(free_port()))).get_data(
        as_text=True
    )
    assert 'data-result="error"' in html
    assert "No se pudo conectar" in html


def test_probar_conexion_missing_folder(auth, client, dovecot, imap_user):
    auth.create()
    auth.login()
    html = post(
        client, "/accounts/test", imap_form(dovecot, user=imap_user, folder="NoExiste")
    ).get_data(as_text=True)
    assert 'data-result="error"' in html and "NoExiste" in html


def test_probar_conexion_uses_stored_password(auth, client, dovecot, imap_user):
    auth.create()
    auth.login()
    add_account(client, dovecot, user=imap_user)
    html = post(
        client, "/accounts/1/test", imap_form(dovecot, user=imap_user, imap_password="")
    ).get_data(as_text=True)
    assert 'data-result="ok"' in html


def test_local_paths_are_confined(app, auth, client, dovecot):
    auth.create()
    auth.login()
    html = post(
        client, "/accounts/new", imap_form(dovecot, source_kind="mbox", local_path="/etc/passwd")
    ).get_data(as_text=True)
    assert "La ruta debe estar dentro de" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(EmailAccount)) == 0
