"""One graph schema: the pydantic models of workflows/graph.py describe graphs everywhere.

The committed JSON Schema (frontend/src/generated/graph.schema.json) must match the models (the
editor's TypeScript is generated from it; frontend/src/graphTypes.test.ts checks that step).
"""

import json

import pytest
from django.core.management import CommandError, call_command

from conftest import chain_graph, node
from workflows.api import schema
from workflows.graph import GraphErrorSpec, validate_graph
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
