"""One graph schema: the pydantic models of workflows/graph.py describe graphs everywhere.

The committed JSON Schema (frontend/src/generated/graph.schema.json) must match the models (the
editor's TypeScript is generated from it; frontend/src/graphTypes.test.ts checks that step), and
the API schema (/api/schema/) describes graphs, validation answers and the 400 answer with them.
"""

import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from conftest import chain_graph, node
from workflows import services
from workflows.api import schema
from workflows.graph import GraphErrorSpec, GraphSpec, validate_graph
from workflows.management.commands import graph_schema

STALE = "frontend/src/generated/graph.schema.json does not match workflows/graph.py: run `make types`"


def test_the_committed_json_schema_matches_the_models():
    committed = schema.SCHEMA_FILE.read_text()
    assert json.loads(committed) == schema.graph_json_schema(), STALE
    assert committed == schema.graph_json_schema_text(), STALE


def test_the_json_schema_names_every_graph_model():
    document = schema.graph_json_schema()
    assert document["title"] == "GraphSpec" and document["required"] == ["nodes"]
    assert set(document["$defs"]) == {"NodeSpec", "EdgeSpec", "RetrySpec", "GraphErrorSpec"}
    node_spec = document["$defs"]["NodeSpec"]["properties"]
    # What the editor relies on: a position has x and y; params are any JSON object.
    assert node_spec["position"]["anyOf"][0]["required"] == ["x", "y"]
    assert node_spec["params"] == {"additionalProperties": True, "type": "object"}
    # No per-field titles: the TypeScript generator would make each one a type.
    assert "title" not in node_spec["id"]


def test_the_command_writes_and_checks_the_file(tmp_path, monkeypatch):
    target = tmp_path / "frontend" / "src" / "generated" / "graph.schema.json"
    monkeypatch.setattr(graph_schema, "ROOT", tmp_path)
    monkeypatch.setattr(graph_schema, "SCHEMA_FILE", target)
    with pytest.raises(CommandError, match="run `make types`"):
        call_command("graph_schema", "--check")
    call_command("graph_schema")
    assert target.read_text() == schema.graph_json_schema_text()
    call_command("graph_schema", "--check")
    target.write_text(target.read_text().replace('"maxItems": 500', '"maxItems": 50'))
    with pytest.raises(CommandError, match="run `make types`"):
        call_command("graph_schema", "--check")


def test_validation_errors_have_the_declared_shape():
    broken = {"nodes": [node("a", "no.such.type"), {"id": "bad id!", "type": "x"}], "edges": [{"source": "a"}]}
    _, errors = validate_graph(broken)
    _, more = validate_graph(chain_graph(node("a", "no.such.type")))
    assert errors and more
    for e in errors + more:
        assert GraphErrorSpec.model_validate(e).model_dump() == e


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_schema_describes_graphs(api, db):
    doc = api.get("/api/schema/", {"format": "json"}).json()
    components = doc["components"]["schemas"]
    assert {"GraphSpec", "NodeSpec", "EdgeSpec", "RetrySpec", "GraphErrorSpec"} <= set(components)
    assert components["NodeSpec"]["properties"]["retry"] == {"$ref": "#/components/schemas/RetrySpec"}
    # OpenAPI 3.0 has no null type: nullable fields say so.
    assert components["GraphErrorSpec"]["properties"]["node"] == {"type": "string", "nullable": True}

    validate = doc["paths"]["/api/graphs/validate/"]["post"]
    request = validate["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert components[request]["properties"]["graph"] == {"$ref": "#/components/schemas/GraphSpec"}
    answer = validate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert components[answer]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/GraphErrorSpec"}
    assert set(components[answer]["required"]) == {"valid", "errors"}

    save = doc["paths"]["/api/workflows/{id}/versions/"]["post"]
    invalid = save["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(components[invalid]["properties"]) == {"detail", "errors"}
    assert components["Version"]["properties"]["graph"]["allOf"] == [{"$ref": "#/components/schemas/GraphSpec"}]
    export = doc["paths"]["/api/workflows/{id}/export/"]["get"]["responses"]["200"]
    assert export["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WorkflowExport"}


def test_the_api_answers_as_its_schema_says(api, user, no_dispatch):
    workflow = services.workflow_create(owner=user, name="mine", graph=chain_graph())
    version = api.get(f"/api/workflows/{workflow.id}/versions/1/").json()
    GraphSpec.model_validate(version["graph"])
    exported = api.get(f"/api/workflows/{workflow.id}/export/").json()
    GraphSpec.model_validate(exported["graph"])
    assert set(exported) == {"format", "format_version", "name", "description", "version", "graph"}

    bad = chain_graph(node("a", "no.such.type"))
    answer = api.post("/api/graphs/validate/", {"graph": bad}, format="json").json()
    assert answer["valid"] is False and set(answer) == {"valid", "errors"}
    for e in answer["errors"]:
        GraphErrorSpec.model_validate(e)
    refused = api.post(f"/api/workflows/{workflow.id}/versions/", {"graph": bad}, format="json")
    assert refused.status_code == 400 and set(refused.json()) == {"detail", "errors"}
    for e in refused.json()["errors"]:
        GraphErrorSpec.model_validate(e)


def test_the_api_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
