"""The admin pages in real Chromium: rq-dashboard under our CSP and CSRF, the health page live."""

import uuid

import pytest
from playwright.sync_api import expect
from stack import PASSWORD, log_in


@pytest.fixture(scope="module")
def admin(live):
    """An admin, and a sync of another user's mail: the queue exists once a job went through."""
    email = live.new_user(messages=30)
    admin = f"root-{uuid.uuid4().hex[:8]}@example.cr"
    live.flask("create-user", admin, "--password", PASSWORD, "--admin")
    live.flask("sync", "--user", email, "--wait")
    return admin


@pytest.fixture
def admin_page(browser, live, admin):
    context = browser.new_context()
    page = context.new_page()
    problems = []
    # CSP violations and script errors; failed requests are checked by URL below.
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and problems.append(m.text)
        ),
    )
    # rq-dashboard links a favicon from the host app's static folder; we have none.
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and "favicon" not in r.url and problems.append(f"{r.status} {r.url}")
        ),
    )
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
    # The page's own clock, moved on by exactly the refresh interval instead of waiting it
    # out: the page must ask again by itself within those 5 s. The server's clock is real.
    page.clock.install()
    page.goto(live.url + "/admin/health")
    expect(page.get_by_role("heading", name="Salud del sistema")).to_be_visible()
    with page.expect_response(
        lambda r: "/admin/health" in r.url and r.request.headers.get("hx-request") == "true",
        timeout=8000,
    ):
        page.clock.run_for(5000)
    expect(page.locator("#health-throughput")).not_to_have_text("—", timeout=8000)
    assert problems == []
