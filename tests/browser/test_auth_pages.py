"""The page frame in real Chromium: no console errors, the favicon, the skip link, sign-up."""

import pytest
from playwright.sync_api import expect
from stack import ARTIFACTS, log_in

PAGES = ["/accounts", "/accounts/new", "/sync", "/expenses"]


@pytest.fixture
def watched(browser):
    """A fresh context's page, and every console error, script error and failed request."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    yield page, problems
    context.close()


def test_pages_load_without_console_errors(watched, live):
    page, problems = watched
    for path in ("/login", "/register"):
        page.goto(live.url + path)
        expect(page.locator("h1")).to_be_visible()
    log_in(page, live, live.new_user(messages=0))
    for path in PAGES:
        page.goto(live.url + path)
        expect(page.locator("main#contenido")).to_be_visible()
    assert problems == []
    icon = page.get_attribute("link[rel=icon]", "href")
    response = page.request.get(live.url + icon)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    assert "₡" in response.text()


def test_skip_link_appears_on_focus_and_jumps_to_the_content(watched, live):
    page, _ = watched
    page.goto(live.url + "/register")
    skip = page.locator("#skip-link")
    assert skip.bounding_box()["width"] <= 1  # hidden until focused
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Saltar al contenido")
    assert skip.bounding_box()["width"] > 50
    expect(skip).to_be_in_viewport()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "skip-link-focused.png"))
    page.keyboard.press("Enter")
    expect(page.locator("#contenido")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is the form, not the header
    expect(page.locator("#email")).to_be_focused()


def test_flash_messages_are_a_live_region(watched, live):
    page, _ = watched
    page.goto(live.url + "/login")
    page.fill("#email", "nadie@example.cr")
    page.fill("#password", "no-es-la-clave")
    page.click("button[type=submit]")
    expect(page.locator("#flashes[role=status]")).to_contain_text("Correo o contraseña")
    expect(page.get_by_role("alert")).to_have_text("Correo o contraseña incorrectos.")


def test_a_pasted_overlong_password_says_it_is_too_long(watched, live):
    page, _ = watched
    page.goto(live.url + "/register")
    hint = page.inner_text("#password-help")
    page.fill("#email", "largo@example.cr")
    page.locator("#password").fill("x" * 1500)
    page.locator("#confirm").fill("x" * 1500)
    page.click("button[type=submit]")
    expect(page.locator("#password-error")).to_have_text(
        "La contraseña es demasiado larga: use como máximo 1024 caracteres."
    )
    expect(page.locator("#confirm-error")).to_have_count(0)
    page.fill("#password", "corta")
    page.fill("#confirm", "corta")
    page.click("button[type=submit]")
    error = page.inner_text("#password-error")
    assert "demasiado corta" in error and error != hint and hint not in error


def test_error_page_is_in_spanish_with_the_frame(watched, live):
    page, _ = watched
    response = page.goto(live.url + "/no-existe")
    assert response.status == 404
    expect(page.locator("main#contenido")).to_contain_text("La página que busca no existe.")
    expect(page.locator("#skip-link")).to_have_count(1)
