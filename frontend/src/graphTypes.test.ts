// The committed graph types (generated/graph.ts) are what json-schema-to-typescript makes of the
// committed schema (generated/graph.schema.json). workflows/tests/test_graph_schema.py checks
// that schema against the pydantic models.
import { describe, expect, it } from "vitest";
import { committedTypes, graphTypes } from "../scripts/graph-types.mjs";

describe("generated graph types", () => {
  it("match the committed schema (else run `make types`)", async () => {
    expect(committedTypes(), "src/generated/graph.ts is stale: run `make types`").toBe(await graphTypes());
  });
});
