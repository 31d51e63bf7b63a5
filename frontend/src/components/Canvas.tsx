// The canvas: React Flow drawing the document with each node's problems, run status and
// upgrade, or a diff, read-only. Steps dropped from the palette are added; connections are
// checked as the server checks them (ports.ts), and a refused one says why.

import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  type Connection,
  type EdgeChange,
  type FinalConnectionState,
  type IsValidConnection,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useMemo, type DragEvent, type ReactNode } from "react";
import { useStepTypes } from "../context";
import { graphOf } from "../doc";
import type { FlowEdge, StepFlowNode } from "../graph";
import type { DiffView } from "../hooks/useDiffView";
import type { DocumentApi } from "../hooks/useDocument";
import type { Problems } from "../hooks/useValidation";
import { FIT, useView } from "../hooks/useView";
import { checkConnection, type ConnectionLike } from "../ports";
import type { NodeUpgrade } from "../types";
import { upgradeOf } from "../upgrades";
import { DRAG_MIME } from "./Palette";
import { nodeTypes } from "./StepNode";

interface Props {
  graphDoc: Pick<DocumentApi, "doc" | "docRef" | "onNodesChange" | "onEdgesChange" | "connect">;
  diff: DiffView | null; // shown instead of the document
  onDiffNodesChange: (changes: NodeChange<StepFlowNode>[]) => void;
  onCloseDiff: () => void;
  problems: Pick<Problems, "byNode" | "badEdges">;
  statuses: Map<string, string>; // run status by node id
  upgrades: Map<string, NodeUpgrade>; // nodes the server upgraded in the version loaded, by id
  flash: (text: string, kind: "error") => void;
  onAddStep: (stepType: string, position: { x: number; y: number }) => void;
  onNodeClick: () => void;
  children?: ReactNode; // drawn over the canvas
}

function miniMapClass(n: { data: Record<string, unknown> }): string {
  const d = n.data as { status?: string; diff?: string };
  return `mini-${d.diff ?? d.status ?? "plain"}`;
}

export function Canvas({ graphDoc, diff, onDiffNodesChange, onCloseDiff, problems, statuses, upgrades, flash, onAddStep, onNodeClick, children }: Props) {
  const { doc, docRef, connect, onNodesChange: docNodesChange, onEdgesChange: docEdgesChange } = graphDoc;
  const types = useStepTypes();
  const view = useView();

  const nodes = useMemo(
    () =>
      diff
        ? diff.nodes
        : doc.nodes.map((n) => ({
            ...n,
            data: {
              ...n.data,
              errors: problems.byNode.get(n.id),
              status: statuses.get(n.id),
              upgrade: upgradeOf(upgrades, n.id, n.data.stepType),
            },
          })),
    [diff, doc.nodes, problems.byNode, statuses, upgrades],
  );
  const edges = useMemo(
    () => (diff ? diff.edges : doc.edges.map((e, i) => (problems.badEdges.has(i) ? { ...e, className: "has-error" } : e))),
    [diff, doc.edges, problems.badEdges],
  );

  const onNodesChange = diff ? onDiffNodesChange : docNodesChange;
  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => {
      if (!diff) docEdgesChange(changes);
    },
    [diff, docEdgesChange],
  );

  const check = useCallback(
    (c: ConnectionLike) => {
      const kinds = docRef.current.nodes.map((n) => ({ id: n.id, stepType: n.data.stepType }));
      return checkConnection(c, kinds, graphOf(docRef.current).edges, types);
    },
    [docRef, types],
  );

  const isValidConnection: IsValidConnection<FlowEdge> = useCallback((c) => check(c as ConnectionLike).ok, [check]);

  const onConnect = useCallback(
    (c: Connection) => {
      const result = check(c);
      if (!result.ok) return flash(result.reason, "error");
      connect({ source: c.source, source_port: c.sourceHandle ?? "", target: c.target, target_port: c.targetHandle ?? "" });
    },
    [check, connect, flash],
  );

  // React Flow drops a refused connection silently: say why.
  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      const from = state.fromHandle;
      const to = state.toHandle;
      if (!from || !to || state.isValid) return;
      const c: ConnectionLike =
        from.type === "source"
          ? { source: from.nodeId, sourceHandle: from.id, target: to.nodeId, targetHandle: to.id }
          : { source: to.nodeId, sourceHandle: to.id, target: from.nodeId, targetHandle: from.id };
      const result = check(c);
      if (!result.ok) flash(`Not connected: ${result.reason}`, "error");
    },
    [check, flash],
  );

  const onDrop = useCallback(
    (e: DragEvent) => {
      e.preventDefault();
      const stepType = e.dataTransfer.getData(DRAG_MIME);
      if (!stepType || diff) return;
      onAddStep(stepType, view.toCanvas(e.clientX, e.clientY));
    },
    [diff, onAddStep, view],
  );

  return (
    <div
      className="wf-canvas"
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = "move";
      }}
      onDrop={onDrop}
    >
      <ReactFlow<StepFlowNode, FlowEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onNodeClick={onNodeClick}
        deleteKeyCode={null} // deleting is the Delete command's (commands.ts)
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control"]}
        nodesConnectable={!diff}
        nodesDraggable={!diff}
        minZoom={0.1}
        fitView
        fitViewOptions={FIT}
      >
        <Background gap={16} />
        <MiniMap pannable zoomable nodeClassName={miniMapClass} />
        <Controls showInteractive={false} />
      </ReactFlow>
      {diff && (
        <div className="wf-diff-banner">
          Comparing v{diff.a} → v{diff.b} (read-only) ·{" "}
          <button type="button" className="btn btn-small" onClick={onCloseDiff}>
            Back to editing
          </button>
        </div>
      )}
      {children}
    </div>
  );
}
