"""The sync widget in real headless Chromium against gunicorn, a worker and Redis."""

import time

from stack import ARTIFACTS, log_in

MESSAGES = 8000


def wait_until(page, expression: str, timeout: float = 60) -> None:
    """Poll a JS expression from Python: wait_for_function would eval() past our CSP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")


def progress(page) -> dict:
    return page.eval_on_selector("#sync-progress", "e => ({...e.dataset, "
                                 "now: e.getAttribute('aria-valuenow')})")


def watch_until_done(page, timeout=120) -> list[int]:
    """Percentages seen until the widget says completed (no reloads happen meanwhile)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = progress(page)
        if not seen or seen[-1] != int(state["now"]):
            seen.append(int(state["now"]))
        if state["status"] in ("completed", "failed"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"no end after {timeout} s; saw {seen}")


def start(page):
    page.click("#sync-start")
    page.wait_for_selector("#sync-progress[data-status=running]", timeout=30000)


def test_bar_moves_live_to_100_with_the_same_element(browser, live, dovecot):
    # Long enough for several broadcasts at 1 per second. Over IMAP, where the server finds
    # the bank mail: a Maildir's scan reads all the headers, once to count and once more in
    # the account's job, and the bar would stand still for ~10 s before it moves.
    email = live.new_user(MESSAGES * 3, imap=dovecot)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    log_in(page, live, email)
    start(page)
    page.evaluate("window.__bar = document.getElementById('sync-progress-bar');"
                  "window.__loaded = performance.timeOrigin")
    wait_until(page, "Number(document.getElementById('sync-progress')"
                           ".getAttribute('aria-valuenow')) >= 5", timeout=60)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sync-widget-running.png"))
    seen = watch_until_done(page)
    assert progress(page)["status"] == "completed" and seen[-1] == 100
    assert len({p for p in seen if 0 < p < 100}) >= 3, seen
    assert seen == sorted(seen)
    assert page.evaluate("window.__bar === document.getElementById('sync-progress-bar')")
    assert page.evaluate("window.__loaded === performance.timeOrigin")  # never reloaded
    transform = page.eval_on_selector("#sync-progress-bar", "e => e.style.transform")
    assert transform == "scaleX(1)" or transform == "scaleX(1.0000)"
    assert "gastos detectados" in page.inner_text("#sync-widget")
    # The finished widget came over the stream, rendered once for every browser: its form
    # carries no session's CSRF token, the page's header does. Starting again must work.
    token = page.get_attribute("#sync-widget", "data-token")
    page.click("#sync-start")
    wait_until(page, f"document.getElementById('sync-widget').dataset.token !== '{token}'",
               timeout=30)
    page.close()


def test_blocked_stream_falls_back_to_polling(browser, live):
    email = live.new_user(MESSAGES // 2)
    page = browser.new_page()
    page.route("**/stream", lambda route: route.abort())
    polls = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/status") else None)
    log_in(page, live, email)
    # Only polls can tell the page the sync runs; it may end between two of them.
    page.click("#sync-start")
    page.wait_for_selector("#sync-connection:not([hidden])", timeout=15000)
    assert "Reconectando" in page.inner_text("#sync-connection")
    seen = watch_until_done(page)
    assert seen[-1] == 100 and len(polls) >= 2
    page.close()


def test_widget_reconnects_after_the_web_server_restarts(browser, live):
    # Paused as soon as the stream is live, like the offline test: enough mail that the
    # worker is still scanning or reading it by then.
    email = live.new_user(MESSAGES)
    page = browser.new_page()
    log_in(page, live, email)
    start(page)
    wait_until(page, "window.syncWidget && window.syncWidget.connection === 'live'")
    # Paused, the sync waits for us while the web server goes away and comes back.
    page.click("#sync-toggle-pause")
    page.wait_for_selector("#sync-progress[data-status=paused]", timeout=15000)
    live.stop_web()
    try:
        page.wait_for_selector("#sync-connection:not([hidden])", timeout=15000)
        assert "Reconectando" in page.inner_text("#sync-connection")
    finally:
        live.start_web()
    wait_until(page, "window.syncWidget.connection === 'live'", timeout=40)
    wait_until(page, "document.getElementById('sync-connection').hidden")
    page.click("#sync-toggle-pause")  # Reanudar: the updates now come over the new stream
    seen = watch_until_done(page)
    assert seen[-1] == 100
    page.close()


def test_ten_tabs_all_stay_live_on_one_stream(browser, live):
    email = live.new_user(MESSAGES)
    context = browser.new_context()
    first = context.new_page()
    log_in(first, live, email)
    start(first)
    streams = []
    context.on("request", lambda r: streams.append(r.url) if r.url.endswith("/stream") else None)
    pages = [first] + [context.new_page() for _ in range(9)]
    for page in pages[1:]:
        page.goto(live.url + "/sync")
    for page in pages:
        wait_until(page, "document.getElementById('sync-progress')"
                               ".dataset.status === 'completed'", timeout=120)
        assert progress(page)["now"] == "100"
    # One tab holds the stream for all of them (HTTP/1.1 allows six per site).
    assert len(streams) <= 3, streams
    context.close()


def test_pause_and_resume(browser, live, dovecot):
    # Over IMAP, like the bar's test: the time goes on reading mail, not on scanning headers.
    email = live.new_user(MESSAGES * 2, imap=dovecot)
    page = browser.new_page()
    log_in(page, live, email)
    start(page)
    wait_until(page, "Number(document.getElementById('sync-progress')"
                           ".dataset.processed) > 0", timeout=60)
    page.click("#sync-toggle-pause")
    page.wait_for_selector("#sync-progress[data-status=paused]", timeout=15000)
    page.wait_for_selector("text=Reanudar")
    # The worker says so once it has finished its batch and stopped.
    page.wait_for_selector("#sync-accounts [data-status=paused]", timeout=15000)
    paused_at = progress(page)["processed"]
    time.sleep(1.5)
    assert progress(page)["processed"] == paused_at
    page.click("#sync-toggle-pause")
    page.wait_for_selector("#sync-progress[data-status=running]", timeout=15000)
    assert watch_until_done(page)[-1] == 100
    page.close()


def test_offline_and_back_online_with_toasts(browser, live):
    email = live.new_user(MESSAGES)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, live, email)
    start(page)
    wait_until(page, "window.syncWidget && window.syncWidget.connection === 'live'")
    page.click("#sync-toggle-pause")
    page.wait_for_selector("#sync-progress[data-status=paused]", timeout=15000)
    context.set_offline(True)
    page.wait_for_selector("#sync-connection:not([hidden])", timeout=10000)
    assert page.inner_text("#sync-connection-message") == "Sin conexión"
    context.set_offline(False)
    wait_until(page, "window.syncWidget.connection === 'live'", timeout=30)
    assert "Conexión restablecida" in page.inner_text("#toasts")
    page.click("#sync-toggle-pause")
    assert watch_until_done(page)[-1] == 100
    context.close()
