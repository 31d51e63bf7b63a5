// The graph document and its undo history: the one place the document changes. Edits are the
// pure functions of doc.ts; a committed edit is a graph snapshot in the history (see history.ts),
// while React Flow's bookkeeping (sizes, selection, a drag in progress) is not.

import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from "@xyflow/react";
import { useCallback, useMemo, useRef, useState } from "react";
import {
  docOf,
  emptyDoc,
  graphOf,
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
  type NodeSettings,
} from "../doc";
import { canonical, emptyGraph, type FlowEdge, type StepFlowNode } from "../graph";
import { History } from "../history";
import { autoLayout } from "../layout";
import type { Graph, GraphEdge, ParamValue } from "../types";

export function useDocument() {
  const [doc, setDocState] = useState<Doc>(emptyDoc);
  // Handlers read the latest doc from here: React Flow calls them between renders.
  const docRef = useRef(doc);
  const [history] = useState(() => new History<Graph>(emptyGraph()));
  const [, setHistoryTick] = useState(0);

  /** Change what is shown without an undo step (selection, sizes, a drag in progress). */
  const setDoc = useCallback((next: Doc) => {
    docRef.current = next;
    setDocState(next);
  }, []);

  /** Change the document as one undo step; edits with the same `key` in a row are one step. */
  const commit = useCallback(
    (next: Doc, key: string | null = null) => {
      setDoc(next);
      history.push(graphOf(next), key);
      setHistoryTick((t) => t + 1);
    },
    [setDoc, history],
  );

  /** Start again from `graph`, with no undo steps; returns the graph as the editor stores it. */
  const reset = useCallback(
    (graph: Graph): Graph => {
      const next = docOf(graph);
      setDoc(next);
      const normal = graphOf(next);
      history.reset(normal);
      setHistoryTick((t) => t + 1);
      return normal;
    },
    [setDoc, history],
  );

  const step = useCallback(
    (g: Graph | undefined) => {
      if (g) setDoc(docOf(g, docRef.current));
      setHistoryTick((t) => t + 1);
    },
    [setDoc],
  );
  const undo = useCallback(() => step(history.undo()), [step, history]);
  const redo = useCallback(() => step(history.redo()), [step, history]);

  const onNodesChange = useCallback(
    (changes: NodeChange<StepFlowNode>[]) => {
      const own = changes.filter((c) => c.type !== "remove"); // deleting goes through deleteSelection
      const next = { ...docRef.current, nodes: applyNodeChanges(own, docRef.current.nodes) };
      // A finished drag is an edit; the moves during it are not.
      if (own.some((c) => c.type === "position" && c.dragging === false)) commit(next);
      else setDoc(next);
    },
    [commit, setDoc],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => {
      const own = changes.filter((c) => c.type === "select");
      setDoc({ ...docRef.current, edges: applyEdgeChanges(own, docRef.current.edges) });
    },
    [setDoc],
  );

  const edits = useMemo(
    () => ({
      addNode: (stepType: string, position: { x: number; y: number }, version?: number) =>
        commit(withNewNode(docRef.current, stepType, position, version)),
      connect: (edge: GraphEdge) => commit(withEdge(docRef.current, edge)),
      setParam: (nodeId: string, field: string, value: unknown) =>
        commit(withParam(docRef.current, nodeId, field, value), `param:${nodeId}:${field}`),
      setNodeSettings: (nodeId: string, changes: NodeSettings) =>
        commit(withNodeSettings(docRef.current, nodeId, changes), `node:${nodeId}:${Object.keys(changes).join(",")}`),
      setWorkflowParam: (name: string, value: ParamValue | undefined) =>
        commit(withWorkflowParam(docRef.current, name, value), `wparam:${name}`),
      deleteSelection: () => {
        const next = withoutSelection(docRef.current);
        if (next) commit(next);
      },
      selectAll: () => setDoc(withAllSelected(docRef.current)),
      selectOnly: (nodeId: string) => setDoc(withOnlySelected(docRef.current, nodeId)),
      layout: () => commit({ ...docRef.current, nodes: autoLayout(docRef.current.nodes, docRef.current.edges) }),
      /** Paste a clipboard graph; returns the clipboard to paste next. */
      paste: (clip: Graph): Graph => {
        const pasted = withPasted(docRef.current, clip);
        commit(pasted.doc);
        return pasted.clip;
      },
      /** Replace the canvas (an imported graph), as one undo step. */
      replace: (graph: Graph) => commit(docOf(graph)),
    }),
    [commit, setDoc],
  );

  const graph = useMemo(() => graphOf(doc), [doc]);
  const graphKey = useMemo(() => canonical(graph), [graph]);

  return {
    doc,
    docRef,
    graph,
    graphKey, // canonical text of the graph: equal graphs, equal keys
    canUndo: history.canUndo,
    canRedo: history.canRedo,
    setDoc,
    reset,
    undo,
    redo,
    onNodesChange,
    onEdgesChange,
    ...edits,
  };
}

export type DocumentApi = ReturnType<typeof useDocument>;
