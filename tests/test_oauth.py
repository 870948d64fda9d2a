"""OAuth2 sign-in end to end: our authorization server, Dovecot checking tokens against it, workers.

The consent is walked over HTTP here (the browser does it in tests/browser); the worker
refreshes a token before it expires, and again when the server says it expired mid-sync; a
revoked grant fails the account with "Vuelva a conectar su cuenta" until it is reconnected.
"""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from helpers import AuthActions, csrf_token, load, run_worker
from imap_proxy import Answer, ImapProxy
from oauth_server import OAuthServer
from servers import DovecotServer

from expense_sync import crypto
from expense_sync.demo import generate_notifications
from expense_sync.extensions import db
from expense_sync.models import EmailAccount, Expense, User
from expense_sync.sync import control

CALLBACK = "http://localhost/accounts/oauth/google/callback"


@pytest.fixture(scope="module")
def auth():
    with OAuthServer() as server:
        server.add_client("google-app", "google-secret", CALLBACK)
        yield server


@pytest.fixture(scope="module")
def dovecot(auth):
    with DovecotServer(oauth2=auth.introspection_url) as server:
        yield server


@pytest.fixture
def google(app, auth):
    """The app with Google sign-in configured against the test's authorization server."""
    auth.lifetime = 3600
    app.config.update(
        GOOGLE_CLIENT_ID="google-app",
        GOOGLE_CLIENT_SECRET="google-secret",
        GOOGLE_AUTHORIZE_URL=auth.authorize_url,
        GOOGLE_TOKEN_URL=auth.token_url,
    )
    return app


@dataclass
class Mailbox:
    address: str
    expected: int  # distinct bank transactions in it


def mailbox(dovecot, count: int = 0) -> Mailbox:
    address = f"u{uuid.uuid4().hex[:10]}@example.cr"
    dovecot.add_user(address, "una-clave-que-nadie-usa")
    generated = list(generate_notifications(count, seed=11, to_address=address))
    if generated:
        dovecot.append(address, [g.raw for g in generated])
    # One expense per bank transaction, however many notices tell it.
    keys = {
        (e["bank"], e["reference"], e["authorization"])
        if e["reference"]
        else (
            e["bank"],
            e["kind"],
            e["amount"],
            e["currency"],
            e["card_last4"],
            e["occurred_at"][:16],
        )
        for e in (g.expected for g in generated)
        if e["status"] == "transaction"
    }
    return Mailbox(address, len(keys))


def start(client, dovecot, box: Mailbox, port=None, **extra):
    form = {
        "bank": "bac",
        "address": box.address,
        "source_kind": "imap",
        "provider": "gmail",
        "imap_host": "127.0.0.1",
        "imap_port": str(port or dovecot.port),
        "imap_security": "none",
        "folder": "INBOX",
        "csrf_token": csrf_token(client, "/accounts/new"),
    } | extra
    return client.post("/accounts/oauth/google/start", data=form)


def consent(response, user: str, confirm: str = "yes") -> str:
    """Answer the provider's consent page; return our callback URL it redirects to."""
    assert response.status_code == 302, response.get_data(as_text=True)
    page = requests.post(
        response.location,
        data={"username": user, "confirm": confirm},
        allow_redirects=False,
        timeout=10,
    )
    assert page.status_code == 302, page.text
    return page.headers["Location"]


def connect(client, dovecot, box: Mailbox, port=None) -> int:
    callback = consent(start(client, dovecot, box, port), box.address)
    assert client.get(callback).location.endswith("/accounts")
    return db.session.scalars(db.select(EmailAccount.id).filter_by(address=box.address)).one()


def sync(app, user_id) -> tuple:
    with app.app_context():
        token = control.start(db.session.get(User, user_id)).token
    run_worker(app)
    with app.app_context():
        session = load(token)
        stored = db.session.scalar(
            db.select(db.func.count()).select_from(Expense).filter_by(user_id=user_id)
        )
        return session, stored


def test_buttons_only_for_configured_providers(app, client):
    actions = AuthActions(app, client)
    actions.create()
    actions.login()
    assert "Conectar con" not in client.get("/accounts/new").get_data(as_text=True)
    app.config.update(GOOGLE_CLIENT_ID="google-app")
    html = client.get("/accounts/new").get_data(as_text=True)
    assert "Conectar con Google" in html and "Conectar con Microsoft" not in html
    assert (
        client.post(
            "/accounts/oauth/microsoft/start", data={"csrf_token": csrf_token(client, "/accounts")}
        ).status_code
        == 404
    )


def test_consent_with_pkce_stores_the_grant_encrypted_and_logs_in(
    google, auth, auth_client, dovecot
):
    client = auth_client
    box = mailbox(dovecot, count=30)
    response = start(client, dovecot, box)
    query = parse_qs(urlsplit(response.location).query)
    assert response.location.startswith(auth.authorize_url)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["scope"] == ["https://mail.google.com/"]
    assert query["access_type"] == ["offline"]
    callback = consent(response, box.address)
    assert client.get(callback).location.endswith("/accounts")
    with google.app_context():
        account = db.session.scalars(db.select(EmailAccount)).one()
        assert (account.oauth_provider, account.imap_user) == ("google", box.address)
        assert account.imap_password_encrypted is None
        issued = auth.tokens[-1]
        stored = account.oauth_refresh_token_encrypted + account.oauth_access_token_encrypted
        assert issued.refresh_token.encode() not in stored
        assert issued.access_token.encode() not in stored
        assert crypto.decrypt(account.oauth_refresh_token_encrypted) == issued.refresh_token
        account_id = account.id
    html = client.get("/accounts").get_data(as_text=True)
    assert "conectada con Google" in html
    probe = client.post(
        f"/accounts/{account_id}/test",
        data={
            "bank": "bac",
            "address": box.address,
            "source_kind": "imap",
            "provider": "gmail",
            "imap_host": "127.0.0.1",
            "imap_port": str(dovecot.port),
            "imap_security": "none",
            "folder": "INBOX",
            "csrf_token": csrf_token(client, "/accounts"),
        },
    )
    assert "Conexión exitosa: la carpeta tiene 30 correos." in probe.get_data(as_text=True)
    assert (issued.access_token, True) in auth.introspections  # Dovecot asked our server


def test_a_denied_consent_adds_no_account(google, auth_client, dovecot):
    box = mailbox(dovecot)
    callback = consent(start(auth_client, dovecot, box), box.address, confirm="no")
    assert "error=access_denied" in callback
    response = auth_client.get(callback, follow_redirects=True)
    assert "Google no dio permiso para leer su correo" in response.get_data(as_text=True)
    with google.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(EmailAccount)) == 0


def test_a_callback_that_did_not_start_here_is_refused(google, auth_client):
    response = auth_client.get(
        "/accounts/oauth/google/callback?code=x&state=y", follow_redirects=True
    )
    assert "no empezó aquí" in response.get_data(as_text=True)


def test_the_worker_refreshes_a_token_before_it_expires(
    google, auth, auth_client, dovecot, user_id
):
    auth.lifetime = 30  # under the refresh margin: no login may use a token this close to expiry
    box = mailbox(dovecot, count=60)
    with google.app_context():
        connect(auth_client, dovecot, box)
    first = auth.tokens[-1].access_token
    refreshes = auth.refreshes
    session, stored = sync(google, user_id)
    assert session.status == "completed", session.error_message
    assert stored == box.expected > 0
    assert auth.refreshes >= refreshes + 2  # the count, then the account's job
    asked = [token for token, _ in auth.introspections]
    assert first not in asked
    assert all(active for token, active in auth.introspections if token in asked[-2:])


class ExpiringBye(Answer):
    """A BYE mid-FETCH at the moment the provider's clock passes every token's expiry."""

    def __init__(self, auth: OAuthServer, **kwargs):
        super().__init__(**kwargs)
        self.auth = auth

    def wants(self, command: bytes) -> bool:
        hit = super().wants(command)
        if hit:
            self.auth.advance(2 * 3600)
        return hit


def test_a_token_expired_mid_sync_is_refreshed_and_nothing_is_lost(
    google, auth, auth_client, dovecot, user_id
):
    box = mailbox(dovecot, count=520)
    bye = ExpiringBye(
        auth,
        command=rb"^UID FETCH",
        skip=1,
        after_literals=50,
        reply=b"* BYE [UNAVAILABLE] Server Unavailable. 15\r\n",
    )
    with ImapProxy(dovecot.port, answers=[bye]) as proxy:
        with google.app_context():
            connect(auth_client, dovecot, box, port=proxy.port)
        first, refreshes = auth.tokens[-1].access_token, auth.refreshes
        session, stored = sync(google, user_id)
    assert bye.answered == 1
    assert session.status == "completed", session.error_message
    assert session.processed_emails == session.total_emails
    assert stored == box.expected > 0
    assert (first, False) in auth.introspections  # presented after it expired, refused
    assert auth.refreshes == refreshes + 1
    assert auth.introspections[-1] == (auth.tokens[-1].access_token, True)


def test_a_revoked_grant_fails_the_account_until_it_is_reconnected(
    google, auth, auth_client, dovecot, user_id
):
    box = mailbox(dovecot, count=20)
    with google.app_context():
        account_id = connect(auth_client, dovecot, box)
    auth.revoke(box.address)
    session, stored = sync(google, user_id)
    assert session.status == "failed" or session.accounts[0].status == "failed"
    message = session.accounts[0].error_message
    assert "Google ya no autoriza el acceso" in message and "Vuelva a conectar su cuenta" in message
    html = auth_client.get("/accounts").get_data(as_text=True)
    assert "Vuelva a conectar su cuenta" in html and "Volver a conectar" in html

    again = auth_client.post(
        "/accounts/oauth/google/start",
        data={"account_id": str(account_id), "csrf_token": csrf_token(auth_client, "/accounts")},
    )
    assert auth_client.get(consent(again, box.address)).location.endswith("/accounts")
    session, stored = sync(google, user_id)
    assert session.status == "completed", session.error_message
    assert stored == box.expected
    with google.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(EmailAccount)) == 1


@pytest.fixture
def user_id(google, auth_client):
    from expense_sync.auth import find_user

    with google.app_context():
        return find_user("ana@example.cr").id


@pytest.fixture
def auth_client(google, auth, client):
    actions = AuthActions(google, client)
    actions.create()
    actions.login()
    return client
