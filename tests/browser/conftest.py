"""Fixtures for browser tests: headless Chromium and a live stack."""

from pathlib import Path

import pytest
from stack import CHROMIUM_ARGS, LiveStack


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    stack = LiveStack(tmp_path_factory.mktemp("live"))
    yield stack
    stack.close()
