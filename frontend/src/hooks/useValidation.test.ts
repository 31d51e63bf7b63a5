import { describe, expect, it } from "vitest";
import type { GraphError } from "../types";
import { groupProblems } from "./useValidation";

const error = (node: string | null, edge: number | null, message: string): GraphError => ({ node, edge, field: null, code: "x", message });

describe("problems", () => {
  it("go on their nodes and edges, and the rest are the graph's", () => {
    const p = groupProblems([error("a", null, "a1"), error(null, 2, "edge"), error("a", null, "a2"), error(null, null, "no steps")]);
    expect([...p.byNode.entries()].map(([id, es]) => [id, es.map((e) => e.message)])).toEqual([["a", ["a1", "a2"]]]);
    expect([...p.badEdges]).toEqual([2]);
    expect(p.ofGraph.map((e) => e.message)).toEqual(["edge", "no steps"]);
  });
});
