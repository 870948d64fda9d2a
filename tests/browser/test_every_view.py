"""Every open view of an account follows its syncs: ten tabs, a second browser, and syncs
started in one tab, from the command line and by the schedule, all opened before."""

import re
import socket
import time
import uuid
from datetime import timedelta

import requests
from stack import PASSWORD, log_in

from expense_sync.auth import find_user
from expense_sync.dispatch import dispatch_due_syncs
from expense_sync.extensions import db
from expense_sync.models import now_utc

TABS = 10


def ended_with(page, token: str) -> bool:
    return page.evaluate(
        "t => { const w = document.getElementById('sync-widget');"
        " const p = document.getElementById('sync-progress');"
        " return !!(w && p && w.dataset.token === t && p.dataset.status === 'completed'); }",
        token,
    )


def wait_for_all(pages, token: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = [i for i, page in enumerate(pages) if not ended_with(page, token)]
        if not behind:
            return
        time.sleep(0.2)
    raise AssertionError(f"views {behind} did not show the end of {token}")


def token_of(page) -> str | None:
    return page.get_attribute("#sync-widget", "data-token")


def next_token(view, after: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    token = after
    while token == after and time.monotonic() < deadline:
        token = token_of(view)
        time.sleep(0.2)
    assert token and token != after
    return token


def schedule_now(live, email: str) -> None:
    """What the scheduler process does when the user's slot comes: the dispatcher runs."""
    with live.cli.app.app_context():
        user = find_user(email)
        user.auto_sync_minutes, user.next_auto_sync_at = 15, now_utc() - timedelta(seconds=1)
        db.session.commit()
        assert dispatch_due_syncs() == 1


def test_every_tab_and_browser_follows_syncs_started_anywhere(browser, live):
    email = live.new_user(300)
    laptop = browser.new_context(viewport={"width": 1100, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    tabs = [laptop.new_page()]
    log_in(tabs[0], live, email)
    for _ in range(TABS - 1):
        tab = laptop.new_page()
        tab.goto(live.url + "/sync")
        tabs.append(tab)
    other = phone.new_page()
    log_in(other, live, email)
    views = [*tabs, other]
    for view in views:  # nothing runs yet: the widgets are idle, and listening
        assert token_of(view) is None
    # (a) started in one tab
    tabs[3].click("#sync-start")
    tabs[3].wait_for_selector("#sync-progress")
    first = token_of(tabs[3])
    wait_for_all(views, first)
    # (b) started from the command line, while every view shows the first one's end
    live.flask("sync", "--user", email)
    second = next_token(other, first)
    wait_for_all(views, second)
    # (c) started by the schedule, and said so in every view
    schedule_now(live, email)
    third = next_token(tabs[7], second)
    wait_for_all(views, third)
    for view in views:
        assert "Sincronización automática" in view.inner_text("#sync-widget-title")
    # One stream per browser: the other tabs heard it over BroadcastChannel.
    leaders = sum(1 for view in views if view.evaluate("window.syncWidget.leader"))
    assert leaders == 2
    laptop.close()
    phone.close()


def test_a_burst_of_dashboards_opening_at_once_all_get_their_stream(live):
    # A deploy or a Wi-Fi that comes back: many people's dashboards reconnect in the same
    # second, to one gevent worker. None may wait on another's database connection.
    people = 24  # more than the pool's 5 + 10 connections
    cookies = []
    for _ in range(people):
        email = f"{uuid.uuid4().hex[:8]}@example.cr"
        live.flask("create-user", email, "--password", PASSWORD)
        session = requests.Session()
        page = session.get(f"{live.url}/login", timeout=10).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        session.post(
            f"{live.url}/login",
            timeout=10,
            allow_redirects=False,
            data={"email": email, "password": PASSWORD, "csrf_token": token},
        )
        cookies.append("; ".join(f"{k}={v}" for k, v in session.cookies.items()))
    agent = requests.utils.default_user_agent()
    streams = []
    for cookie in cookies:  # all sent before any is read
        sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
        sock.sendall(
            f"GET /sync/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {agent}\r\n"
            f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        streams.append(sock)
    started = time.monotonic()
    try:
        for sock in streams:
            received = b""
            while b"event: heartbeat" not in received:
                chunk = sock.recv(4096)  # at most 10 s: the socket's timeout
                assert chunk, received
                received += chunk
            assert received.startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 10
    finally:
        for sock in streams:
            sock.close()
