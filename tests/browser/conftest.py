"""A real Chromium (Debian's) driven by Playwright against the app as production serves it:
gunicorn with DEBUG off and collected static files (the `app_server` fixture)."""

import os
import shutil

import pytest

from tests.lab.conftest import guests_stay_intact, home_hosts, lab, lab_config, lab_inventory, workers  # noqa: F401  the browser tests drive the lab
from tests.prerequisites import require

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Chromium's own background traffic would try the internet, which this machine must not reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    require(shutil.which(CHROMIUM) is not None, f"Chromium not found at {CHROMIUM}: run scripts/install-system-packages.sh")
    # Playwright's sync API runs an event loop in this thread; Django must still allow ORM use.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in(page, app_server, username: str, password: str = "correct horse battery staple") -> None:
    page.goto(f"{app_server.url}/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
