// The difference between two versions of a graph: nodes added, removed or changed (with the
// changed params), edges added and removed, workflow parameters changed. Node positions are
// not changes: moving a box changes nothing a run does.

import { canonical, edgeId, edgeToFlow, nodeToFlow, type FlowEdge, type StepFlowNode } from "./graph";
import type { Graph, GraphEdge, GraphNode } from "./types";

export interface ValueChange {
  name: string;
  before: unknown;
  after: unknown;
}

export interface NodeChange {
  id: string;
  params: ValueChange[]; // the node's step parameters
  fields: ValueChange[]; // type, label, retry, timeout_s
}

export interface GraphDiff {
  nodesAdded: GraphNode[];
  nodesRemoved: GraphNode[];
  nodesChanged: NodeChange[];
  edgesAdded: GraphEdge[];
  edgesRemoved: GraphEdge[];
  paramsChanged: ValueChange[]; // workflow-level parameters
}

function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function changes(before: Record<string, unknown>, after: Record<string, unknown>): ValueChange[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names
    .filter((name) => !same(before[name], after[name]))
    .map((name) => ({ name, before: before[name], after: after[name] }));
}

export function diffGraphs(a: Graph, b: Graph): GraphDiff {
  const aNodes = new Map(a.nodes.map((n) => [n.id, n]));
  const bNodes = new Map(b.nodes.map((n) => [n.id, n]));
  const nodesChanged: NodeChange[] = [];
  for (const [id, after] of bNodes) {
    const before = aNodes.get(id);
    if (!before) continue;
    const params = changes(before.params ?? {}, after.params ?? {});
    const fields = changes(
      { type: before.type, label: before.label ?? "", retry: before.retry ?? null, timeout_s: before.timeout_s ?? null },
      { type: after.type, label: after.label ?? "", retry: after.retry ?? null, timeout_s: after.timeout_s ?? null },
    );
    if (params.length || fields.length) nodesChanged.push({ id, params, fields });
  }
  const aEdges = new Set(a.edges.map(edgeId));
  const bEdges = new Set(b.edges.map(edgeId));
  return {
    nodesAdded: b.nodes.filter((n) => !aNodes.has(n.id)),
    nodesRemoved: a.nodes.filter((n) => !bNodes.has(n.id)),
    nodesChanged,
    edgesAdded: b.edges.filter((e) => !aEdges.has(edgeId(e))),
    edgesRemoved: a.edges.filter((e) => !bEdges.has(edgeId(e))),
    paramsChanged: changes(a.params ?? {}, b.params ?? {}),
  };
}

export function diffIsEmpty(d: GraphDiff): boolean {
  return (
    !d.nodesAdded.length &&
    !d.nodesRemoved.length &&
    !d.nodesChanged.length &&
    !d.edgesAdded.length &&
    !d.edgesRemoved.length &&
    !d.paramsChanged.length
  );
}

/** What the canvas draws for a diff: the newer graph, plus the removed nodes and edges of the
 * older one, each marked so it can be coloured. */
export function diffToFlow(a: Graph, b: Graph, d: GraphDiff): { nodes: StepFlowNode[]; edges: FlowEdge[] } {
  const added = new Set(d.nodesAdded.map((n) => n.id));
  const changed = new Map(d.nodesChanged.map((c) => [c.id, c]));
  const nodes = b.nodes.map((n, i) => {
    const flow = nodeToFlow(n, i);
    if (added.has(n.id)) flow.data.diff = "added";
    const change = changed.get(n.id);
    if (change) {
      flow.data.diff = "changed";
      flow.data.changedParams = [...change.params.map((p) => p.name), ...change.fields.map((f) => f.name)];
    }
    return flow;
  });
  for (const n of d.nodesRemoved) {
    const flow = nodeToFlow(n, a.nodes.indexOf(n));
    flow.data.diff = "removed";
    nodes.push(flow);
  }
  const addedEdges = new Set(d.edgesAdded.map(edgeId));
  const edges: FlowEdge[] = b.edges.map((e) => {
    const flow = edgeToFlow(e);
    if (addedEdges.has(flow.id)) flow.className = "diff-added";
    return flow;
  });
  for (const e of d.edgesRemoved) edges.push({ ...edgeToFlow(e), className: "diff-removed" });
  return {
    nodes: nodes.map((n) => ({ ...n, draggable: false, selectable: true, connectable: false, deletable: false })),
    edges: edges.map((e) => ({ ...e, deletable: false, selectable: false })),
  };
}
