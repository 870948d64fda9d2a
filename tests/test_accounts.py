import re
import socket
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from helpers import csrf_token

from expense_sync.account_mail import probe
from expense_sync.demo import generate_notifications, write_maildir
from expense_sync.extensions import db
from expense_sync.mailboxes import MailboxError
from expense_sync.models import EmailAccount, Expense, SyncSession, now_utc

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
    with app.app_context():
        db.session.add(
            Expense(
                user_id=1,
                email_account_id=1,
                message_key="<m@x>",
                bank="bac",
                kind="purchase",
                direction="out",
                amount_cents=100,
                currency="CRC",
                occurred_at=now_utc(),
            )
        )
        db.session.commit()
    assert post(client, "/accounts/1/delete", {}).status_code == 302
    with app.app_context():
        assert db.session.get(EmailAccount, 1) is None
        # SQLite enforces no foreign keys here: the expenses go explicitly, on both databases.
        assert db.session.scalar(db.select(db.func.count()).select_from(Expense)) == 0


def test_probar_conexion_succeeds_against_dovecot(auth, client, dovecot, imap_user):
    auth.create()
    auth.login()
    dovecot.append(imap_user, [b"From: a@b.cr\r\nSubject: hola\r\n\r\nhola\r\n"])
    html = post(client, "/accounts/test", imap_form(dovecot, user=imap_user)).get_data(as_text=True)
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
    own = tmp_path / str(auth.create())  # each user's local sources live in their folder
    write_maildir(own / "bancos", generate_notifications(2, seed=1))
    auth.login()
    response = post(client, "/accounts/new", local_form(source_kind="maildir", local_path="bancos"))
    assert response.status_code == 302, response.get_data(as_text=True)
    [account] = accounts(app)
    assert (account.source_kind, account.local_path) == ("maildir", str(own / "bancos"))
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
        ("/etc/passwd", "La ruta debe estar dentro de su carpeta de buzones en el servidor"),
        ("../otra", "La ruta debe estar dentro de su carpeta de buzones en el servidor"),
        ("no-existe", "No existe «no-existe» en su carpeta de buzones en el servidor"),
        ("x" * 300, "en su carpeta de buzones en el servidor"),
        ("a\x00b", "La ruta debe estar dentro de su carpeta de buzones en el servidor"),
    ],
)
def test_local_paths_are_confined_without_revealing_the_root(app, auth, client, path, message):
    auth.create()
    auth.login()
    html = post(client, "/accounts/new", local_form(source_kind="mbox", local_path=path))
    page = html.get_data(as_text=True)
    assert message in page and "LOCAL_MAILBOX_ROOT" in page  # the help names the setting
    assert app.config["LOCAL_MAILBOX_ROOT"] not in page
    assert accounts(app) == []


def test_another_users_mailbox_is_out_of_reach(app, auth, client, tmp_path):
    theirs = auth.create("beto@example.cr")
    write_maildir(tmp_path / str(theirs) / "bancos", generate_notifications(1, seed=1))
    mine = auth.create()
    (tmp_path / str(mine)).mkdir()
    auth.login()
    for typed in (f"../{theirs}/bancos", str(tmp_path / str(theirs) / "bancos")):
        page = post(client, "/accounts/new", local_form(source_kind="maildir", local_path=typed))
        assert "La ruta debe estar dentro de su carpeta" in page.get_data(as_text=True)
    assert accounts(app) == []


def test_local_path_must_have_the_chosen_shape(app, auth, client, tmp_path):
    write_maildir(tmp_path / str(auth.create()) / "bancos", [])
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
    account = EmailAccount(
        source_kind="imap",
        imap_host="a" * 64 + ".cr",
        imap_port=993,
        imap_security="ssl",
        imap_user="ana",
        folder="INBOX",
    )
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


def test_probar_conexion_answers_a_message_on_an_unexpected_error(
    app, auth, client, dovecot, imap_user
):
    auth.create()
    auth.login()
    add_account(client, dovecot, user=imap_user)
    # The keys changed since the password was stored: decrypting it fails.
    app.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    html = probe_fragment(
        client, imap_form(dovecot, user=imap_user, imap_password=""), path="/accounts/1/test"
    )
    assert 'data-result="error"' in html and "error inesperado" in html


def test_probar_conexion_counts_a_local_maildir(auth, client, tmp_path):
    write_maildir(tmp_path / str(auth.create()) / "bancos", generate_notifications(3, seed=2))
    auth.login()
    html = probe_fragment(client, local_form(source_kind="maildir", local_path="bancos"))
    assert 'data-result="ok"' in html and "3 correos" in html


# Provider presets and the app passwords they need.


def test_a_provider_fills_in_its_server_and_the_address_as_user(app, auth, client):
    auth.create()
    auth.login()
    response = post(
        client,
        "/accounts/new",
        {
            "bank": "bac",
            "address": "Ana.Mora@gmail.com",
            "source_kind": "imap",
            "provider": "gmail",
            "imap_password": "abcd efgh ijkl mnop",
            "folder": "[Gmail]/Todos",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        account = db.session.scalars(db.select(EmailAccount)).one()
        assert (account.imap_host, account.imap_port, account.imap_security) == (
            "imap.gmail.com",
            993,
            "ssl",
        )
        assert (account.imap_user, account.folder) == ("ana.mora@gmail.com", "[Gmail]/Todos")
    edit = client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert re.search(r'<option selected value="gmail">|<option value="gmail" selected', edit)


def test_the_form_names_each_providers_own_page_for_app_passwords(auth, client):
    auth.create()
    auth.login()
    html = client.get("/accounts/new").get_data(as_text=True)
    assert "«Contraseñas de aplicaciones»" in html and "myaccount.google.com/apppasswords" in html
    assert "«Contraseñas específicas para apps»" in html and "appleid.apple.com" in html
    assert "«Generar contraseña de app»" in html
    assert "Outlook, Hotmail y Microsoft 365 ya no aceptan contraseñas por IMAP" in html
    assert "[Gmail]/Todos" in html and "outlook.office365.com" in html


def test_outlook_refuses_a_password_and_points_to_the_microsoft_sign_in(auth, client):
    auth.create()
    auth.login()
    html = post(
        client,
        "/accounts/new",
        {
            "bank": "bac",
            "address": "ana@hotmail.com",
            "source_kind": "imap",
            "provider": "outlook",
            "imap_password": "secreta",
        },
    ).get_data(as_text=True)
    assert "ya no aceptan contraseñas por IMAP: use «Conectar con Microsoft»" in html


@pytest.mark.parametrize(
    "provider, host",
    [("gmail", "imap.gmail.com"), ("yahoo", "imap.mail.yahoo.com"), ("icloud", "imap.mail.me.com")],
)
def test_add_account_command_takes_a_provider(app, auth, runner, provider, host):
    auth.create()
    result = runner.invoke(
        args=[
            "add-account",
            "--user",
            "ana@example.cr",
            "--bank",
            "bac",
            "--address",
            "ana@example.com",
            "--provider",
            provider,
            "--imap-password",
            "clave-de-app",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.get(EmailAccount, int(result.output.strip()))
        assert (account.imap_host, account.imap_port, account.imap_security, account.imap_user) == (
            host,
            993,
            "ssl",
            "ana@example.com",
        )


# A private server's own certificate, trusted for this account only.


def test_probar_conexion_offers_to_trust_a_self_signed_certificate(app, auth, client, tls_dovecot):
    import hashlib
    import ssl

    name = f"u{uuid.uuid4().hex[:10]}"
    tls_dovecot.add_user(name, IMAP_PASSWORD)
    auth.create()
    auth.login()
    form = imap_form(
        tls_dovecot, user=name, imap_port=str(tls_dovecot.ssl_port), imap_security="ssl"
    )
    html = post(client, "/accounts/test", form).get_data(as_text=True)
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(tls_dovecot.cert_path.read_text())).hexdigest()
    assert "no es de una autoridad reconocida" in html and "Confiar en este certificado" in html
    assert f'data-trust-fingerprint="{pin}"' in html
    assert ":".join(pin[i : i + 2] for i in range(0, 64, 2)).upper() in html

    html = post(client, "/accounts/test", form | {"tls_fingerprint": pin}).get_data(as_text=True)
    assert "Conexión exitosa" in html and "certificado en el que usted confió" in html
    assert post(client, "/accounts/new", form | {"tls_fingerprint": pin}).status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(EmailAccount.tls_fingerprint)).one() == pin
    assert "Certificado de confianza (SHA-256)" in client.get("/accounts/1/edit").get_data(
        as_text=True
    )
    other = "ab" * 32
    html = post(client, "/accounts/1/test", form | {"tls_fingerprint": other}).get_data(
        as_text=True
    )
    assert "cambió desde que usted confió en él" in html
    assert f'data-trust-fingerprint="{pin}"' in html


def test_the_stored_password_goes_only_to_the_server_it_was_given_for(
    app, auth, client, dovecot, imap_user
):
    auth.create()
    auth.login()
    add_account(client, dovecot, user=imap_user)
    with socket.socket() as listener:  # a server of someone else's: it must hear nothing
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        elsewhere = imap_form(
            dovecot, user=imap_user, imap_password="", imap_port=str(listener.getsockname()[1])
        )
        html = probe_fragment(client, elsewhere, path="/accounts/1/test")
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # "Probar conexión" never connected to it
    assert 'href="#imap_password"' in html  # a password for that server is asked for
    page = post(client, "/accounts/1/edit", elsewhere | {"imap_host": "127.0.0.2"})
    assert page.status_code == 200 and 'href="#imap_password"' in page.get_data(as_text=True)
    with app.app_context():
        account = db.session.get(EmailAccount, 1)
        assert account.imap_host == "127.0.0.1" and account.imap_password_encrypted
    # The same server, security and user: a blank password keeps the stored one.
    same = imap_form(dovecot, user=imap_user, imap_password="")
    assert 'data-result="ok"' in probe_fragment(client, same, path="/accounts/1/test")
    assert post(client, "/accounts/1/edit", same | {"folder": "Bancos"}).status_code == 302
    with app.app_context():
        assert db.session.get(EmailAccount, 1).imap_password_encrypted


def test_an_account_is_not_deleted_while_it_syncs(app, auth, client, dovecot):
    user_id = auth.create()
    auth.login()
    add_account(client, dovecot)
    with app.app_context():
        db.session.add(SyncSession(user_id=user_id, status="running"))
        db.session.commit()
    page = post(client, "/accounts/1/delete", {}, follow_redirects=True)
    assert "Hay una sincronización en curso" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(EmailAccount, 1) is not None
