import { describe, expect, it } from "vitest";
import { diffGraphs, diffIsEmpty, diffToFlow } from "./diff";
import type { Graph } from "./types";

const V1: Graph = {
  schema: 1,
  params: { bar_1: "1d" },
  nodes: [
    { id: "fetch", type: "market.fetch_bars", params: { symbol: "{{symbol}}", bar: "{{bar_1}}" }, position: { x: 0, y: 0 } },
    { id: "chart", type: "strategies.render_chart", params: { bars: 250 }, position: { x: 300, y: 0 } },
    { id: "old", type: "market.resample", params: { to: "1w" }, position: { x: 300, y: 200 } },
  ],
  edges: [
    { source: "fetch", source_port: "bars", target: "chart", target_port: "bars" },
    { source: "fetch", source_port: "bars", target: "old", target_port: "bars" },
  ],
};

const V2: Graph = {
  schema: 1,
  params: { bar_1: "1w", min_r: 2 },
  nodes: [
    { id: "fetch", type: "market.fetch_bars", params: { symbol: "{{symbol}}", bar: "{{bar_1}}" }, position: { x: 50, y: 50 } },
    { id: "chart", type: "strategies.render_chart", label: "Chart", params: { bars: 100, panels: ["rsi"] }, position: { x: 300, y: 0 } },
    { id: "new", type: "strategies.indicators", params: {}, position: { x: 300, y: 200 } },
  ],
  edges: [
    { source: "fetch", source_port: "bars", target: "chart", target_port: "bars" },
    { source: "fetch", source_port: "bars", target: "new", target_port: "bars" },
  ],
};

describe("diffGraphs", () => {
  const d = diffGraphs(V1, V2);

  it("finds nodes added and removed", () => {
    expect(d.nodesAdded.map((n) => n.id)).toEqual(["new"]);
    expect(d.nodesRemoved.map((n) => n.id)).toEqual(["old"]);
  });

  it("lists the changed params of a changed node, and ignores moves", () => {
    expect(d.nodesChanged).toEqual([
      {
        id: "chart",
        params: [
          { name: "bars", before: 250, after: 100 },
          { name: "panels", before: undefined, after: ["rsi"] },
        ],
        fields: [{ name: "label", before: "", after: "Chart" }],
      },
    ]);
  });

  it("finds edges added and removed, and workflow params changed", () => {
    expect(d.edgesAdded).toEqual([V2.edges[1]]);
    expect(d.edgesRemoved).toEqual([V1.edges[1]]);
    expect(d.paramsChanged).toEqual([
      { name: "bar_1", before: "1d", after: "1w" },
      { name: "min_r", before: undefined, after: 2 },
    ]);
  });

  it("is empty between equal graphs", () => {
    expect(diffIsEmpty(diffGraphs(V1, structuredClone(V1)))).toBe(true);
  });

  it("draws the newer graph plus what was removed, each marked", () => {
    const flow = diffToFlow(V1, V2, d);
    const marks = Object.fromEntries(flow.nodes.map((n) => [n.id, n.data.diff ?? null]));
    expect(marks).toEqual({ fetch: null, chart: "changed", new: "added", old: "removed" });
    expect(flow.nodes.find((n) => n.id === "chart")!.data.changedParams).toEqual(["bars", "panels", "label"]);
    expect(flow.edges.map((e) => [e.id, e.className ?? null])).toEqual([
      ["fetch.bars->chart.bars", null],
      ["fetch.bars->new.bars", "diff-added"],
      ["fetch.bars->old.bars", "diff-removed"],
    ]);
    expect(flow.nodes.every((n) => n.draggable === false && n.connectable === false)).toBe(true);
  });
});
