import re
import socket
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from helpers import csrf_token

from expense_sync.demo import generate_notifications, write_maildir
from expense_sync.extensions import db
from expense_sync.mailboxes import MailboxError
from expense_sync.models import EmailAccount
from expense_sync.sources import probe

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


def test_missing_fields_are_marked_and_listed(auth, client, dovecot):
    auth.create()
    auth.login()
    html = post(client, "/accounts/new", imap_form(dovecot, imap_host="", imap_password=""))
    assert html.status_code == 200
    page = html.get_data(as_text=True)
    assert 'id="error-summary"' in page
    for name in ("imap_host", "imap_password"):
        assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="{name}"', page), name
        assert f'href="#{name}"' in page
    assert 'href="#imap_user"' not in page


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


def local_form(**fields):
    return {"bank": "bac", "address": "ana@example.cr"} | fields


def accounts(app):
    with app.app_context():
        return db.session.execute(db.select(EmailAccount)).scalars().all()


def test_local_maildir_saves_without_the_hidden_imap_fields(app, auth, client, tmp_path):
    # What the browser sends: the IMAP fieldset is disabled, so none of its fields arrive.
    write_maildir(tmp_path / "bancos", generate_notifications(2, seed=1))
    auth.create()
    auth.login()
    response = post(client, "/accounts/new", local_form(source_kind="maildir", local_path="bancos"))
    assert response.status_code == 302, response.get_data(as_text=True)
    [account] = accounts(app)
    assert (account.source_kind, account.local_path) == ("maildir", str(tmp_path / "bancos"))
    assert account.imap_host is None and account.imap_password_encrypted is None
    html = client.get("/accounts").get_data(as_text=True)
    assert "bancos" in html and str(tmp_path) not in html
    edit = client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'value="bancos"' in edit


def test_choice_errors_are_in_spanish(app, auth, client, dovecot):
    auth.create()
    auth.login()
    html = post(client, "/accounts/new", imap_form(dovecot, imap_security="tls13")).get_data(
        as_text=True
    )
    assert "Elija una de las opciones de la lista." in html and "Not a valid" not in html
    assert 'href="#imap_security"' in html
    assert accounts(app) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "La ruta debe estar dentro de la carpeta de buzones del servidor"),
        ("../otra", "La ruta debe estar dentro de la carpeta de buzones del servidor"),
        ("no-existe", "No existe «no-existe» en la carpeta de buzones del servidor"),
        ("x" * 300, "en la carpeta de buzones del servidor"),
        ("a\x00b", "La ruta debe estar dentro de la carpeta de buzones del servidor"),
    ],
)
def test_local_paths_are_confined_without_revealing_the_root(app, auth, client, path, message):
    auth.create()
    auth.login()
    html = post(client, "/accounts/new", local_form(source_kind="mbox", local_path=path))
    page = html.get_data(as_text=True)
    assert message in page and "(LOCAL_MAILBOX_ROOT)" in page
    assert app.config["LOCAL_MAILBOX_ROOT"] not in page
    assert accounts(app) == []


def test_local_path_must_have_the_chosen_shape(app, auth, client, tmp_path):
    write_maildir(tmp_path / "bancos", [])
    auth.create()
    auth.login()
    page = post(client, "/accounts/new", local_form(source_kind="mbox", local_path="bancos"))
    assert "Esa ruta es una carpeta" in page.get_data(as_text=True)
    assert accounts(app) == []


def probe_fragment(client, form, path="/accounts/test"):
    response = post(client, path, form)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_probar_conexion_names_the_fields_to_fix(auth, client, dovecot):
    auth.create()
    auth.login()
    html = probe_fragment(client, imap_form(dovecot, imap_host="", imap_user=""))
    assert 'data-result="error"' in html and "Revise estos campos antes de probar" in html
    assert 'href="#imap_host"' in html and 'href="#imap_user"' in html
    assert "Servidor IMAP" in html and "Usuario" in html


def test_probar_conexion_rejects_a_255_character_host_in_spanish(auth, client, dovecot):
    auth.create()
    auth.login()
    html = probe_fragment(client, imap_form(dovecot, imap_host="a" * 255))
    assert 'data-result="error"' in html and 'href="#imap_host"' in html
    assert "63 caracteres" in html


def test_an_overlong_host_label_is_a_mailbox_error():
    # Accounts added from the command line skip the form: the connection reports it too.
    account = EmailAccount(source_kind="imap", imap_host="a" * 64 + ".cr", imap_port=993,
                           imap_security="ssl", imap_user="ana", folder="INBOX")
    with pytest.raises(MailboxError, match="no es un nombre de servidor válido"):
        probe(account, "clave")


def test_probar_conexion_says_the_server_did_not_answer_in_time(app, auth, client, dovecot):
    app.config["PROBE_TIMEOUT"] = 1
    auth.create()
    auth.login()
    with socket.socket() as listener:  # accepts connections but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        form = imap_form(dovecot, imap_port=str(listener.getsockname()[1]))
        html = probe_fragment(client, form)
    assert "no respondió en 1 segundo; revise el servidor y el puerto" in html


def test_probar_conexion_answers_a_message_on_an_unexpected_error(app, auth, client, dovecot,
                                                                  imap_user):
    auth.create()
    auth.login()
    add_account(client, dovecot, user=imap_user)
    # The keys changed since the password was stored: decrypting it fails.
    app.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    html = probe_fragment(client, imap_form(dovecot, user=imap_user, imap_password=""),
                          path="/accounts/1/test")
    assert 'data-result="error"' in html and "error inesperado" in html


def test_probar_conexion_counts_a_local_maildir(auth, client, tmp_path):
    write_maildir(tmp_path / "bancos", generate_notifications(3, seed=2))
    auth.create()
    auth.login()
    html = probe_fragment(client, local_form(source_kind="maildir", local_path="bancos"))
    assert 'data-result="ok"' in html and "3 correos" in html
