"""The Analytics page in the OS Chromium: plotly.js (served by this site) draws the four charts
without a JavaScript error. A screenshot goes to var/screenshots/analytics/ (or $SCREENSHOTS_DIR)."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from strategies.tests.test_analytics import fixture  # noqa: F401 - the hand-computed fixture
from workflows.tests.test_editor_browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.browser


def test_the_analytics_page_draws_its_charts(transactional_db, settings_override, fixture):  # noqa: F811
    server = LiveServer("localhost")
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or settings.BASE_DIR / "var" / "screenshots") / "analytics"
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url).new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto("/accounts/login/")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "pw-alice-123")
            page.click("button[type=submit], input[type=submit]")
            page.goto(f"/analytics/?scope=workflow:{fixture['workflow'].id}")
            for plot in ("plot-runs", "plot-decisions", "plot-pnl", "plot-steps"):
                expect(page.locator(f"#{plot} .main-svg").first).to_be_visible()
            expect(page.locator('[data-figure="pnl"]')).to_have_text("150.00")
            page.screenshot(path=str(shots / "workflow.png"), full_page=True)
            # Everything the page loaded came from this site: no CDN.
            assert all(url.startswith(server.url) for url in requested), requested
            connections.close_all()
            browser.close()
    finally:
        server.stop()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def settings_override(settings, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server speaks plain HTTP, whatever DEBUG says.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
