// A diff of two versions drawn on the canvas, read-only, in place of the document.

import { applyNodeChanges, type NodeChange } from "@xyflow/react";
import { useCallback, useState } from "react";
import { api } from "../api";
import { diffGraphs, diffToFlow, type GraphDiff } from "../diff";
import { parseGraph, type FlowEdge, type StepFlowNode } from "../graph";

export type DiffView = { a: number; b: number; diff: GraphDiff; nodes: StepFlowNode[]; edges: FlowEdge[] };

interface Options {
  workflowId: number | null;
  showApiError: (e: unknown, what: string) => void;
  fitSoon: () => void;
}

export function useDiffView({ workflowId, showApiError, fitSoon }: Options) {
  const [view, setView] = useState<DiffView | null>(null);

  const compare = useCallback(
    async (a: number, b: number) => {
      if (workflowId === null) return;
      try {
        const [va, vb] = await Promise.all([api.version(workflowId, a), api.version(workflowId, b)]);
        const ga = parseGraph(va.graph);
        const gb = parseGraph(vb.graph);
        const diff = diffGraphs(ga, gb);
        setView({ a, b, diff, ...diffToFlow(ga, gb, diff) });
        fitSoon();
      } catch (e) {
        showApiError(e, "Could not compare");
      }
    },
    [workflowId, fitSoon, showApiError],
  );

  /** Back to editing the document. */
  const close = useCallback(() => {
    setView(null);
    fitSoon();
  }, [fitSoon]);

  /** Only React Flow's own bookkeeping (sizes, selection): nothing moves or goes in a diff. */
  const onNodesChange = useCallback((changes: NodeChange<StepFlowNode>[]) => {
    const own = changes.filter((c) => c.type !== "remove" && c.type !== "position");
    setView((d) => (d ? { ...d, nodes: applyNodeChanges(own, d.nodes) } : d));
  }, []);

  return { view, compare, close, clear: () => setView(null), onNodesChange };
}
