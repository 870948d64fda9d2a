"""Fixtures for browser tests: headless Chromium and a live stack."""

from pathlib import Path

import pytest
from stack import LiveStack, launch_chromium

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Every test here drives Chromium: marked `browser` (`make test-fast` leaves them out),
    and all of them run in one test process (xdist's group), on its one live stack."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session; each test opens its own context (cookies, storage)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright.sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """One stack for the session: every test makes its own user, so none sees another's data.

    All the tests log in from 127.0.0.1: the stack lets one address log in 200 times a minute.
    """
    stack = LiveStack(tmp_path_factory.mktemp("live"))
    yield stack
    stack.close()
