"""The admin pages in real Chromium: rq-dashboard under our CSP and CSRF, the health page live."""

import uuid

import pytest
from playwright.sync_api import expect, sync_playwright
from stack import CHROMIUM_ARGS, PASSWORD, log_in


@pytest.fixture(scope="module")
def chromium():
    """A browser of this module's own: one left running (like the session's `browser`) would
    break test_expenses_page, which starts Playwright itself."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def admin_page(chromium, live):
    email = live.new_user(messages=30)
    admin = f"root-{uuid.uuid4().hex[:8]}@example.cr"
    live.flask("create-user", admin, "--password", PASSWORD, "--admin")
    live.flask("sync", "--user", email, "--wait")  # the queue exists once a job went through
    context = chromium.new_context()
    page = context.new_page()
    problems = []
    # CSP violations and script errors; failed requests are checked by URL below.
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and problems.append(m.text))
    # rq-dashboard links a favicon from the host app's static folder; we have none.
    page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url
            and problems.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live, admin)
    yield page, problems
    context.close()


def test_dashboard_works_under_our_csp_and_csrf(admin_page, live):
    page, problems = admin_page
    page.goto(live.url + "/admin/rq/0/view/queues")
    # The rows are drawn by the dashboard's own script from queues.json.
    expect(page.locator("td", has_text="sync").first).to_be_visible()
    page.goto(live.url + "/admin/rq/0/view/jobs")
    # Its jQuery sends our CSRF token (from the cookie we set) with every POST.
    result = page.evaluate("""() => new Promise((resolve) => $.post(
        "/admin/rq/job/no-such-job/delete").done(resolve).fail((x) => resolve(x.status)))""")
    assert result == {"status": "ERROR"}  # passed the CSRF check; the job does not exist
    assert problems == []


def test_health_page_updates_itself(admin_page, live):
    page, problems = admin_page
    page.goto(live.url + "/admin/health")
    expect(page.get_by_role("heading", name="Salud del sistema")).to_be_visible()
    with page.expect_response(lambda r: "/admin/health" in r.url
                              and r.request.headers.get("hx-request") == "true", timeout=8000):
        pass
    expect(page.locator("#health-throughput")).not_to_have_text("—", timeout=8000)
    assert problems == []
