"""The editor and gallery pages, through the HTTP client: owner, other user, anonymous, staff.

What the editor does in the browser is tested in test_editor_browser.py."""

import json
import re

import pytest
from django.urls import reverse

from conftest import stamped
from workflows import services
from workflows.editor import pages as editor_views
from workflows.models import Template, Workflow
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


@pytest.fixture
def workflow(user) -> Workflow:
    return services.workflow_create(owner=user, name="Editor test <b>", graph=GRAPH)


@pytest.fixture
def template(db) -> Template:
    return Template.objects.create(slug="two-steps", name="Two steps", description="Demo of two steps", graph=GRAPH)


@pytest.fixture
def bundle(monkeypatch):
    """The built bundle is there, whether or not this checkout has built it."""
    monkeypatch.setattr(editor_views, "editor_bundle_ready", lambda: True)


def mount(body: str) -> dict[str, str]:
    """The data attributes of the editor's mount element."""
    tag = re.search(r"<div id=\"workflow-editor\"(.*?)>", body, re.S).group(1)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))


def test_owner_gets_the_editor_mounted_with_ids_urls_and_csrf_token(client, user, workflow, bundle):
    client.force_login(user)
    response = client.get(reverse("workflow-edit", args=[workflow.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "dist/editor.js" in body and "dist/editor.css" in body and 'type="module"' in body
    attrs = mount(body)
    assert attrs["workflow-id"] == str(workflow.pk)
    assert attrs["workflow-name"] == "Editor test &lt;b&gt;"  # escaped
    assert attrs["api-base"] == "/api/"
    assert attrs["edit-url"] == "/workflows/0/edit/" and attrs["run-url"] == "/runs/0/"
    assert attrs["csrf-token"] and attrs["csrf-token"] == response.context["csrf_token"]
    assert "csrftoken" in response.cookies


def test_other_user_gets_404_and_staff_gets_the_editor(client, other_user, staff_user, workflow, bundle):
    client.force_login(other_user)
    assert client.get(reverse("workflow-edit", args=[workflow.pk])).status_code == 404
    client.force_login(staff_user)
    assert client.get(reverse("workflow-edit", args=[workflow.pk])).status_code == 200


def test_anonymous_is_sent_to_login(client, workflow, template):
    for url in [
        reverse("workflow-edit", args=[workflow.pk]),
        reverse("workflow-new"),
        reverse("gallery"),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{reverse('login')}?next="), url
    assert client.post(reverse("template-open", args=[template.pk])).status_code == 302
    assert list(Workflow.objects.all()) == [workflow]  # the template made nothing


def test_missing_bundle_shows_a_clear_message_not_a_blank_page(client, user, workflow, monkeypatch):
    monkeypatch.setattr(editor_views, "editor_bundle_ready", lambda: False)
    client.force_login(user)
    for url in (reverse("workflow-edit", args=[workflow.pk]), reverse("workflow-new"), reverse("gallery")):
        body = client.get(url).content.decode()
        assert "make frontend" in body and 'data-testid="editor-missing"' in body, url
        assert "<script" not in body, url


def test_bundle_ready_follows_the_built_files(settings, tmp_path):
    settings.STATICFILES_DIRS = [tmp_path]
    settings.STATIC_ROOT = tmp_path / "collected"
    assert editor_views.editor_bundle_ready() is False
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "editor.js").write_text("")
    assert editor_views.editor_bundle_ready() is False  # the CSS is missing
    (tmp_path / "dist" / "editor.css").write_text("")
    assert editor_views.editor_bundle_ready() is True


def test_new_workflow_is_a_blank_editor_or_a_template_draft(client, user, template, bundle):
    client.force_login(user)
    attrs = mount(client.get(reverse("workflow-new")).content.decode())
    assert attrs["workflow-id"] == "" and "initial-graph" not in attrs
    body = client.get(reverse("workflow-new") + "?template=two-steps").content.decode()
    attrs = mount(body)
    assert attrs["workflow-name"] == "Two steps" and attrs["initial-graph"] == "initial-graph"
    draft = re.search(r'<script id="initial-graph" type="application/json">(.*?)</script>', body, re.S).group(1)
    assert json.loads(draft) == stamped(GRAPH)
    assert client.get(reverse("workflow-new") + "?template=nope").status_code == 404
    assert not Workflow.objects.exists()  # nothing is stored before the user saves


def test_gallery_shows_each_template_with_a_preview_and_use(client, user, template, bundle):
    client.force_login(user)
    body = client.get(reverse("gallery")).content.decode()
    assert "Two steps" in body and "Demo of two steps" in body
    assert 'data-graph-preview data-graph="graph-two-steps"' in body
    preview = re.search(r'<script id="graph-two-steps" type="application/json">(.*?)</script>', body, re.S).group(1)
    assert json.loads(preview) == GRAPH
    assert reverse("template-open", args=[template.pk]) in body
    assert "Use this template" in body


def test_gallery_without_bundle_lists_the_steps(client, user, template, monkeypatch):
    monkeypatch.setattr(editor_views, "editor_bundle_ready", lambda: False)
    client.force_login(user)
    body = client.get(reverse("gallery")).content.decode()
    assert "src → echo" in body and "Use this template" in body


def test_use_this_template_creates_a_workflow_the_user_owns_and_opens_the_editor(client, user, template):
    client.force_login(user)
    response = client.post(reverse("template-open", args=[template.pk]))
    workflow = Workflow.objects.get()
    assert workflow.owner == user and workflow.name == "Two steps"
    assert workflow.versions.get().graph == stamped(GRAPH)
    assert response.status_code == 302 and response["Location"] == reverse("workflow-edit", args=[workflow.pk])
    assert client.get(reverse("template-open", args=[template.pk])).status_code == 405


def test_use_of_a_broken_template_says_why(client, user):
    broken = Template.objects.create(
        slug="broken", name="Broken", description="", graph={"schema": 1, "nodes": [{"id": "x", "type": "no.such"}]}
    )
    client.force_login(user)
    response = client.post(reverse("template-open", args=[broken.pk]), follow=True)
    assert "unknown step type" in response.content.decode()
    assert not Workflow.objects.exists()


def test_pages_link_to_the_editor_and_the_gallery(client, user, workflow):
    client.force_login(user)
    listing = client.get(reverse("workflow-list")).content.decode()
    assert reverse("workflow-edit", args=[workflow.pk]) in listing
    assert reverse("workflow-new") in listing and reverse("gallery") in listing
    detail = client.get(reverse("workflow-detail", args=[workflow.pk])).content.decode()
    assert reverse("workflow-edit", args=[workflow.pk]) in detail
