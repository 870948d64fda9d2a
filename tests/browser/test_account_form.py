"""The account form in real Chromium: a newcomer's local Maildir, "Probar conexión", ports."""

import uuid

import pytest
from playwright.sync_api import expect
from stack import ARTIFACTS, PASSWORD, log_in

from expense_sync.demo import generate_notifications, write_maildir


def register(page, live) -> str:
    """Sign up from the web page, as a newcomer does; return the new user's email."""
    email = f"nuevo-{uuid.uuid4().hex[:8]}@example.cr"
    page.goto(live.url + "/register")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#check-mail")).to_contain_text("activar su cuenta")
    page.goto(live.smtp.link(email))  # the link of the mail the app sent
    page.fill("#password", PASSWORD)  # whoever opens the link must know the password
    page.click("button:has-text('Activar mi cuenta')")
    page.wait_for_url("**/accounts/new")
    return email


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_newcomer_adds_a_local_maildir_and_syncs_it(page, live):
    email = register(page, live)
    # Two BAC purchases in a Maildir under the server's mailbox folder, as an export would be.
    notices = generate_notifications(12, seed=7, banks=["bac"], to_address=email)
    purchases = [n for n in notices if n.expected.get("kind") == "purchase"][:2]
    assert len(purchases) == 2
    folder = f"exportes/{uuid.uuid4().hex[:8]}"
    write_maildir(live.user_folder(email) / folder, purchases)

    page.select_option("#bank", "bac")
    page.fill("#address", email)
    page.select_option("#source_kind", "maildir")
    expect(page.locator("#imap_host")).to_be_hidden()
    expect(page.locator("#local_path-help")).to_contain_text("LOCAL_MAILBOX_ROOT")
    page.fill("#local_path", folder)
    page.click("text=Probar conexión")
    expect(page.locator("#connection-result [data-result=ok]")).to_contain_text("2 correos")
    page.click("button:has-text('Guardar')")
    page.wait_for_url("**/accounts")
    expect(page.locator("#flashes")).to_contain_text(f"Cuenta {email} agregada.")
    expect(page.locator("#account-list")).to_contain_text(folder)
    expect(page.locator("#account-list")).not_to_contain_text(str(live.workdir))

    page.click("nav >> text=Sincronización")
    page.click("#sync-start")
    expect(page.locator("#sync-progress")).to_have_attribute(
        "data-status", "completed", timeout=60000
    )
    expect(page.locator("#sync-detected")).to_have_text("2")


def test_an_error_on_the_path_is_listed_and_marked(page, live):
    register(page, live)
    page.fill("#address", "ana@example.cr")
    page.select_option("#source_kind", "mbox")
    page.fill("#local_path", "../../etc/passwd")
    page.click("button:has-text('Guardar')")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Ruta")
    expect(summary).not_to_contain_text(str(live.workdir))
    expect(page.locator("#local_path")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#imap_host")).to_be_hidden()  # the form came back on the same source
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "account-form-errors.png"), full_page=True)
    summary.locator("a", has_text="Ruta").click()
    expect(page.locator("#local_path")).to_be_focused()


def test_probar_conexion_names_what_to_fix(page, live):
    register(page, live)
    page.fill("#address", "ana@example.cr")
    page.fill("#imap_host", "a" * 255)
    page.click("text=Probar conexión")
    result = page.locator("#connection-result [data-result=error]")
    expect(result).to_contain_text("Revise estos campos antes de probar")
    expect(result.locator("a[href='#imap_host']")).to_be_visible()
    expect(result.locator("a[href='#imap_user']")).to_be_visible()
    expect(page.locator("#imap_host")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#imap_user")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#address")).not_to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(ARTIFACTS / "account-form-probe.png"), full_page=True)


def test_port_follows_security_unless_typed(page, live):
    email = live.new_user(messages=0)
    log_in(page, live, email)
    page.goto(live.url + "/accounts/new")
    port = page.locator("#imap_port")
    expect(port).to_have_value("993")
    page.select_option("#imap_security", "starttls")
    expect(port).to_have_value("143")
    page.select_option("#imap_security", "none")
    expect(port).to_have_value("143")
    page.select_option("#imap_security", "ssl")
    expect(port).to_have_value("993")
    port.fill("1993")
    page.select_option("#imap_security", "starttls")
    expect(port).to_have_value("1993")
