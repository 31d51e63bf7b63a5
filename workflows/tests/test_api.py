from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from conftest import chain_graph, edge, node
from workflows import engine, services
from workflows.models import Run, RunStatus, Template, Workflow


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def world(db, user, no_dispatch):
    workflow = services.workflow_create(owner=user, name="mine", graph=chain_graph(node("a", "test.echo")))
    services.version_save(workflow=workflow, author=user, graph=chain_graph(), message="smaller")
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    finished = engine.run_start(workflow=workflow, user=user, symbol="MSFT")
    engine.run_cancel(run=finished)
    template = Template.objects.create(slug="t", name="T", description="d", graph=chain_graph())
    return {"wf": workflow.id, "run": run.id, "done": finished.id, "tpl": template.slug}


def endpoints(w):
    """(method, url, body, expected status for the owner) for every endpoint on a user's objects."""
    wf, run, done = w["wf"], w["run"], w["done"]
    return [
        ("get", f"/api/workflows/{wf}/", None, 200),
        ("patch", f"/api/workflows/{wf}/", {"name": "renamed"}, 200),
        ("put", f"/api/workflows/{wf}/", {"name": "renamed", "description": "x"}, 200),
        ("get", f"/api/workflows/{wf}/versions/", None, 200),
        ("post", f"/api/workflows/{wf}/versions/", {"graph": chain_graph(), "message": "m"}, 201),
        ("get", f"/api/workflows/{wf}/versions/1/", None, 200),
        ("post", f"/api/workflows/{wf}/versions/1/restore/", None, 201),
        ("post", f"/api/workflows/{wf}/clone/", {}, 201),
        ("get", f"/api/workflows/{wf}/export/", None, 200),
        ("get", f"/api/runs/{run}/", None, 200),
        ("post", "/api/runs/", {"workflow": wf, "symbol": "IBM"}, 201),
        ("post", f"/api/runs/{run}/cancel/", None, 200),
        ("post", f"/api/runs/{done}/rerun/", {"start": "beginning"}, 201),
        ("delete", f"/api/workflows/{wf}/", None, 204),
    ]


def test_owner_can_use_every_endpoint(api, user, world):
    api.force_authenticate(user)
    for method, url, body, expected in endpoints(world):
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == expected, (method, url, response.content)


def test_staff_see_other_users_objects(api, staff_user, world):
    api.force_authenticate(staff_user)
    for method, url, body, expected in endpoints(world):
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == expected, (method, url, response.content)


def test_other_user_gets_404_and_changes_nothing(api, other_user, world):
    api.force_authenticate(other_user)
    for method, url, body, _ in endpoints(world):
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert Workflow.objects.get(id=world["wf"]).name == "mine"
    assert Run.objects.get(id=world["run"]).status == RunStatus.PENDING
    assert api.get("/api/workflows/").json()["results"] == []
    assert api.get("/api/runs/").json()["results"] == []


def test_anonymous_gets_403_everywhere(api, world):
    urls = [(m, u, b) for m, u, b, _ in endpoints(world)]
    urls += [
        ("get", "/api/workflows/", None),
        ("post", "/api/workflows/", {}),
        ("get", "/api/runs/", None),
        ("get", "/api/step-types/", None),
        ("post", "/api/graphs/validate/", {}),
        ("post", "/api/workflows/import/", {}),
        ("get", "/api/templates/", None),
        ("post", f"/api/templates/{world['tpl']}/use/", {}),
        ("get", "/api/schema/", None),
    ]
    for method, url, body in urls:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)


def test_collection_endpoints_for_a_user(api, user, world):
    api.force_authenticate(user)
    assert [w["name"] for w in api.get("/api/workflows/").json()["results"]] == ["mine"]
    assert {r["symbol"] for r in api.get("/api/runs/").json()["results"]} == {"AAPL", "MSFT"}
    types = {t["name"]: t for t in api.get("/api/step-types/").json()}
    assert types["test.typed"]["params_schema"]["properties"]["count"]["maximum"] == 10
    assert types["test.typed"]["inputs"] == [{"name": "in", "type": "bars", "description": "", "required": True}]
    assert api.get("/api/templates/").json()[0]["slug"] == "t"
    response = api.post(f"/api/templates/{world['tpl']}/use/", {"name": "from t"}, format="json")
    assert response.status_code == 201 and Workflow.objects.get(id=response.json()["id"]).owner == user
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200


def test_run_list_filters_and_paginates(api, user, world):
    api.force_authenticate(user)
    assert [r["symbol"] for r in api.get("/api/runs/?status=cancelled").json()["results"]] == ["MSFT"]
    assert [r["symbol"] for r in api.get("/api/runs/?symbol=aapl").json()["results"]] == ["AAPL"]
    assert api.get(f"/api/runs/?workflow={world['wf']}").json()["count"] == 2
    assert api.get("/api/runs/?workflow=999999").json()["count"] == 0
    bad = api.get("/api/runs/?status=exploded")
    assert bad.status_code == 400 and "status" in bad.json()
    assert api.get("/api/runs/?created_after=not-a-date").status_code == 400
    page = api.get("/api/runs/?page=1").json()
    assert set(page) == {"count", "next", "previous", "results"}


def test_run_detail_has_its_steps(api, user, world):
    api.force_authenticate(user)
    detail = api.get(f"/api/runs/{world['run']}/").json()
    assert [s["node_id"] for s in detail["steps"]] == ["src"]
    assert detail["params"] == {"symbol": "AAPL"} and detail["version"] == 2


INVALID = [
    (chain_graph(node("x", "test.nope")), "x", "type", "unknown step type"),
    (
        {
            "schema": 1,
            "nodes": [node("b", "test.bars"), node("t", "test.typed", count=0)],
            "edges": [edge("b", "t", "bars", "in")],
        },
        "t",
        "count",
        'Node "t", field "count"',
    ),
    (chain_graph(node("a", "test.echo", tag="{{ghost}}")), "a", "tag", '"{{ghost}}" is not defined'),
    (chain_graph(node("order", "test.order")), "order", None, "downstream of a risk check"),
]


@pytest.mark.parametrize(("graph", "bad_node", "field", "text"), INVALID)
def test_invalid_graphs_get_400_naming_node_and_field(api, user, world, graph, bad_node, field, text):
    api.force_authenticate(user)
    for url, body in [
        ("/api/workflows/", {"name": "n", "graph": graph}),
        (f"/api/workflows/{world['wf']}/versions/", {"graph": graph}),
        ("/api/graphs/validate/", {"graph": graph}),
    ]:
        response = api.post(url, body, format="json")
        payload = response.json()
        if url.endswith("validate/"):
            assert response.status_code == 200 and payload["valid"] is False
        else:
            assert response.status_code == 400, response.content
            assert text in payload["detail"]
        first = payload["errors"][0]
        assert (first["node"], first["field"]) == (bad_node, field) and text in first["message"]
    assert Workflow.objects.count() == 1 and Workflow.objects.get().versions.count() == 2


@pytest.mark.parametrize(
    ("url", "body", "text"),
    [
        ("/api/runs/", {"workflow": "WF", "symbol": "BAD SYMBOL!"}, "not a valid symbol"),
        ("/api/runs/", {"workflow": "WF", "symbol": "AAPL", "overrides": {"bad name": 1}}, "not a valid name"),
        ("/api/runs/", {"workflow": "WF", "symbol": "AAPL", "overrides": {"x": [1]}}, "must be text, a number"),
        ("/api/runs/", {"symbol": "AAPL"}, "workflow"),
        ("/api/runs/DONE/cancel/", None, "nothing to cancel"),
        ("/api/runs/RUN/rerun/", {}, "still pending"),
        ("/api/runs/DONE/rerun/", {"start": "middle"}, "start"),
        ("/api/workflows/import/", {"format": "zip"}, "not a workflow export"),
        ("/api/workflows/import/", ["a list"], "JSON object"),
        ("/api/workflows/", {"name": "", "graph": {}}, "name"),
        ("/api/workflows/", {"name": "x", "graph": "nope"}, "The workflow graph is invalid"),
        ("/api/workflows/WF/export/?version=abc", None, "whole number"),
    ],
)
def test_bad_input_gets_a_clear_400(api, user, world, url, body, text):
    api.force_authenticate(user)
    url = url.replace("WF", str(world["wf"])).replace("DONE", str(world["done"])).replace("RUN", str(world["run"]))
    if body and isinstance(body, dict) and body.get("workflow") == "WF":
        body["workflow"] = world["wf"]
    response = api.get(url) if "export" in url else api.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert text in response.content.decode()


def test_export_then_import_round_trips(api, user, world):
    api.force_authenticate(user)
    exported = api.get(f"/api/workflows/{world['wf']}/export/?version=1").json()
    assert exported["format"] == "trading-workflow" and exported["version"] == 1
    response = api.post("/api/workflows/import/", exported, format="json")
    assert response.status_code == 201
    imported = Workflow.objects.get(id=response.json()["id"])
    assert imported.versions.get().graph == Workflow.objects.get(id=world["wf"]).versions.get(number=1).graph


def test_versions_have_no_update_or_delete(api, user, world):
    api.force_authenticate(user)
    url = f"/api/workflows/{world['wf']}/versions/1/"
    assert api.put(url, {"graph": chain_graph()}, format="json").status_code == 405
    assert api.patch(url, {"message": "x"}, format="json").status_code == 405
    assert api.delete(url).status_code == 405


@pytest.mark.parametrize("value", ["99999999999999999999", "²", "-1", "1e3"])
def test_odd_numbers_in_query_strings_are_400_or_ignored_never_500(api, client, user, world, value):
    api.force_authenticate(user)
    assert api.get(f"/api/runs/?workflow={value}").status_code == 400
    assert api.get(f"/api/workflows/{world['wf']}/export/?version={value}").status_code == 400
    assert api.post("/api/runs/", {"workflow": value, "symbol": "AAPL"}, format="json").status_code in (400, 404)
    client.force_login(user)
    assert client.get(f"/runs/?workflow={value}").status_code == 200


def test_graph_size_and_nesting_limits_are_400(api, user, world):
    api.force_authenticate(user)
    deep: list = ["x"]
    for _ in range(500):
        deep = [deep]
    graph = chain_graph(node("a", "test.echo", tag=deep))
    response = api.post("/api/workflows/", {"name": "deep", "graph": graph}, format="json")
    assert response.status_code == 400 and "at most 8 levels deep" in response.json()["detail"]
    huge = {"schema": 1, "nodes": [node(f"n{i}", "test.source") for i in range(501)], "edges": []}
    response = api.post("/api/graphs/validate/", {"graph": huge}, format="json")
    assert response.status_code == 200 and "at most 500" in response.json()["errors"][0]["message"]


def test_absurdly_nested_json_is_a_400(api, user, world):
    api.force_authenticate(user)
    body = '{"graph": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api.post("/api/graphs/validate/", body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_create_takes_every_setting_the_schema_documents(client, user):
    # Found by fuzzing the OpenAPI schema: these fields were documented on create, and answered 500.
    client.force_login(user)
    body = {
        "name": "Budgeted",
        "graph": chain_graph(),
        "ai_token_budget": 5000,
        "ai_cost_budget_usd": "1.50",
        "live_trading": False,
    }
    response = client.post("/api/workflows/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    workflow = Workflow.objects.get(id=response.json()["id"])
    assert (workflow.ai_token_budget, workflow.ai_cost_budget_usd) == (5000, Decimal("1.50"))
    assert workflow.versions.count() == 1
    refused = client.post("/api/workflows/", {**body, "ai_cost_budget_usd": "-1"}, content_type="application/json")
    assert refused.status_code == 400
    assert Workflow.objects.filter(name="Budgeted").count() == 1  # nothing half-made by the refusal
