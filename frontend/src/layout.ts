// Auto-layout with dagre: left to right, in the order data flows.

import dagre from "@dagrejs/dagre";
import type { FlowEdge, StepFlowNode } from "./graph";

const DEFAULT_WIDTH = 220;
const DEFAULT_HEIGHT = 110;

export function autoLayout(nodes: StepFlowNode[], edges: FlowEdge[]): StepFlowNode[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 90, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) {
    g.setNode(n.id, { width: n.measured?.width ?? DEFAULT_WIDTH, height: n.measured?.height ?? DEFAULT_HEIGHT });
  }
  for (const e of edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return nodes.map((n) => {
    const p = g.node(n.id);
    const w = n.measured?.width ?? DEFAULT_WIDTH;
    const h = n.measured?.height ?? DEFAULT_HEIGHT;
    // dagre gives centres; React Flow wants top-left corners.
    return { ...n, position: { x: Math.round(p.x - w / 2), y: Math.round(p.y - h / 2) } };
  });
}
