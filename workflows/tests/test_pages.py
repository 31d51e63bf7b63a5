"""The server-rendered pages, through the HTTP client: owner, other user, anonymous, staff."""

import html
import re

import pytest
from django.urls import reverse

from conftest import stamped
from workflows import engine, services
from workflows.models import Run, RunStatus, Template, Trigger, Workflow
from workflows.tests import step_types  # noqa: F401 - registers test.source, test.echo, ...

GRAPH = {
    "schema": 1,
    "params": {"tag": "daily"},
    "nodes": [
        {"id": "src", "type": "test.source", "params": {"tag": "{{tag}}"}},
        {"id": "echo", "type": "test.echo", "params": {}},
    ],
    "edges": [{"source": "src", "source_port": "out", "target": "echo", "target_port": "in"}],
}


# Runs are written, never sent to a broker: these tests are about the pages and the admin.
pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("pages-owner", password="pw-owner-123")


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("pages-stranger", password="pw-stranger-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("pages-staff", password="pw-staff-123", is_staff=True)


@pytest.fixture
def workflow(owner) -> Workflow:
    return services.workflow_create(owner=owner, name="Two steps", graph=GRAPH, description="A test workflow")


@pytest.fixture
def run(workflow, owner) -> Run:
    return engine.run_start(workflow=workflow, user=owner, symbol="AAPL")


def page_urls(workflow: Workflow, run: Run) -> list[str]:
    return [
        reverse("workflow-list"),
        reverse("workflow-detail", args=[workflow.pk]),
        reverse("run-list"),
        reverse("run-detail", args=[run.pk]),
    ]


OBJECT_PAGES = ("workflow-detail", "run-detail")


def test_home_is_the_dashboard(client, owner):
    # The dashboard (strategies/pages.py, tested in strategies/tests/test_strategy_pages.py) replaced the redirect.
    client.force_login(owner)
    response = client.get("/")
    assert response.status_code == 200
    assert "<h1>Dashboard</h1>" in response.content.decode()


def test_owner_sees_every_page(client, owner, workflow, run):
    client.force_login(owner)
    for url in page_urls(workflow, run):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Two steps" in client.get(reverse("workflow-list")).content.decode()


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_other_user_gets_404(client, stranger, workflow, run, name):
    client.force_login(stranger)
    pk = workflow.pk if name == "workflow-detail" else run.pk
    assert client.get(reverse(name, args=[pk])).status_code == 404


def test_other_user_lists_do_not_show_others_rows(client, stranger, workflow, run):
    client.force_login(stranger)
    assert "Two steps" not in client.get(reverse("workflow-list")).content.decode()
    body = client.get(reverse("run-list")).content.decode()
    assert f"#{run.pk}<" not in body
    assert "AAPL" not in body


def test_other_user_cannot_act_on_others_objects(client, stranger, workflow, run):
    client.force_login(stranger)
    assert client.post(reverse("workflow-run", args=[workflow.pk]), {"symbol": "MSFT"}).status_code == 404
    assert client.post(reverse("version-restore", args=[workflow.pk, 1])).status_code == 404
    assert client.post(reverse("run-cancel", args=[run.pk])).status_code == 404
    assert client.post(reverse("run-rerun", args=[run.pk]), {"from_failed": "0"}).status_code == 404
    assert Run.objects.count() == 1


def test_anonymous_is_sent_to_login(client, workflow, run):
    login = reverse("login")
    for url in [*page_urls(workflow, run), "/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{login}?next="), url


def test_staff_sees_others_objects(client, staff, workflow, run):
    client.force_login(staff)
    for url in page_urls(workflow, run):
        assert client.get(url).status_code == 200, url
    body = client.get(reverse("workflow-list")).content.decode()
    assert "Two steps" in body and "pages-owner" in body


def test_login_page_renders_and_logs_in(client, owner):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    response = client.post(reverse("login"), {"username": "pages-owner", "password": "pw-owner-123"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")  # the dashboard


def test_nav_shows_admin_to_staff_only(client, owner, staff):
    client.force_login(owner)
    body = client.get(reverse("workflow-list")).content.decode()
    assert "/api/docs/" in body and reverse("admin:index") not in body
    assert 'action="/accounts/logout/"' in body
    client.force_login(staff)
    assert reverse("admin:index") in client.get(reverse("workflow-list")).content.decode()


@pytest.mark.parametrize(
    "name,args",
    [
        ("workflow-run", "workflow"),
        ("version-restore", "version"),
        ("template-use", "template"),
        ("run-cancel", "run"),
        ("run-rerun", "run"),
    ],
)
def test_actions_are_post_only(client, owner, workflow, run, name, args):
    template = Template.objects.create(slug="t", name="T", description="", graph=GRAPH)
    client.force_login(owner)
    url_args = {
        "workflow": [workflow.pk],
        "version": [workflow.pk, 1],
        "template": [template.pk],
        "run": [run.pk],
    }[args]
    assert client.get(reverse(name, args=url_args)).status_code == 405


def test_workflow_detail_shows_graph_versions_and_runs(client, owner, workflow, run):
    client.force_login(owner)
    body = client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode()
    assert "A test workflow" in body
    assert "test.source" in body and "test.echo" in body
    assert "src.out" in body and "echo.in" in body
    assert "{{tag}}" in body  # a parameter reference shows as written
    assert f"/api/workflows/{workflow.pk}/export/" in body
    assert reverse("run-detail", args=[run.pk]) in body
    assert "v1" in body


def test_template_use_creates_a_workflow_owned_by_the_user(client, owner):
    template = Template.objects.create(slug="two-steps", name="Two step template", description="Demo", graph=GRAPH)
    client.force_login(owner)
    assert "Use this template" in client.get(reverse("workflow-list")).content.decode()
    response = client.post(reverse("template-use", args=[template.pk]))
    workflow = Workflow.objects.get(name="Two step template")
    assert workflow.owner == owner
    assert workflow.versions.get().graph == stamped(GRAPH)
    assert response.status_code == 302
    assert response["Location"] == reverse("workflow-detail", args=[workflow.pk])


def test_template_use_with_an_invalid_graph_shows_the_error(client, owner):
    graph = {"schema": 1, "nodes": [{"id": "x", "type": "no.such.type"}], "edges": []}
    template = Template.objects.create(slug="broken", name="Broken", description="", graph=graph)
    client.force_login(owner)
    response = client.post(reverse("template-use", args=[template.pk]))
    assert response.status_code == 400
    assert "unknown step type" in response.content.decode()
    assert not Workflow.objects.exists()


def test_run_form_starts_a_run(client, owner, workflow):
    client.force_login(owner)
    response = client.post(reverse("workflow-run", args=[workflow.pk]), {"symbol": "msft"})
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("run-detail", args=[run.pk])
    assert (run.symbol, run.workflow, run.created_by, run.trigger) == ("MSFT", workflow, owner, Trigger.MANUAL)
    assert run.steps.count() == 2


def test_run_form_sent_twice_starts_one_run(client, owner, workflow):
    client.force_login(owner)
    page = client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)
    form = {"symbol": "MSFT", "idempotency_key": key}
    first = client.post(reverse("workflow-run", args=[workflow.pk]), form)
    again = client.post(reverse("workflow-run", args=[workflow.pk]), form, follow=True)  # a double click
    run = Run.objects.get()
    assert first["Location"] == reverse("run-detail", args=[run.pk])
    assert again.redirect_chain[0][0] == first["Location"]
    assert f"Run {run.pk} was already started by this form." in again.content.decode()
    # The same key asking for another symbol is refused, naming the key.
    other = client.post(reverse("workflow-run", args=[workflow.pk]), {**form, "symbol": "AAPL"})
    assert other.status_code == 400 and f"{key!r} was already used" in html.unescape(other.content.decode())
    assert Run.objects.count() == 1
    assert client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode().count(key) == 0  # a new key


def test_run_form_with_a_bad_symbol_shows_the_error(client, owner, workflow):
    client.force_login(owner)
    response = client.post(reverse("workflow-run", args=[workflow.pk]), {"symbol": "bad symbol!"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "is not a valid symbol" in body
    assert 'name="symbol"' in body  # the form is shown again
    assert not Run.objects.exists()


def test_run_detail_shows_steps_and_refreshes_while_running(client, owner, run):
    client.force_login(owner)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert body.index('id="step-src"') < body.index('id="step-echo"')
    assert 'http-equiv="refresh"' in body
    assert reverse("run-cancel", args=[run.pk]) in body
    assert reverse("run-rerun", args=[run.pk]) not in body


def test_cancel_then_cancel_again_shows_the_error(client, owner, run):
    client.force_login(owner)
    response = client.post(reverse("run-cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED

    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'http-equiv="refresh"' not in body
    assert "Rerun from start" in body and "Rerun from failed step" in body

    response = client.post(reverse("run-cancel", args=[run.pk]))
    assert response.status_code == 400
    assert "nothing to cancel" in response.content.decode()


@pytest.mark.parametrize("from_failed", [True, False])
def test_rerun_of_a_finished_run(client, owner, workflow, run, from_failed):
    engine.run_cancel(run=run)
    services.version_save(workflow=workflow, author=owner, graph=GRAPH, message="v2")
    client.force_login(owner)
    data = {"from_failed": "1" if from_failed else "0", "latest": "1"}
    response = client.post(reverse("run-rerun", args=[run.pk]), data)
    new = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("run-detail", args=[new.pk])
    assert (new.rerun_of, new.trigger, new.version.number, new.symbol) == (run, Trigger.RERUN, 2, "AAPL")


def test_rerun_of_a_running_run_shows_the_error(client, owner, run):
    client.force_login(owner)
    response = client.post(reverse("run-rerun", args=[run.pk]), {"from_failed": "0"})
    assert response.status_code == 400
    assert "still" in response.content.decode()
    assert Run.objects.count() == 1


def test_restore_creates_a_new_version(client, owner, workflow):
    graph_v2 = {**GRAPH, "params": {"tag": "weekly"}}
    services.version_save(workflow=workflow, author=owner, graph=graph_v2, message="weekly")
    client.force_login(owner)
    response = client.post(reverse("version-restore", args=[workflow.pk, 1]))
    assert response.status_code == 302
    latest = workflow.versions.order_by("-number").first()
    assert latest.number == 3
    assert latest.message == "Restored from v1"
    assert latest.restored_from.number == 1
    assert latest.graph == stamped(GRAPH)
    assert latest.author == owner
    body = client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode()
    assert "restored from v1" in body


def test_restore_of_a_missing_version_is_404(client, owner, workflow):
    client.force_login(owner)
    assert client.post(reverse("version-restore", args=[workflow.pk, 9])).status_code == 404


def test_run_list_filters(client, owner, workflow):
    other = services.workflow_create(owner=owner, name="Other flow", graph=GRAPH)
    a = engine.run_start(workflow=workflow, user=owner, symbol="AAPL")
    m = engine.run_start(workflow=other, user=owner, symbol="MSFT", trigger=Trigger.API)
    engine.run_cancel(run=m)
    client.force_login(owner)

    def shown(**params) -> set[int]:
        response = client.get(reverse("run-list"), params)
        assert response.status_code == 200
        return {r.pk for r in response.context["runs"]}

    assert shown() == {a.pk, m.pk}
    assert shown(status="cancelled") == {m.pk}
    assert shown(symbol="aapl") == {a.pk}
    assert shown(workflow=str(other.pk)) == {m.pk}
    assert shown(trigger="api") == {m.pk}
    assert shown(trigger="manual", symbol="MSFT") == set()
    assert shown(status="nonsense", workflow="x") == {a.pk, m.pk}  # unknown values are ignored


def test_run_list_is_paginated(client, owner, workflow):
    first = engine.run_start(workflow=workflow, user=owner, symbol="AAPL")
    for _ in range(50):
        engine.run_start(workflow=workflow, user=owner, symbol="AAPL")
    client.force_login(owner)
    page1 = client.get(reverse("run-list"), {"symbol": "AAPL"})
    assert len(page1.context["runs"]) == 50
    assert "symbol=AAPL&amp;page=2" in page1.content.decode()
    page2 = client.get(reverse("run-list"), {"symbol": "AAPL", "page": 2})
    assert [r.pk for r in page2.context["runs"]] == [first.pk]
