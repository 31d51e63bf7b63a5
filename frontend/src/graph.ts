// Conversion between the stored graph JSON (DESIGN §3) and React Flow's nodes and edges.
// The JSON is the truth: what the server validates, versions and runs. React Flow state is
// derived from it on load and turned back into it for saving, validation and undo.

import type { Edge, Node } from "@xyflow/react";
import type { Graph, GraphEdge, GraphError, GraphNode, NodeUpgrade, ParamValue, RetrySpec } from "./types";

export const SCHEMA_VERSION = 1;

export type DiffMark = "added" | "removed" | "changed";

export interface StepNodeData extends Record<string, unknown> {
  stepType: string;
  label: string;
  params: Record<string, unknown>;
  retry?: RetrySpec;
  timeout_s?: number | null;
  version?: number; // the step type's version the params follow
  // Decorations, never saved:
  errors?: GraphError[];
  status?: string;
  diff?: DiffMark;
  changedParams?: string[];
  upgrade?: NodeUpgrade; // the server upgraded the params of the version loaded
}

export type StepFlowNode = Node<StepNodeData, "step">;
export type FlowEdge = Edge;

export function edgeId(e: GraphEdge): string {
  return `${e.source}.${e.source_port}->${e.target}.${e.target_port}`;
}

export function emptyGraph(): Graph {
  return { schema: SCHEMA_VERSION, params: {}, nodes: [], edges: [] };
}

/** A graph from untrusted JSON (an import, a stored version): the same shape or an error. */
export function parseGraph(raw: unknown): Graph {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error("A graph must be a JSON object");
  const g = raw as Record<string, unknown>;
  if (!Array.isArray(g.nodes)) throw new Error('A graph needs a "nodes" list');
  if (g.edges !== undefined && !Array.isArray(g.edges)) throw new Error('"edges" must be a list');
  if (g.params !== undefined && (typeof g.params !== "object" || g.params === null || Array.isArray(g.params)))
    throw new Error('"params" must be an object');
  return {
    schema: typeof g.schema === "number" ? g.schema : SCHEMA_VERSION,
    params: { ...((g.params as Record<string, ParamValue>) ?? {}) },
    nodes: (g.nodes as GraphNode[]).map((n) => ({ ...n, params: { ...(n.params ?? {}) } })),
    edges: ((g.edges as GraphEdge[]) ?? []).map((e) => ({ ...e })),
  };
}

export function nodeToFlow(n: GraphNode, index = 0): StepFlowNode {
  const data: StepNodeData = { stepType: n.type, label: n.label ?? "", params: structuredClone(n.params ?? {}) };
  if (n.retry !== undefined) data.retry = { ...n.retry };
  if (n.timeout_s !== undefined) data.timeout_s = n.timeout_s;
  if (n.version !== undefined && n.version !== null) data.version = n.version;
  return {
    id: n.id,
    type: "step",
    // A node without a stored position is put on a simple grid; auto-layout does better.
    position: n.position ? { x: n.position.x, y: n.position.y } : { x: (index % 6) * 280, y: Math.floor(index / 6) * 180 },
    data,
  };
}

export function edgeToFlow(e: GraphEdge): FlowEdge {
  return { id: edgeId(e), source: e.source, sourceHandle: e.source_port, target: e.target, targetHandle: e.target_port };
}

export function graphToFlow(graph: Graph): { nodes: StepFlowNode[]; edges: FlowEdge[]; params: Record<string, ParamValue> } {
  return {
    nodes: graph.nodes.map(nodeToFlow),
    edges: graph.edges.map(edgeToFlow),
    params: { ...graph.params },
  };
}

export function nodeFromFlow(n: StepFlowNode): GraphNode {
  const out: GraphNode = { id: n.id, type: n.data.stepType, params: structuredClone(n.data.params ?? {}) };
  if (n.data.label) out.label = n.data.label;
  if (n.data.retry !== undefined) out.retry = { ...n.data.retry };
  if (n.data.timeout_s !== undefined && n.data.timeout_s !== null) out.timeout_s = n.data.timeout_s;
  if (n.data.version !== undefined) out.version = n.data.version;
  out.position = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
  return out;
}

export function edgeFromFlow(e: FlowEdge): GraphEdge {
  return {
    source: e.source,
    source_port: e.sourceHandle ?? "",
    target: e.target,
    target_port: e.targetHandle ?? "",
  };
}

export function flowToGraph(nodes: StepFlowNode[], edges: FlowEdge[], params: Record<string, ParamValue>): Graph {
  return {
    schema: SCHEMA_VERSION,
    params: { ...params },
    nodes: nodes.map(nodeFromFlow),
    edges: edges.map(edgeFromFlow),
  };
}

/** A node id not yet used: "chart", then "chart_2", "chart_3", ... (ids match ^[A-Za-z0-9_-]{1,64}$). */
export function uniqueNodeId(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const clean = (base.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "step").slice(0, 56);
  if (!used.has(clean)) return clean;
  for (let i = 2; ; i++) {
    const id = `${clean}_${i}`;
    if (!used.has(id)) return id;
  }
}

/** The id a new node of a step type gets: the last part of its dotted name. */
export function nodeIdFor(stepType: string, taken: Iterable<string>): string {
  return uniqueNodeId(stepType.split(".").pop() ?? stepType, taken);
}

/** JSON text with object keys sorted, so two equal graphs give the same text. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/** Copy of the selected nodes and the edges between them, for the clipboard. */
export function subgraph(graph: Graph, ids: Set<string>): Graph {
  return {
    schema: graph.schema,
    params: {},
    nodes: graph.nodes.filter((n) => ids.has(n.id)),
    edges: graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target)),
  };
}

/** Paste a clipboard graph into another: nodes get fresh ids and are moved by `offset`. */
export function pasteInto(graph: Graph, clip: Graph, offset = 40): { graph: Graph; pasted: string[] } {
  const taken = new Set(graph.nodes.map((n) => n.id));
  const renamed = new Map<string, string>();
  const nodes = clip.nodes.map((n) => {
    const id = uniqueNodeId(n.id, taken);
    taken.add(id);
    renamed.set(n.id, id);
    const pos = n.position ?? { x: 0, y: 0 };
    return { ...structuredClone(n), id, position: { x: pos.x + offset, y: pos.y + offset } };
  });
  const edges = clip.edges.map((e) => ({ ...e, source: renamed.get(e.source)!, target: renamed.get(e.target)! }));
  return {
    graph: { ...graph, nodes: [...graph.nodes, ...nodes], edges: [...graph.edges, ...edges] },
    pasted: nodes.map((n) => n.id),
  };
}
