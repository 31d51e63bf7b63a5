import { describe, expect, it } from "vitest";
import { checkConnection, portTypesMatch } from "./ports";
import type { GraphEdge, StepTypeDef } from "./types";

function type(name: string, inputs: [string, string][], outputs: [string, string][]): StepTypeDef {
  return {
    name,
    label: name,
    category: "test",
    description: "",
    params_schema: {},
    inputs: inputs.map(([n, t]) => ({ name: n, type: t, description: "", required: true })),
    outputs: outputs.map(([n, t]) => ({ name: n, type: t, description: "", required: true })),
  };
}

const TYPES = new Map(
  [
    type("market.fetch_bars", [], [["bars", "bars"]]),
    type("strategies.render_chart", [["bars", "bars"]], [["chart", "chart"]]),
    type("ai.analyze_chart", [["chart", "chart"]], [["analysis", "analysis"]]),
    type("flow.approval", [["item", "any"]], [["item", "any"]]),
  ].map((t) => [t.name, t]),
);

const NODES = [
  { id: "fetch", stepType: "market.fetch_bars" },
  { id: "chart", stepType: "strategies.render_chart" },
  { id: "analysis", stepType: "ai.analyze_chart" },
  { id: "approve", stepType: "flow.approval" },
];

const conn = (source: string, sourceHandle: string, target: string, targetHandle: string) => ({ source, sourceHandle, target, targetHandle });

describe("port types", () => {
  it("match when equal, or when either is any", () => {
    expect(portTypesMatch("bars", "bars")).toBe(true);
    expect(portTypesMatch("bars", "chart")).toBe(false);
    expect(portTypesMatch("any", "chart")).toBe(true);
    expect(portTypesMatch("bars", "any")).toBe(true);
  });
});

describe("checkConnection", () => {
  it("accepts matching ports", () => {
    expect(checkConnection(conn("fetch", "bars", "chart", "bars"), NODES, [], TYPES)).toEqual({ ok: true });
    expect(checkConnection(conn("chart", "chart", "approve", "item"), NODES, [], TYPES)).toEqual({ ok: true });
    expect(checkConnection(conn("approve", "item", "analysis", "chart"), NODES, [], TYPES)).toEqual({ ok: true });
  });

  it("refuses ports whose types differ, saying which", () => {
    const check = checkConnection(conn("fetch", "bars", "analysis", "chart"), NODES, [], TYPES);
    expect(check).toEqual({ ok: false, reason: "fetch.bars gives bars, analysis.chart takes chart" });
  });

  it("refuses ports that do not exist, and a step feeding itself", () => {
    expect(checkConnection(conn("fetch", "nope", "chart", "bars"), NODES, [], TYPES).ok).toBe(false);
    expect(checkConnection(conn("fetch", "bars", "chart", "nope"), NODES, [], TYPES).ok).toBe(false);
    expect(checkConnection(conn("approve", "item", "approve", "item"), NODES, [], TYPES).ok).toBe(false);
    expect(checkConnection(conn("ghost", "bars", "chart", "bars"), NODES, [], TYPES).ok).toBe(false);
    expect(checkConnection({ source: null, target: "chart" }, NODES, [], TYPES).ok).toBe(false);
  });

  it("refuses a second edge into one input", () => {
    const edges: GraphEdge[] = [{ source: "fetch", source_port: "bars", target: "chart", target_port: "bars" }];
    const check = checkConnection(conn("approve", "item", "chart", "bars"), NODES, edges, TYPES);
    expect(check).toEqual({ ok: false, reason: "Input chart.bars is already connected" });
  });

  it("refuses a connection that closes a cycle", () => {
    const nodes = [
      { id: "a1", stepType: "flow.approval" },
      { id: "a2", stepType: "flow.approval" },
    ];
    const edges: GraphEdge[] = [{ source: "a1", source_port: "item", target: "a2", target_port: "item" }];
    expect(checkConnection(conn("a2", "item", "a1", "item"), nodes, edges, TYPES)).toEqual({
      ok: false,
      reason: "That connection would make a cycle; a workflow flows one way",
    });
  });
});
