import { describe, expect, it } from "vitest";
import {
  clipOf,
  docOf,
  graphOf,
  hasSelection,
  withAllSelected,
  withEdge,
  withNewNode,
  withNodeSettings,
  withOnlySelected,
  withoutSelection,
  withParam,
  withPasted,
  withWorkflowParam,
  type Doc,
} from "./doc";
import { History } from "./history";
import type { Graph } from "./types";

const GRAPH: Graph = {
  schema: 1,
  params: { bar_1: "1d" },
  nodes: [
    { id: "fetch", type: "market.fetch_bars", params: { bar: "{{bar_1}}" }, position: { x: 0, y: 0 } },
    { id: "chart", type: "strategies.render_chart", params: { bars: 120 }, retry: { max: 2 }, timeout_s: 30, position: { x: 300, y: 0 } },
    { id: "notify", type: "notify.email", params: {}, position: { x: 600, y: 0 } },
  ],
  edges: [{ source: "fetch", source_port: "bars", target: "chart", target_port: "bars" }],
};

const select = (doc: Doc, ids: string[]): Doc => ({ ...doc, nodes: doc.nodes.map((n) => ({ ...n, selected: ids.includes(n.id) })) });
const node = (doc: Doc, id: string) => graphOf(doc).nodes.find((n) => n.id === id)!;

describe("document edits", () => {
  it("turn a graph into a doc and back unchanged", () => {
    expect(graphOf(docOf(GRAPH))).toEqual(GRAPH);
  });

  it("keep sizes and the selection of nodes that stay (undo must not make them jump)", () => {
    const before = { ...docOf(GRAPH), nodes: docOf(GRAPH).nodes.map((n) => ({ ...n, measured: { width: 200, height: 90 }, selected: n.id === "chart" })) };
    const after = docOf({ ...GRAPH, nodes: GRAPH.nodes.slice(1) }, before);
    expect(after.nodes.map((n) => [n.id, n.selected, n.measured?.width])).toEqual([
      ["chart", true, 200],
      ["notify", false, 200],
    ]);
    expect(docOf(GRAPH, before, new Set(["fetch"])).nodes.map((n) => n.selected)).toEqual([true, false, false]);
  });

  it("set and remove a step's parameter, leaving the others and the original alone", () => {
    const doc = docOf(GRAPH);
    const set = withParam(doc, "chart", "overlays", ["sma_20"]);
    expect(node(set, "chart").params).toEqual({ bars: 120, overlays: ["sma_20"] });
    expect(node(withParam(set, "chart", "bars", undefined), "chart").params).toEqual({ overlays: ["sma_20"] });
    expect(node(doc, "chart").params).toEqual({ bars: 120 });
    expect(node(set, "fetch")).toEqual(GRAPH.nodes[0]);
  });

  it("set a label, and remove retry and time-out", () => {
    const doc = withNodeSettings(docOf(GRAPH), "chart", { label: "Daily", retry: undefined, timeout_s: null });
    expect(node(doc, "chart")).toEqual({ id: "chart", type: "strategies.render_chart", label: "Daily", params: { bars: 120 }, position: { x: 300, y: 0 } });
    expect(node(withNodeSettings(docOf(GRAPH), "chart", { label: "x" }), "chart").retry).toEqual({ max: 2 });
  });

  it("set and remove a workflow parameter", () => {
    const doc = withWorkflowParam(docOf(GRAPH), "min_r", 1.5);
    expect(doc.params).toEqual({ bar_1: "1d", min_r: 1.5 });
    expect(withWorkflowParam(doc, "bar_1", undefined).params).toEqual({ min_r: 1.5 });
  });

  it("add a step under a fresh id, selected alone", () => {
    const doc = withNewNode(select(docOf(GRAPH), ["fetch"]), "strategies.render_chart", { x: 5, y: 6 });
    const last = (d: Doc) => d.nodes[d.nodes.length - 1];
    const added = last(doc);
    expect(added).toMatchObject({ id: "render_chart", selected: true, position: { x: 5, y: 6 }, data: { stepType: "strategies.render_chart", params: {} } });
    expect(doc.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["render_chart"]);
    expect(last(withNewNode(doc, "strategies.render_chart", { x: 0, y: 0 })).id).toBe("render_chart_2");
  });

  it("give a new step its type's version when the server has one, and none otherwise", () => {
    const versioned = withNewNode(docOf(GRAPH), "strategies.render_chart", { x: 0, y: 0 }, 2);
    expect(node(versioned, "render_chart").version).toBe(2);
    const plain = withNewNode(docOf(GRAPH), "strategies.render_chart", { x: 0, y: 0 });
    expect("version" in node(plain, "render_chart")).toBe(false);
  });

  it("connect two ports", () => {
    const doc = withEdge(docOf(GRAPH), { source: "chart", source_port: "chart", target: "notify", target_port: "chart" });
    expect(graphOf(doc).edges).toHaveLength(2);
    expect(doc.edges[1].id).toBe("chart.chart->notify.chart");
  });

  it("delete the selected nodes with their edges, or the selected edges; nothing selected is no edit", () => {
    const doc = docOf(GRAPH);
    expect(withoutSelection(doc)).toBeNull();
    const gone = withoutSelection(select(doc, ["fetch"]))!;
    expect(gone.nodes.map((n) => n.id)).toEqual(["chart", "notify"]);
    expect(gone.edges).toEqual([]);
    const edgeOnly = withoutSelection({ ...doc, edges: doc.edges.map((e) => ({ ...e, selected: true })) })!;
    expect(edgeOnly.nodes).toHaveLength(3);
    expect(edgeOnly.edges).toEqual([]);
  });

  it("select all, one, or say whether anything is selected", () => {
    const doc = docOf(GRAPH);
    expect(hasSelection(doc)).toBe(false);
    const all = withAllSelected(doc);
    expect(all.nodes.every((n) => n.selected) && all.edges.every((e) => e.selected)).toBe(true);
    expect(withOnlySelected(all, "chart").nodes.map((n) => n.selected)).toEqual([false, true, false]);
    expect(hasSelection({ ...doc, edges: doc.edges.map((e) => ({ ...e, selected: true })) })).toBe(true);
  });

  it("copy the selection, paste it selected and further on each time", () => {
    const doc = select(docOf(GRAPH), ["fetch", "chart"]);
    expect(clipOf(docOf(GRAPH))).toBeNull();
    const clip = clipOf(doc)!;
    expect(clip.nodes.map((n) => n.id)).toEqual(["fetch", "chart"]);
    const first = withPasted(doc, clip);
    expect(first.doc.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["fetch_2", "chart_2"]);
    expect(graphOf(first.doc).edges).toHaveLength(2);
    const second = withPasted(first.doc, first.clip);
    const again = second.doc.nodes.filter((n) => n.selected);
    expect(again.map((n) => [n.id, n.position])).toEqual([
      ["fetch_2_2", { x: 80, y: 80 }],
      ["chart_2_2", { x: 380, y: 80 }],
    ]);
  });
});

describe("edits as undo steps", () => {
  it("merge typing in one field into one step, and undo back to the start", () => {
    // As useDocument records them: a snapshot per edit, keyed by the field edited.
    const start = docOf(GRAPH);
    const history = new History<Graph>(graphOf(start));
    let doc = start;
    for (const bars of [1, 12, 120, 1200]) {
      doc = withParam(doc, "chart", "bars", bars);
      history.push(graphOf(doc), "param:chart:bars");
    }
    doc = withWorkflowParam(doc, "min_r", 2);
    history.push(graphOf(doc), "wparam:min_r");
    expect(node(docOf(history.undo()!, doc), "chart").params.bars).toBe(1200);
    expect(history.undo()).toEqual(GRAPH);
    expect(history.canUndo).toBe(false);
  });
});
