// The document the editor edits: React Flow's nodes and edges plus the workflow's params.
// Every edit is a pure function from one document to the next, so the hooks only store and
// record results, and the edits can be tested without a browser.

import { edgeToFlow, flowToGraph, graphToFlow, nodeIdFor, nodeToFlow, pasteInto, subgraph, type FlowEdge, type StepFlowNode } from "./graph";
import type { Graph, GraphEdge, GraphNode, ParamValue, RetrySpec } from "./types";

export interface Doc {
  nodes: StepFlowNode[];
  edges: FlowEdge[];
  params: Record<string, ParamValue>;
}

export type NodeSettings = { label?: string; retry?: RetrySpec | undefined; timeout_s?: number | null };

export function emptyDoc(): Doc {
  return { nodes: [], edges: [], params: {} };
}

export function graphOf(doc: Doc): Graph {
  return flowToGraph(doc.nodes, doc.edges, doc.params);
}

/** A doc from a graph, keeping what React Flow measured and selected on nodes that stay
 * (undo must not make nodes jump or lose the selection); `select` chooses the selection instead. */
export function docOf(graph: Graph, previous?: Doc, select?: Set<string>): Doc {
  const flow = graphToFlow(graph);
  const before = new Map((previous?.nodes ?? []).map((n) => [n.id, n]));
  return {
    nodes: flow.nodes.map((n) => {
      const old = before.get(n.id);
      const selected = select ? select.has(n.id) : (old?.selected ?? false);
      return old?.measured ? { ...n, measured: old.measured, selected } : { ...n, selected };
    }),
    edges: flow.edges,
    params: flow.params,
  };
}

export function selectedIds(doc: Doc): Set<string> {
  return new Set(doc.nodes.filter((n) => n.selected).map((n) => n.id));
}

export function hasSelection(doc: Doc): boolean {
  return doc.nodes.some((n) => n.selected) || doc.edges.some((e) => e.selected);
}

function mapNode(doc: Doc, nodeId: string, change: (n: StepFlowNode) => StepFlowNode): Doc {
  return { ...doc, nodes: doc.nodes.map((n) => (n.id === nodeId ? change(n) : n)) };
}

/** Set one step parameter; `undefined` removes it (the type's default applies). */
export function withParam(doc: Doc, nodeId: string, field: string, value: unknown): Doc {
  return mapNode(doc, nodeId, (n) => {
    const params = { ...n.data.params };
    if (value === undefined) delete params[field];
    else params[field] = value;
    return { ...n, data: { ...n.data, params } };
  });
}

/** Label, retry and time-out; an undefined retry or a null time-out removes the setting. */
export function withNodeSettings(doc: Doc, nodeId: string, changes: NodeSettings): Doc {
  return mapNode(doc, nodeId, (n) => {
    const data = { ...n.data, ...changes };
    if ("retry" in changes && changes.retry === undefined) delete data.retry;
    if ("timeout_s" in changes && changes.timeout_s === null) delete data.timeout_s;
    return { ...n, data };
  });
}

/** Set one workflow parameter; `undefined` removes it. */
export function withWorkflowParam(doc: Doc, name: string, value: ParamValue | undefined): Doc {
  const params = { ...doc.params };
  if (value === undefined) delete params[name];
  else params[name] = value;
  return { ...doc, params };
}

/** A new step of `stepType` at `position`, the only one selected (so its form opens). Its
 * `version` is its type's current one, when the server gives type versions. */
export function withNewNode(doc: Doc, stepType: string, position: { x: number; y: number }, version?: number): Doc {
  const id = nodeIdFor(stepType, doc.nodes.map((n) => n.id));
  const graphNode: GraphNode = { id, type: stepType, params: {}, position };
  if (version !== undefined) graphNode.version = version;
  const node = { ...nodeToFlow(graphNode), selected: true };
  return { ...doc, nodes: [...doc.nodes.map((n) => ({ ...n, selected: false })), node] };
}

export function withEdge(doc: Doc, edge: GraphEdge): Doc {
  return { ...doc, edges: [...doc.edges, edgeToFlow(edge)] };
}

/** The selected nodes and edges removed, with the edges of removed nodes; null if nothing is selected. */
export function withoutSelection(doc: Doc): Doc | null {
  const ids = selectedIds(doc);
  const edges = doc.edges.filter((e) => !e.selected && !ids.has(e.source) && !ids.has(e.target));
  if (!ids.size && edges.length === doc.edges.length) return null;
  return { ...doc, nodes: doc.nodes.filter((n) => !ids.has(n.id)), edges };
}

export function withAllSelected(doc: Doc): Doc {
  return { ...doc, nodes: doc.nodes.map((n) => ({ ...n, selected: true })), edges: doc.edges.map((e) => ({ ...e, selected: true })) };
}

export function withOnlySelected(doc: Doc, nodeId: string): Doc {
  return { ...doc, nodes: doc.nodes.map((n) => ({ ...n, selected: n.id === nodeId })) };
}

/** What Copy puts on the clipboard: the selected nodes and the edges between them; null if none. */
export function clipOf(doc: Doc): Graph | null {
  const ids = selectedIds(doc);
  return ids.size ? subgraph(graphOf(doc), ids) : null;
}

/** Paste `clip` (the pasted nodes become the selection), and the clipboard to paste next: the
 * pasted copy, so the next paste lands further on instead of on top of this one. */
export function withPasted(doc: Doc, clip: Graph): { doc: Doc; clip: Graph } {
  const { graph, pasted } = pasteInto(graphOf(doc), clip);
  const ids = new Set(pasted);
  return { doc: docOf(graph, doc, ids), clip: subgraph(graph, ids) };
}
