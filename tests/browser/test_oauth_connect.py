"""The account form in Chromium: provider presets, "Conectar con Google" through the consent
page of the test's own authorization server, and "Confiar en este certificado"."""

import re
import uuid

import pytest
from oauth_server import OAuthServer
from servers import DovecotServer
from stack import PASSWORD, LiveStack, log_in

from expense_sync.extensions import db
from expense_sync.models import EmailAccount


@pytest.fixture(scope="module")
def auth():
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def imap(auth):
    with DovecotServer(tls=True, oauth2=auth.introspection_url) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_live(auth, tmp_path_factory):
    """A stack of its own whose web and worker know the test's authorization server."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "GOOGLE_CLIENT_ID": "google-app",
            "GOOGLE_CLIENT_SECRET": "google-secret",
            "GOOGLE_AUTHORIZE_URL": auth.authorize_url,
            "GOOGLE_TOKEN_URL": auth.token_url,
        }.items():
            env.setenv(name, value)
        stack = LiveStack(tmp_path_factory.mktemp("oauth-live"))
    auth.add_client("google-app", "google-secret", f"{stack.url}/accounts/oauth/google/callback")
    yield stack
    stack.close()


@pytest.fixture
def page(browser, oauth_live):
    context = browser.new_context(locale="es-CR")
    page = context.new_page()
    email = f"{uuid.uuid4().hex[:8]}@example.cr"
    oauth_live.flask("create-user", email, "--password", PASSWORD)
    log_in(page, oauth_live, email)
    yield page
    context.close()


def accounts(live) -> list[EmailAccount]:
    with live.cli.app.app_context():
        found = db.session.scalars(db.select(EmailAccount).order_by(EmailAccount.id)).all()
        db.session.expunge_all()
        return found


def test_a_provider_fills_the_server_in_and_explains_its_passwords(page, oauth_live):
    page.goto(oauth_live.url + "/accounts/new")
    page.select_option("#provider", "gmail")
    assert page.input_value("#imap_host") == "imap.gmail.com"
    assert page.input_value("#imap_port") == "993"
    assert page.input_value("#imap_security") == "ssl"
    gmail = page.locator("[data-provider-help=gmail]")
    assert gmail.is_visible() and "«Contraseñas de aplicaciones»" in gmail.inner_text()
    hints = page.eval_on_selector_all("#folder-hints option", "os => os.map(o => o.value)")
    assert hints == ["INBOX", "[Gmail]/Todos"]
    page.select_option("#provider", "icloud")
    assert page.input_value("#imap_host") == "imap.mail.me.com"
    assert not gmail.is_visible()
    assert (
        "«Contraseñas específicas para apps»"
        in page.locator("[data-provider-help=icloud]").inner_text()
    )
    page.select_option("#provider", "outlook")
    assert "ya no aceptan contraseñas" in page.locator("[data-provider-help=outlook]").inner_text()


def test_conectar_con_google_walks_the_consent_and_the_account_logs_in(
    page, oauth_live, imap, auth
):
    address = f"{uuid.uuid4().hex[:8]}@example.cr"
    imap.add_user(address, "una-clave-que-nadie-usa")
    imap.append(address, [b"From: a@b.cr\r\nSubject: hola\r\n\r\nhola\r\n"] * 3)
    page.goto(oauth_live.url + "/accounts/new")
    page.fill("#address", address)
    page.select_option("#provider", "gmail")
    # The provider's server is the test's Dovecot, over plain IMAP on loopback.
    page.fill("#imap_host", "127.0.0.1")
    page.fill("#imap_port", str(imap.port))
    page.select_option("#imap_security", "none")
    page.click("button:has-text('Conectar con Google')")
    page.wait_for_url(re.compile("^" + re.escape(auth.authorize_url + "?")))
    page.fill("#username", address)
    page.click("button:has-text('Permitir')")
    page.wait_for_url("**/accounts")
    row = page.locator("#account-list li", has_text=address)
    assert "conectada con Google" in row.inner_text()
    row.locator("text=Editar").click()
    assert page.locator("[data-oauth-connected]").is_visible()
    page.click("[data-probe]")
    result = page.locator("[data-result=ok]")
    result.wait_for()
    assert "la carpeta tiene 3 correos" in result.inner_text()


def test_trusting_a_self_signed_certificate_pins_it(page, oauth_live, imap):
    name = f"u{uuid.uuid4().hex[:10]}"
    imap.add_user(name, PASSWORD)
    page.goto(oauth_live.url + "/accounts/new")
    page.fill("#address", f"{name}@example.cr")
    page.fill("#imap_host", "127.0.0.1")
    page.select_option("#imap_security", "ssl")
    page.fill("#imap_port", str(imap.ssl_port))
    page.fill("#imap_user", name)
    page.fill("#imap_password", PASSWORD)
    page.click("[data-probe]")
    trust = page.locator("[data-trust-fingerprint]")
    trust.wait_for()
    pin = trust.get_attribute("data-trust-fingerprint")
    trust.click()
    page.locator("[data-result=ok]").wait_for()
    assert page.locator("[data-pinned]").is_visible()
    page.click("button[type=submit]:has-text('Guardar')")
    page.wait_for_url("**/accounts")
    saved = [a for a in accounts(oauth_live) if a.imap_user == name]
    assert [a.tls_fingerprint for a in saved] == [pin]
