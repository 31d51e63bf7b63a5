"""Browser tests of the visual editor: Playwright for Python driving the OS Chromium (never a
downloaded browser), against the live server, with real Celery workers for the run.

Each stage saves a screenshot to var/screenshots/editor/<test>/ (or under $SCREENSHOTS_DIR) and
checks the DOM.
Without Chromium or without the built bundle these tests fail, saying what to install: they
are part of `make test`, never silently skipped.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from workflows.editor.pages import editor_bundle_ready
from workflows.models import Run, RunStatus, Workflow

pytestmark = [pytest.mark.browser, pytest.mark.worker]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 20_000
RUN_TIMEOUT_MS = 120_000


def chromium_path() -> str:
    path = os.environ.get("BROWSER_PATH") or shutil.which("chromium")
    if not path or not Path(path).exists():
        pytest.fail(
            "The browser tests need the OS Chromium: apt-get install chromium (or set BROWSER_PATH to a Chromium)",
            pytrace=False,
        )
    return path


@pytest.fixture
def screenshots(request) -> Path:
    """var/screenshots/editor/<test name>/, emptied first."""
    root = Path(os.environ.get("SCREENSHOTS_DIR") or settings.BASE_DIR / "var" / "screenshots")
    folder = root / "editor" / request.node.name.removeprefix("test_")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@pytest.fixture
def page(transactional_db, settings, monkeypatch):
    if not editor_bundle_ready():
        pytest.fail("The editor bundle static/dist/editor.js is not built: run `make frontend`", pytrace=False)
    # Playwright's sync API keeps an event loop on this thread; the ORM calls of this test are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server speaks plain HTTP, whatever DEBUG says.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # pytest-django's live server, for this test only: stopped (and its connections closed)
    # before the test database is dropped.
    server = LiveServer("localhost")
    with sync_playwright() as p:
        # Playwright gives the browser a fresh, empty profile of its own.
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1680, "height": 1050}, base_url=server.url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        # While Playwright's event loop runs, Django keeps this test's connections per async
        # context: close them here, or one stays open when the test database is dropped.
        connections.close_all()
        context.close()
        browser.close()
    server.stop()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    expect(page.locator(".topbar .username")).to_have_text(username)


def node(page: Page, node_id: str):
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def handle(page: Page, node_id: str, port: str, kind: str):
    return page.locator(f'.react-flow__handle.{kind}[data-nodeid="{node_id}"][data-handleid="{port}"]')


def drag_connection(page: Page, source, target, *, check_while_over=None) -> None:
    """Press on an output port, move to an input port in small steps, release (as a user does)."""
    a = source.bounding_box()
    b = target.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    if check_while_over:
        check_while_over()
    page.mouse.up()


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def test_build_version_diff_restore_and_run_in_the_editor(page: Page, workers, user, screenshots):
    call_command("load_templates", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    workers.start(concurrency=2)
    login(page, "alice", "pw-alice-123")

    # 1. The gallery: the product plan's four templates (and the intraday one), each previewed.
    page.goto("/templates/")
    cards = page.locator(".gallery-template")
    expect(cards).to_have_count(5)
    for slug in ("single-timeframe-ai", "daily-weekly-charts", "three-timeframes", "agent-team"):
        expect(page.locator(f'.gallery-template[data-template="{slug}"] .react-flow__node').first).to_be_visible()
    single = page.locator('.gallery-template[data-template="single-timeframe-ai"]')
    expect(single.locator(".react-flow__node")).to_have_count(8)
    shot(page, screenshots, "01-gallery")
    single.get_by_role("button", name="Use this template").click()

    page.wait_for_url(re.compile(r"/workflows/\d+/edit/$"))
    workflow = Workflow.objects.get(owner=user)
    editor = page.locator(".wf-editor")
    expect(editor).to_have_attribute("data-ready", "true")
    expect(editor).to_have_attribute("data-version", "1")
    expect(page.locator(".react-flow__node")).to_have_count(8)
    expect(page.locator(".react-flow__edge")).to_have_count(9)
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")
    shot(page, screenshots, "02-from-template")

    # 2. Drag a new chart step from the palette onto the canvas and connect it.
    item = page.locator('.wf-palette-item[data-step-type="strategies.render_chart"]')
    pane = page.locator(".react-flow__pane")
    box = pane.bounding_box()
    item.drag_to(pane, target_position={"x": box["width"] * 0.45, "y": box["height"] * 0.75})
    expect(node(page, "render_chart")).to_be_visible()
    # A port of another type is refused while dragging: the input is marked invalid and no edge is made.
    target_bars = handle(page, "render_chart", "bars", "target")

    def refused_while_over():
        expect(target_bars).to_have_class(re.compile(r"\bconnectingto\b"))
        expect(target_bars).not_to_have_class(re.compile(r"\bvalid\b"))

    drag_connection(
        page, handle(page, "indicators", "latest", "source"), target_bars, check_while_over=refused_while_over
    )
    expect(page.locator(".wf-notice")).to_contain_text("indicators.latest gives indicators")
    expect(page.locator(".react-flow__edge")).to_have_count(9)
    shot(page, screenshots, "03-refused-connection")
    drag_connection(page, handle(page, "indicators", "bars", "source"), target_bars)
    expect(page.locator('.react-flow__edge[data-id="indicators.bars->render_chart.bars"]')).to_have_count(1)
    expect(page.locator(".react-flow__edge")).to_have_count(10)
    expect(editor).to_have_attribute("data-dirty", "true")
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")  # validated again
    shot(page, screenshots, "04-dragged-and-connected")

    # 3. An invalid parameter: the server's validation error shows on the field and the node.
    node(page, "render_chart").click()
    panel = page.locator('.wf-param-panel[data-node="render_chart"]')
    expect(panel).to_be_visible()
    panel.locator("#field-bars").fill("5")
    field = panel.locator('.wf-field[data-field="bars"]')
    expect(field.locator(".wf-field-error")).to_contain_text("greater than or equal to 20")
    expect(field).to_have_class(re.compile(r"\binvalid\b"))
    expect(node(page, "render_chart").locator(".wf-node")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(node(page, "render_chart").locator(".wf-node-errors")).to_contain_text('field "bars"')
    shot(page, screenshots, "05-invalid-parameter")
    panel.locator("#field-bars").fill("120")
    expect(field.locator(".wf-field-error")).to_have_count(0)
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")

    # 4. Save: a new version with a message.
    page.fill('input[aria-label="Version message"]', "Second chart of the daily bars")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(editor).to_have_attribute("data-version", "2")
    expect(editor).to_have_attribute("data-dirty", "false")
    expect(page.locator(".wf-notice")).to_contain_text("Saved as v2")
    v2 = workflow.versions.get(number=2)
    assert v2.message == "Second chart of the daily bars" and v2.author == user
    chart2 = next(n for n in v2.graph["nodes"] if n["id"] == "render_chart")
    assert chart2["type"] == "strategies.render_chart" and chart2["params"] == {"bars": 120}
    shot(page, screenshots, "06-saved")

    # 5. Version 2 in the history, with author, date and message.
    page.locator('.wf-tabs [data-tab="versions"]').click()
    row = page.locator('.wf-version-list li[data-version="2"]')
    expect(row).to_contain_text("Second chart of the daily bars")
    expect(row).to_contain_text("alice")
    expect(page.locator(".wf-version-list li")).to_have_count(2)
    shot(page, screenshots, "07-history")

    # 6. The diff of v1 and v2 on the canvas: the added node and edge.
    page.select_option('select[name="diff-a"]', "1")
    page.select_option('select[name="diff-b"]', "2")
    page.get_by_role("button", name="Show diff").click()
    expect(editor).to_have_class(re.compile(r"\bdiff-mode\b"))
    expect(node(page, "render_chart").locator(".wf-node")).to_have_class(re.compile(r"\bdiff-added\b"))
    expect(page.locator(".wf-node.diff-removed, .wf-node.diff-changed")).to_have_count(0)
    expect(page.locator(".react-flow__edge.diff-added")).to_have_count(1)
    expect(page.locator('[data-testid="diff-list"] [data-diff-added="render_chart"]')).to_be_visible()
    shot(page, screenshots, "08-diff-v1-v2")

    # 7. Restore v1 as v3.
    page.locator('.wf-version-list [data-restore="1"]').click()
    expect(editor).to_have_attribute("data-version", "3")
    expect(editor).not_to_have_class(re.compile(r"\bdiff-mode\b"))
    expect(node(page, "render_chart")).to_have_count(0)
    expect(page.locator(".react-flow__node")).to_have_count(8)
    expect(page.locator('.wf-version-list li[data-version="3"]')).to_contain_text("Restored from v1")
    v3 = workflow.versions.get(number=3)
    assert v3.restored_from.number == 1 and v3.graph == workflow.versions.get(number=1).graph
    shot(page, screenshots, "09-restored-v1-as-v3")

    # 8. Run v3 from the editor and watch every node turn to succeeded.
    page.locator('.wf-tabs [data-tab="run"]').click()
    page.fill("#run-symbol", "IBM")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator(".wf-run-status")).to_be_visible()
    page.wait_for_function("document.querySelectorAll('.wf-node[data-status]:not([data-status=\"\"])').length === 8")
    shot(page, screenshots, "10-running")
    expect(page.locator('.wf-node[data-status="succeeded"]')).to_have_count(8, timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".wf-run-status")).to_have_attribute("data-run-status", "succeeded", timeout=TIMEOUT_MS)
    run = Run.objects.get(workflow=workflow)
    assert run.status == RunStatus.SUCCEEDED and run.version.number == 3 and run.symbol == "IBM", workers.logs()
    shot(page, screenshots, "11-run-succeeded")


def test_new_workflow_undo_redo_and_import_errors(page: Page, user, screenshots):
    login(page, "alice", "pw-alice-123")
    page.goto("/workflows/new/")
    editor = page.locator(".wf-editor")
    expect(editor).to_have_attribute("data-ready", "true")
    expect(page.locator('[data-testid="problems"]')).to_contain_text("no steps")

    # Double-click in the palette adds a step; its required field is reported on the field.
    page.fill('input[aria-label="Search steps"]', "fetch_bars")
    expect(page.locator(".wf-palette-item")).to_have_count(1)
    page.locator('.wf-palette-item[data-step-type="market.fetch_bars"]').dblclick()
    field = page.locator('.wf-field[data-field="symbol"]')
    expect(field.locator(".wf-field-error")).to_contain_text("Field required")
    page.fill("#field-symbol", "{{sym}}")
    expect(field.locator(".wf-field-error")).to_contain_text('parameter "{{sym}}" is not defined')
    page.fill("#field-symbol", "{{symbol}}")
    expect(field.locator(".wf-field-error")).to_have_count(0)
    shot(page, screenshots, "21-new-workflow")

    # Workflow parameters: bar_1 is offered, and the enum field can then refer to it.
    page.locator('.wf-tabs [data-tab="workflow"]').click()
    page.get_by_role("button", name="+ bar_1").click()
    expect(page.locator("#wparam-bar_1")).to_have_value("1d")
    page.locator('.wf-tabs [data-tab="step"]').click()
    page.select_option("#field-bar", "{{bar_1}}")
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")

    # Undo and redo from the keyboard (outside the form fields): bar, bar_1, symbol, the node.
    page.locator(".react-flow__pane").click()
    for _ in range(3):
        page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__node")).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__node")).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator(".react-flow__node")).to_have_count(1)
    for _ in range(3):
        page.keyboard.press("Control+y")
    node(page, "fetch_bars").click()
    expect(page.locator("#field-symbol")).to_have_value("{{symbol}}")
    expect(page.locator("#field-bar")).to_have_value("{{bar_1}}")
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")

    # Create stores version 1 and opens the workflow's own editor.
    page.fill('input[aria-label="Workflow name"]', "Fetch only")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/workflows/\d+/edit/$"))
    expect(editor).to_have_attribute("data-version", "1")
    workflow = Workflow.objects.get(owner=user, name="Fetch only")
    assert workflow.versions.get().graph["nodes"][0]["params"] == {"symbol": "{{symbol}}", "bar": "{{bar_1}}"}

    # Import: a file that is not JSON, then an export whose graph is invalid; both say why.
    files = page.locator('[data-testid="import-file"]')
    files.set_input_files({"name": "notes.json", "mimeType": "application/json", "buffer": b"{not json"})
    expect(page.locator('[data-testid="problem"]')).to_contain_text("notes.json is not JSON")
    bad = {
        "format": "trading-workflow",
        "format_version": 1,
        "name": "Bad",
        "graph": {"schema": 1, "nodes": [{"id": "x", "type": "no.such.type"}], "edges": []},
    }
    files.set_input_files({"name": "bad.json", "mimeType": "application/json", "buffer": json.dumps(bad).encode()})
    problem = page.locator('[data-testid="problem"]')
    expect(problem).to_contain_text("bad.json was not imported")
    expect(problem.locator("li").first).to_contain_text('unknown step type "no.such.type"')
    expect(page.locator('[data-testid="problems"]')).to_contain_text("No problems")  # the canvas is fine
    shot(page, screenshots, "22-import-errors")
    assert Workflow.objects.count() == 1


def test_a_node_upgraded_since_its_version_was_saved_shows_a_badge(page: Page, user, screenshots):
    from conftest import chain_graph
    from workflows import engine, services
    from workflows.registry import registry
    from workflows.tests.step_types import RenamedV1, RenamedV2

    renamed = {"id": "r", "type": "test.renamed", "params": {"old_name": "kept"}}
    registry.register(RenamedV1)
    try:
        workflow = services.workflow_create(owner=user, name="Saved before a deploy", graph=chain_graph(renamed))
        # A deploy renames the parameter (version 2, with its upgrade): the stored version says v1.
        registry.unregister("test.renamed")
        registry.register(RenamedV2)
        engine._graph_of.cache_clear()
        login(page, "alice", "pw-alice-123")
        page.goto(f"/workflows/{workflow.id}/edit/")
        badge = node(page, "r").locator(".wf-node-upgrade")
        expect(badge).to_have_text("upgraded v1→v2")
        expect(badge).to_have_attribute("title", re.compile("parameters were upgraded"))
        expect(node(page, "src").locator(".wf-node-upgrade")).to_have_count(0)
        shot(page, screenshots, "01-upgraded-badge")
        # Saving, with no other change, keeps the upgrade as a new version; the badge goes.
        page.get_by_role("button", name="Save", exact=True).click()
        expect(badge).to_have_count(0)
        latest = workflow.versions.order_by("-number").first()
        assert latest.number == 2
        [stored] = [n for n in latest.graph["nodes"] if n["id"] == "r"]
        assert stored["version"] == 2 and stored["params"] == {"new_name": "kept"}
        shot(page, screenshots, "02-saved-upgraded")
    finally:
        registry.unregister("test.renamed")
        engine._graph_of.cache_clear()
