"""Versioned step types: a stored workflow version keeps validating and running after its step
type renames a parameter (bumps `version`, and `upgrade` maps the old params to the new).

Stored graphs: a node without `version` is version 1. Graphs from a client: a node without
`version` is for the type's current version. Stored rows are never changed."""

import copy

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import chain_graph, node
from strategies.services import StrategyInvalid, strategy_check
from workflows import engine, selectors, services
from workflows.editor import pages as editor_views
from workflows.errors import GraphInvalid
from workflows.graph import graph_upgrade, validate_graph
from workflows.models import RunStatus, StepRun, Template, WorkflowVersion
from workflows.registry import StepRegistry, StepType, registry
from workflows.tests.step_types import RenamedV1, RenamedV2, Versioned, records


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def deploy():
    """deploy(StepType): register it in place of the type of the same name, as a deploy of new
    code would. Everything is put back after the test."""
    before: dict[str, type[StepType] | None] = {}

    def install(step_type: type[StepType]) -> None:
        before.setdefault(step_type.name, registry.get(step_type.name))
        registry.unregister(step_type.name)
        registry.register(step_type)
        engine._graph_of.cache_clear()  # a new process would parse the graphs afresh

    yield install
    for name, step_type in before.items():
        registry.unregister(name)
        if step_type is not None:
            registry.register(step_type)
    engine._graph_of.cache_clear()


@pytest.fixture
def calls():
    Versioned.upgrade_calls.clear()
    return Versioned.upgrade_calls


def renamed_graph(value: str = "{{symbol}}-{{suffix}}") -> dict:
    return chain_graph(node("r", "test.renamed", old_name=value), params={"suffix": "x"})


# The registry


def test_registry_refuses_a_version_below_1_or_not_a_whole_number():
    local = StepRegistry()
    for bad in (0, -1, "2", 1.0, True, None):

        class Bad(StepType):
            name, label, category, version = "x.bad", "Bad", "x", bad

        with pytest.raises(ImproperlyConfigured, match="version"):
            local.register(Bad)
    assert local.get("x.bad") is None

    class Good(StepType):
        name, label, category = "x.good", "Good", "x"

    assert local.register(Good).version == 1
    assert Good.upgrade({"a": 1}, 1) == {"a": 1}  # the default upgrade changes nothing


def test_step_types_api_gives_each_version(api, user):
    api.force_authenticate(user)
    types = {t["name"]: t for t in api.get("/api/step-types/").json()}
    assert types["test.versioned"]["version"] == 3
    assert types["test.source"]["version"] == 1
    assert all(isinstance(t["version"], int) and t["version"] >= 1 for t in types.values())


# graph_upgrade


def test_chained_upgrade_calls_each_step_once_and_never_changes_its_input(calls):
    stored = chain_graph(node("v", "test.versioned", n=5))
    stored["nodes"][1]["version"] = 1
    original = copy.deepcopy(stored)
    upgraded, upgrades = graph_upgrade(stored)
    assert calls == [1, 2]
    assert upgraded["nodes"][1]["params"] == {"size": 5} and upgraded["nodes"][1]["version"] == 3
    assert upgraded["nodes"][0]["version"] == 1  # test.source: stamped, nothing to upgrade
    assert upgrades == [{"node": "v", "type": "test.versioned", "from_version": 1, "to_version": 3}]
    assert stored == original
    assert validate_graph(upgraded)[1] == []

    calls.clear()
    stored["nodes"][1].update(version=2, params={"count": 4})
    upgraded, upgrades = graph_upgrade(stored)
    assert calls == [2] and upgraded["nodes"][1]["params"] == {"size": 4}
    assert upgrades[0]["from_version"] == 2

    calls.clear()
    assert graph_upgrade(upgraded) == (upgraded, [])  # already current: nothing to do
    assert calls == []


def test_missing_version_is_1_when_stored_and_current_when_arriving(calls):
    stored = chain_graph(node("v", "test.versioned", n=5))  # stored before versions existed
    upgraded, upgrades = graph_upgrade(stored)
    assert upgraded["nodes"][1] == {"id": "v", "type": "test.versioned", "params": {"size": 5}, "version": 3}
    assert [u["from_version"] for u in upgrades] == [1]

    calls.clear()
    arriving = chain_graph(node("v", "test.versioned", size=5))  # a client writes for today's types
    upgraded, upgrades = graph_upgrade(arriving, arriving=True)
    assert upgraded["nodes"][1]["params"] == {"size": 5} and upgraded["nodes"][1]["version"] == 3
    assert upgrades == [] and calls == []

    # A client may still send an explicit older version (an old export): it is upgraded.
    old = chain_graph(node("v", "test.versioned", count=2))
    old["nodes"][1]["version"] = 2
    upgraded, upgrades = graph_upgrade(old, arriving=True)
    assert upgraded["nodes"][1]["params"] == {"size": 2} and len(upgrades) == 1


def test_a_node_newer_than_its_type_is_an_error_on_the_version_field(api, user):
    graph = chain_graph(node("v", "test.versioned", size=2))
    graph["nodes"][1]["version"] = 4
    upgraded, upgrades = graph_upgrade(graph)
    assert upgraded["nodes"][1]["version"] == 4 and upgrades == []
    _, errors = validate_graph(upgraded)
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("v", "version", "version_too_new")]
    assert 'Node "v": version 4 of "test.versioned"' in errors[0]["message"] and "version 3" in errors[0]["message"]

    api.force_authenticate(user)
    body = api.post("/api/graphs/validate/", {"graph": graph}, format="json").json()
    assert body["valid"] is False and body["errors"][0]["field"] == "version"
    response = api.post("/api/workflows/", {"name": "too new", "graph": graph}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["node"] == "v" and response.json()["errors"][0]["field"] == "version"


@pytest.mark.parametrize("version", [0, -1, "2", True, 1.5])
def test_a_version_that_is_not_a_whole_number_from_1_is_a_format_error(version):
    graph = chain_graph(node("v", "test.versioned", size=2))
    graph["nodes"][1]["version"] = version
    assert graph_upgrade(graph)[0]["nodes"][1]["version"] == version  # left for validation
    _, errors = validate_graph(graph)
    assert errors and errors[0]["node"] == "v" and errors[0]["field"] == "version"


def test_a_failed_upgrade_keeps_the_node_and_validation_says_why(calls):
    stored = chain_graph(node("v", "test.versioned", n=5, count=6))
    upgraded, upgrades = graph_upgrade(stored)
    assert upgrades == [] and upgraded["nodes"][1]["version"] == 1
    assert upgraded["nodes"][1]["params"] == {"n": 5, "count": 6}
    _, errors = validate_graph(upgraded)
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("v", "version", "version_outdated")]
    assert 'both "n" and "count" are given' in errors[0]["message"]


def test_an_old_node_that_was_not_upgraded_is_not_checked_against_todays_params():
    graph = chain_graph(node("v", "test.versioned", n=5))
    graph["nodes"][1]["version"] = 1
    _, errors = validate_graph(graph)  # a caller that forgot graph_upgrade
    assert [(e["code"], e["field"]) for e in errors] == [("version_outdated", "version")]
    assert "not upgraded" in errors[0]["message"]


# Saving: every graph stored from now on carries versions


def test_a_client_graph_without_versions_is_stored_with_each_current_version(api, user, calls):
    graph = chain_graph(node("v", "test.versioned", size=2))
    workflow = services.workflow_create(owner=user, name="wf", graph=graph)
    assert [n["version"] for n in workflow.versions.get().graph["nodes"]] == [1, 3]
    assert "version" not in graph["nodes"][1]  # the caller's dict is not changed

    api.force_authenticate(user)
    response = api.post(f"/api/workflows/{workflow.id}/versions/", {"graph": graph}, format="json")
    assert response.status_code == 201 and response.json()["upgrades"] == []
    assert [n["version"] for n in workflow.versions.get(number=2).graph["nodes"]] == [1, 3]
    assert calls == []  # nothing to upgrade on the way in

    template = services.template_upsert(slug="v", name="V", description="", graph=graph, position=0)
    assert [n["version"] for n in template.graph["nodes"]] == [1, 3]


# A parameter renamed by a deploy (the scenario this is for)


@pytest.mark.parametrize("legacy", [True, False], ids=["stored-before-versions", "stored-with-version-1"])
def test_a_renamed_param_keeps_a_stored_version_valid_and_running(eager_engine, api, client, user, deploy, legacy):
    deploy(RenamedV1)
    workflow = services.workflow_create(owner=user, name="wf", graph=renamed_graph())
    if legacy:  # a row written before step types had versions: no `version` anywhere
        WorkflowVersion.objects.filter(workflow=workflow).delete()
        WorkflowVersion.objects.create(workflow=workflow, number=1, graph=renamed_graph(), author=user)
    v1 = workflow.versions.get(number=1)
    assert v1.graph["nodes"][1].get("version") == (None if legacy else 1)
    stored = copy.deepcopy(v1.graph)

    deploy(RenamedV2)  # old_name -> new_name, version 2

    # (a) The stored version validates, upgraded, as everywhere it is read; so does a strategy on it.
    upgraded, upgrades = graph_upgrade(v1.graph)
    assert upgraded["nodes"][1]["params"] == {"new_name": "{{symbol}}-{{suffix}}"} and len(upgrades) == 1
    assert validate_graph(upgraded)[1] == []
    strategy = strategy_check(
        owner=user,
        name="s",
        workflow_id=workflow.id,
        version_number=1,
        symbols=["AAPL"],
        overrides={"suffix": "y"},
        ai_cost_budget_usd=None,
    )
    assert strategy["version"].number == 1
    with pytest.raises(StrategyInvalid, match="not a parameter"):
        strategy_check(
            owner=user,
            name="s",
            workflow_id=workflow.id,
            version_number=1,
            symbols=["AAPL"],
            overrides={"nope": 1},
            ai_cost_budget_usd=None,
        )

    # (b) The version API answers with the upgraded graph and says what was upgraded.
    api.force_authenticate(user)
    expected = [{"node": "r", "type": "test.renamed", "from_version": 1, "to_version": 2}]
    body = api.get(f"/api/workflows/{workflow.id}/versions/1/").json()
    assert body["graph"]["nodes"][1]["params"] == {"new_name": "{{symbol}}-{{suffix}}"}
    assert body["graph"]["nodes"][1]["version"] == 2 and body["graph"]["nodes"][0]["version"] == 1
    assert body["upgrades"] == expected
    assert api.get(f"/api/workflows/{workflow.id}/versions/").json()[0]["upgrades"] == expected
    exported = api.get(f"/api/workflows/{workflow.id}/export/").json()
    assert exported["graph"] == body["graph"]

    # (c) A run of the stored version executes with the value under the new name.
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL", version=v1)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    step = StepRun.objects.get(run=run, node_id="r")
    assert step.params == {"new_name": "AAPL-x"} and step.outputs == {"out": "AAPL-x"}
    assert [key for key, _ in records("renamed")] == ["AAPL-x"]
    rerun = engine.run_rerun(run=run, user=user, from_failed=False, latest=False)
    rerun.refresh_from_db()
    assert rerun.status == RunStatus.SUCCEEDED, rerun.error
    # The run page and the run API still show it.
    assert api.get(f"/api/runs/{run.id}/").json()["steps"][1]["params"] == {"new_name": "AAPL-x"}
    client.force_login(user)
    page = client.get(reverse("run-detail", args=[run.id]))
    assert page.status_code == 200 and "new_name" in page.content.decode()
    assert client.get(reverse("workflow-detail", args=[workflow.id])).status_code == 200

    # (d) The stored row is unchanged.
    assert WorkflowVersion.objects.get(id=v1.id).graph == stored

    # (e) Saving again stores version N+1 with `version: 2`; so do restore and import.
    response = api.post(f"/api/workflows/{workflow.id}/versions/", {"graph": body["graph"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 2 and response.json()["upgrades"] == []
    v2 = workflow.versions.get(number=2)
    assert v2.graph["nodes"][1]["version"] == 2 and v2.graph["nodes"][1]["params"] == {
        "new_name": "{{symbol}}-{{suffix}}"
    }
    restored = api.post(f"/api/workflows/{workflow.id}/versions/1/restore/").json()
    assert restored["number"] == 3 and workflow.versions.get(number=3).graph == v2.graph
    imported = api.post("/api/workflows/import/", exported, format="json")
    assert imported.status_code == 201, imported.content
    assert WorkflowVersion.objects.get(workflow_id=imported.json()["id"]).graph == v2.graph
    assert WorkflowVersion.objects.get(id=v1.id).graph == stored


def test_old_templates_clones_and_editor_drafts_are_upgraded(db, client, user, deploy, monkeypatch):
    deploy(RenamedV1)
    template = Template.objects.create(slug="old", name="Old", description="", graph=renamed_graph("kept"))
    workflow = services.workflow_create(owner=user, name="wf", graph=renamed_graph("kept"))
    deploy(RenamedV2)

    made = services.template_use(template=template, owner=user)
    node_ = made.versions.get().graph["nodes"][1]
    assert node_["params"] == {"new_name": "kept"} and node_["version"] == 2
    clone = services.workflow_clone(workflow=workflow, owner=user)
    assert clone.versions.get().graph == made.versions.get().graph
    assert Template.objects.get(pk=template.pk).graph == renamed_graph("kept")  # the row is unchanged

    monkeypatch.setattr(editor_views, "editor_bundle_ready", lambda: True)  # the page then embeds the draft
    client.force_login(user)
    body = client.get(reverse("workflow-new") + "?template=old").content.decode()
    assert "new_name" in body and "old_name" not in body


def test_a_client_graph_with_the_old_name_and_no_version_is_refused(db, user, deploy):
    # Without `version`, a client graph is for today's type: old_name is an unknown param.
    deploy(RenamedV2)
    with pytest.raises(GraphInvalid) as exc:
        services.workflow_create(owner=user, name="wf", graph=renamed_graph("{{suffix}}"))
    assert exc.value.errors[0]["node"] == "r" and exc.value.errors[0]["field"] == "old_name"
    graph = renamed_graph("{{suffix}}")
    graph["nodes"][1]["version"] = 1  # saying which version it was written for is enough
    workflow = services.workflow_create(owner=user, name="wf", graph=graph)
    assert workflow.versions.get().graph["nodes"][1]["params"] == {"new_name": "{{suffix}}"}


def test_an_export_from_before_step_versions_is_upgraded_on_import(deploy, user):
    # Format 1 was written before nodes carried versions: its nodes are version 1, as stored ones are.
    deploy(RenamedV2)
    document = {"format": "trading-workflow", "format_version": 1, "name": "Old export", "graph": renamed_graph("kept")}
    workflow = services.workflow_import(owner=user, document=document)
    [stored] = [n for n in workflow.versions.get().graph["nodes"] if n["id"] == "r"]
    assert stored["version"] == 2 and stored["params"] == {"new_name": "kept"}
    # Format 2 carries versions: a node without one is written for the current version.
    current = {**document, "format_version": 2, "graph": chain_graph(node("r", "test.renamed", new_name="kept"))}
    [stored] = [
        n
        for n in services.workflow_import(owner=user, document=current).versions.get().graph["nodes"]
        if n["id"] == "r"
    ]
    assert stored == {**stored, "version": 2, "params": {"new_name": "kept"}}
    assert selectors.workflow_export(workflow=workflow)["format_version"] == 2
