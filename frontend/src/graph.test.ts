import { describe, expect, it } from "vitest";
import {
  canonical,
  edgeId,
  flowToGraph,
  graphToFlow,
  nodeIdFor,
  parseGraph,
  pasteInto,
  subgraph,
  uniqueNodeId,
} from "./graph";
import type { Graph } from "./types";

// The shape of the gallery's templates (DESIGN §3).
const GRAPH: Graph = {
  schema: 1,
  params: { period_1: "1y", bar_1: "1d", min_r: 1.5 },
  nodes: [
    {
      id: "fetch_daily",
      type: "market.fetch_bars",
      label: "Daily bars",
      params: { symbol: "{{symbol}}", period: "{{period_1}}", bar: "{{bar_1}}" },
      retry: { max: 3, backoff_s: 5 },
      timeout_s: 60,
      position: { x: 0, y: 0 },
    },
    {
      id: "chart_daily",
      type: "strategies.render_chart",
      params: { overlays: ["sma_20", "bollinger"], bars: 250 },
      position: { x: 280, y: 40 },
    },
  ],
  edges: [{ source: "fetch_daily", source_port: "bars", target: "chart_daily", target_port: "bars" }],
};

describe("graph <-> React Flow", () => {
  it("turns each node into a step node with its params, ports as handles on edges", () => {
    const flow = graphToFlow(GRAPH);
    expect(flow.nodes).toHaveLength(2);
    expect(flow.nodes[0]).toMatchObject({
      id: "fetch_daily",
      type: "step",
      position: { x: 0, y: 0 },
      data: { stepType: "market.fetch_bars", label: "Daily bars", params: { period: "{{period_1}}" }, retry: { max: 3 }, timeout_s: 60 },
    });
    expect(flow.edges).toEqual([
      {
        id: "fetch_daily.bars->chart_daily.bars",
        source: "fetch_daily",
        sourceHandle: "bars",
        target: "chart_daily",
        targetHandle: "bars",
      },
    ]);
    expect(flow.params).toEqual(GRAPH.params);
  });

  it("round-trips to the same JSON", () => {
    const { nodes, edges, params } = graphToFlow(GRAPH);
    expect(flowToGraph(nodes, edges, params)).toEqual(GRAPH);
  });

  it("round-trips each node's step type version, and adds none where there was none", () => {
    const versioned: Graph = { ...GRAPH, nodes: [{ ...GRAPH.nodes[0], version: 2 }, GRAPH.nodes[1]] };
    const { nodes, edges, params } = graphToFlow(versioned);
    expect(nodes[0].data.version).toBe(2);
    const back = flowToGraph(nodes, edges, params);
    expect(back).toEqual(versioned);
    expect("version" in back.nodes[1]).toBe(false); // today's server refuses unknown node fields
    expect(parseGraph(JSON.parse(JSON.stringify(versioned)))).toEqual(versioned);
  });

  it("drops editor-only state (selection, sizes, errors, run status, upgrade) when saving", () => {
    const { nodes, edges, params } = graphToFlow(GRAPH);
    const decorated = nodes.map((n) => ({
      ...n,
      selected: true,
      measured: { width: 200, height: 90 },
      data: {
        ...n.data,
        errors: [{ node: n.id, edge: null, field: null, code: "x", message: "bad" }],
        status: "running",
        upgrade: { node: n.id, type: n.data.stepType, from_version: 1, to_version: 2 },
      },
    }));
    expect(flowToGraph(decorated, edges.map((e) => ({ ...e, selected: true })), params)).toEqual(GRAPH);
  });

  it("does not share param objects with the graph it came from", () => {
    const flow = graphToFlow(GRAPH);
    (flow.nodes[1].data.params.overlays as string[]).push("supertrend");
    expect(GRAPH.nodes[1].params.overlays).toEqual(["sma_20", "bollinger"]);
  });

  it("rounds positions and omits an empty label", () => {
    const { nodes, edges, params } = graphToFlow({
      ...GRAPH,
      nodes: [{ id: "a", type: "t", label: "", params: {}, position: { x: 10.6, y: -3.2 } }],
      edges: [],
    });
    expect(flowToGraph(nodes, edges, params).nodes).toEqual([{ id: "a", type: "t", params: {}, position: { x: 11, y: -3 } }]);
  });

  it("gives nodes without a position a place on a grid", () => {
    const flow = graphToFlow({ ...GRAPH, nodes: GRAPH.nodes.map(({ position: _p, ...n }) => n) });
    expect(flow.nodes.map((n) => n.position)).toEqual([
      { x: 0, y: 0 },
      { x: 280, y: 0 },
    ]);
  });

  it("parses untrusted JSON or says what is wrong", () => {
    expect(parseGraph(JSON.parse(JSON.stringify(GRAPH)))).toEqual(GRAPH);
    expect(parseGraph({ nodes: [] })).toEqual({ schema: 1, params: {}, nodes: [], edges: [] });
    expect(() => parseGraph([])).toThrow("JSON object");
    expect(() => parseGraph({ edges: [] })).toThrow('"nodes"');
    expect(() => parseGraph({ nodes: [], edges: {} })).toThrow('"edges"');
  });

  it("canonical text ignores key order", () => {
    expect(canonical({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] } })).toBe(canonical({ a: { c: [3, { e: 2, f: 1 }], d: 2 }, b: 1 }));
    expect(canonical([1, 2])).not.toBe(canonical([2, 1]));
  });
});

describe("node ids", () => {
  it("are made from the type's last name part, unique", () => {
    expect(nodeIdFor("strategies.render_chart", [])).toBe("render_chart");
    expect(nodeIdFor("strategies.render_chart", ["render_chart", "render_chart_2"])).toBe("render_chart_3");
    expect(uniqueNodeId("my step!", [])).toBe("my_step");
    expect(uniqueNodeId("", [])).toBe("step");
    expect(uniqueNodeId("x".repeat(100), []).length).toBeLessThanOrEqual(64);
  });
});

describe("copy and paste", () => {
  it("keeps a pasted node's step type version", () => {
    const graph: Graph = { ...GRAPH, nodes: [{ ...GRAPH.nodes[0], version: 3 }], edges: [] };
    const { graph: next } = pasteInto(graph, subgraph(graph, new Set(["fetch_daily"])));
    expect(next.nodes[1]).toMatchObject({ id: "fetch_daily_2", version: 3 });
  });

  it("copies the selected nodes with the edges between them, pastes them under new ids", () => {
    const clip = subgraph(GRAPH, new Set(["fetch_daily", "chart_daily"]));
    const { graph, pasted } = pasteInto(GRAPH, clip);
    expect(pasted).toEqual(["fetch_daily_2", "chart_daily_2"]);
    expect(graph.nodes).toHaveLength(4);
    expect(graph.nodes[2].position).toEqual({ x: 40, y: 40 });
    expect(graph.edges.map(edgeId)).toEqual([
      "fetch_daily.bars->chart_daily.bars",
      "fetch_daily_2.bars->chart_daily_2.bars",
    ]);
  });

  it("leaves out edges to nodes that were not copied", () => {
    expect(subgraph(GRAPH, new Set(["chart_daily"])).edges).toEqual([]);
  });
});
