"""The live run page in the OS Chromium (Playwright), against the live server and a real worker:
badges, the timeline and the finished steps' cards change without a reload; one reload at the end."""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from conftest import chain_graph, node
from workflows import engine, services
from workflows.tests.test_editor_browser import CHROMIUM_ARGS, chromium_path, login

pytestmark = [pytest.mark.browser, pytest.mark.worker]
TIMEOUT_MS = 30_000


def screenshot_dir() -> Path:
    root = Path(os.environ.get("SCREENSHOTS_DIR") or django_settings.BASE_DIR / "var" / "screenshots")
    folder = root / "live"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_run_page_follows_a_run_live(workers, user, settings, monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls here are plain code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.LIVE_POLL_INTERVAL_S = 0.1
    graph = chain_graph(node("a", "test.echo", sleep_s=3), node("b", "test.echo", sleep_s=1))
    workflow = services.workflow_create(owner=user, name="live page", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")  # sent; no worker yet

    server = LiveServer("localhost")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=server.url)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            login(page, "alice", "pw-alice-123")
            page.goto(f"/runs/{run.pk}/")
            expect(page.locator("#live-indicator")).to_have_text("live")
            expect(page.locator("#step-src .step-meta .badge")).to_have_text("queued")
            expect(page.locator('.timeline-row[data-node="src"] .timeline-bar')).to_be_hidden()
            page.evaluate("window.notReloaded = true")

            workers.start(concurrency=2)
            expect(page.locator("#step-a .step-meta .badge")).to_have_text("running")
            expect(page.locator("h1 .badge")).to_have_text("running")
            expect(page.locator("#step-a")).to_have_class("step card step-running")
            # The finished step's card came again from the server: its outputs and end time.
            expect(page.locator("#step-src .timings")).not_to_contain_text("finished —")
            expect(page.locator("#step-src .io")).to_contain_text('"from": "src"')
            bar = page.locator('.timeline-row[data-node="src"] .timeline-bar')
            expect(bar).to_be_visible()
            expect(bar).to_have_class("timeline-bar status-succeeded")
            expect(page.locator('.timeline-row[data-node="a"] .timeline-bar')).to_have_class(
                "timeline-bar status-running"
            )
            assert page.evaluate("window.notReloaded") is True  # all of it without a reload
            page.screenshot(path=screenshot_dir() / "running.png", full_page=True)

            # At the end, one reload: the finished run with its rerun buttons, no stream.
            expect(page.get_by_role("button", name="Rerun from start")).to_be_visible()
            expect(page.locator("h1 .badge")).to_have_text("succeeded")
            assert page.evaluate("window.notReloaded") is None
            assert page.locator("#run-live").count() == 0
            for step in ("src", "a", "b"):
                expect(page.locator(f"#step-{step} .step-meta .badge")).to_have_text("succeeded")
                expect(page.locator(f'.timeline-row[data-node="{step}"] .timeline-bar')).to_be_visible()
            page.screenshot(path=screenshot_dir() / "finished.png", full_page=True)
            assert not errors, errors
            connections.close_all()
            context.close()
            browser.close()
    finally:
        server.stop()
