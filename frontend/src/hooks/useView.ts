// The canvas's view: fitting it to the nodes the same way wherever the editor does, and
// window coordinates in canvas terms.

import { useReactFlow } from "@xyflow/react";
import { useMemo } from "react";
import type { FlowEdge, StepFlowNode } from "../graph";

export const FIT = { padding: 0.15, maxZoom: 1 };

export function useView() {
  const rf = useReactFlow<StepFlowNode, FlowEdge>();
  return useMemo(
    () => ({
      /** At once, animated (the Fit view command). */
      fit: () => void rf.fitView({ ...FIT, duration: 200 }),
      /** Once React Flow has drawn and measured nodes just put on the canvas. */
      fitSoon: () => void setTimeout(() => rf.fitView(FIT), 50),
      /** Once nodes just moved (auto-layout) are drawn in their new places. */
      fitAfterMove: () => void setTimeout(() => rf.fitView({ ...FIT, duration: 200 }), 30),
      /** Close in on one node (a problem's). */
      fitNode: (id: string) => void rf.fitView({ nodes: [{ id }], padding: 1, duration: 200 }),
      /** A point of the window, in canvas coordinates. */
      toCanvas: (x: number, y: number) => rf.screenToFlowPosition({ x, y }),
    }),
    [rf],
  );
}

export type View = ReturnType<typeof useView>;
