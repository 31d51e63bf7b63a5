"""The admin: every model's pages load for a superuser; versions and run state are read-only."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from workflows import engine, services
from workflows.models import Run, StepRun, Template, Workflow, WorkflowVersion
from workflows.tests import step_types  # noqa: F401 - registers test.source, test.echo, ...

GRAPH = {
    "schema": 1,
    "params": {},
    "nodes": [
        {"id": "src", "type": "test.source", "params": {}},
        {"id": "echo", "type": "test.echo", "params": {}},
    ],
    "edges": [{"source": "src", "source_port": "out", "target": "echo", "target_port": "in"}],
}
MODELS = (Workflow, WorkflowVersion, Run, StepRun, Template)


# Runs are written, never sent to a broker: these tests are about the pages and the admin.
pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("admin-root", password="pw-root-123")


@pytest.fixture
def data(superuser):
    workflow = services.workflow_create(owner=superuser, name="Admin flow", graph=GRAPH)
    services.version_save(workflow=workflow, author=superuser, graph=GRAPH, message="second")
    run = engine.run_start(workflow=workflow, user=superuser, symbol="AAPL")
    template = Template.objects.create(slug="admin-t", name="Admin template", description="", graph=GRAPH)
    return {
        Workflow: workflow,
        WorkflowVersion: workflow.versions.get(number=1),
        Run: run,
        StepRun: run.steps.first(),
        Template: template,
    }


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_load(client, superuser, data, model):
    client.force_login(superuser)
    assert client.get(_url(model, "changelist")).status_code == 200
    assert client.get(_url(model, "changelist"), {"q": "a"}).status_code == 200
    assert client.get(_url(model, "change", data[model].pk)).status_code == 200


def test_changelist_filters_load(client, superuser, data):
    client.force_login(superuser)
    for model, query in [
        (Workflow, {"owner__id__exact": superuser.pk}),
        (Run, {"status__exact": "pending", "trigger__exact": "manual", "created_at__year": data[Run].created_at.year}),
        (StepRun, {"status__exact": "queued", "step_type__exact": "test.source"}),
    ]:
        response = client.get(_url(model, "changelist"), query)
        assert response.status_code == 200, (model, query)
        assert response.context["cl"].result_count >= 1, (model, query)


def test_version_admin_is_read_only(client, superuser, data):
    version = data[WorkflowVersion]
    model_admin = admin.site._registry[WorkflowVersion]
    request = RequestFactory().get("/")
    request.user = superuser
    assert model_admin.has_change_permission(request, version) is False
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_delete_permission(request, version) is False
    assert model_admin.has_view_permission(request, version) is True

    client.force_login(superuser)
    assert client.get(_url(WorkflowVersion, "add")).status_code == 403
    assert client.post(_url(WorkflowVersion, "delete", version.pk), {"post": "yes"}).status_code == 403
    response = client.post(_url(WorkflowVersion, "change", version.pk), {"message": "rewritten"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.message == "Created"


def test_run_state_is_not_editable_in_admin(superuser, data):
    request = RequestFactory().get("/")
    request.user = superuser
    for model in (Run, StepRun):
        assert admin.site._registry[model].has_change_permission(request, data[model]) is False


def test_deleting_a_workflow_takes_its_versions(client, superuser, data):
    workflow = data[Workflow]
    client.force_login(superuser)
    response = client.post(_url(Workflow, "delete", workflow.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Workflow.objects.filter(pk=workflow.pk).exists()
    assert not WorkflowVersion.objects.filter(workflow_id=workflow.pk).exists()


def test_template_admin_rejects_an_invalid_graph(client, superuser, data):
    client.force_login(superuser)
    template = data[Template]
    form = {
        "name": "Admin template",
        "slug": "admin-t",
        "description": "",
        "position": "0",
        "graph": '{"schema": 1, "nodes": [{"id": "x", "type": "no.such.type"}], "edges": []}',
    }
    response = client.post(_url(Template, "change", template.pk), form)
    assert response.status_code == 200
    assert "unknown step type" in response.content.decode()
    template.refresh_from_db()
    assert template.graph == GRAPH
