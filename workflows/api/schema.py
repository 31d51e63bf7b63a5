"""The graph's one schema, as the outside sees it.

The pydantic models in workflows/graph.py are the truth. From them come:
- frontend/src/generated/graph.schema.json (JSON Schema 2020-12), written by
  `manage.py graph_schema`; the editor's TypeScript types (frontend/src/generated/graph.ts) are
  generated from that file by `npm run gen:types`. `make types` runs both.
- the OpenAPI components at /api/schema/ (GraphSpec, NodeSpec, EdgeSpec, RetrySpec,
  GraphErrorSpec), through the drf-spectacular extension below.

Tests fail when a committed file no longer matches the models (workflows/tests/test_graph_schema.py,
frontend/src/graphTypes.test.ts).
"""

import json
from pathlib import Path
from typing import Any

from drf_spectacular.contrib.pydantic import PydanticExtension
from drf_spectacular.plumbing import ResolvedComponent
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

from workflows.graph import EdgeSpec, GraphErrorSpec, GraphSpec, NodeSpec, RetrySpec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "frontend" / "src" / "generated" / "graph.schema.json"
MODELS: tuple[type[BaseModel], ...] = (GraphSpec, NodeSpec, EdgeSpec, RetrySpec, GraphErrorSpec)


class JsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field: the TypeScript generator would
    make each titled field a type of its own ("Source", "TimeoutS", ...)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class OpenApi30Schema(JsonSchema):
    """The same in OpenAPI 3.0's dialect, which has `nullable: true` instead of a null type."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return {"allOf": [inner], "nullable": True}
        return {**inner, "nullable": True}


def graph_json_schema() -> dict[str, Any]:
    """A graph is the document's root; the other graph models are under $defs, named as in Python."""
    _, top = models_json_schema([(m, "validation") for m in MODELS], schema_generator=JsonSchema)
    defs = top["$defs"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated from workflows/graph.py by `make types` (manage.py graph_schema). Do not edit.",
        **defs.pop(GraphSpec.__name__),
        "$defs": defs,
    }


def graph_json_schema_text() -> str:
    """The text of frontend/src/generated/graph.schema.json, exactly."""
    return json.dumps(graph_json_schema(), indent=2, ensure_ascii=False) + "\n"


class PydanticOpenApi30Extension(PydanticExtension):
    """drf-spectacular's pydantic support (`extend_schema(responses=Model)`,
    `extend_schema_field(Model)`), emitting OpenAPI 3.0 (the stock one writes `type: null`,
    which `spectacular --validate` rejects) and no field titles, like the serializers."""

    priority = 1

    def map_serializer(self, auto_schema, direction):
        schema = self.target.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization", schema_generator=OpenApi30Schema
        )
        for name, sub_schema in schema.pop("$defs", {}).items():
            component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=sub_schema)
            auto_schema.registry.register_on_missing(component)
        return schema
