// A read-only picture of a graph (the template gallery): the same nodes as the editor's.

import { Background, ReactFlow, ReactFlowProvider, applyNodeChanges, type NodeChange } from "@xyflow/react";
import { useEffect, useState } from "react";
import { api } from "../api";
import { StepTypesContext } from "../context";
import { graphToFlow, parseGraph, type StepFlowNode } from "../graph";
import type { StepTypeDef } from "../types";
import { nodeTypes } from "./StepNode";

let typesOnce: Promise<StepTypeDef[]> | null = null;

function stepTypes(): Promise<StepTypeDef[]> {
  typesOnce ??= api.stepTypes().catch(() => []);
  return typesOnce;
}

export function Preview({ graph }: { graph: unknown }) {
  const flow = graphToFlow(parseGraph(graph));
  const [nodes, setNodes] = useState<StepFlowNode[]>(flow.nodes);
  const [types, setTypes] = useState<Map<string, StepTypeDef>>(new Map());
  useEffect(() => {
    void stepTypes().then((list) => setTypes(new Map(list.map((t) => [t.name, t]))));
  }, []);
  return (
    <StepTypesContext.Provider value={types}>
      <ReactFlowProvider>
        <div className="wf-preview" data-ready={types.size ? "true" : "false"}>
          <ReactFlow
            nodes={nodes}
            edges={flow.edges}
            nodeTypes={nodeTypes}
            onNodesChange={(c: NodeChange<StepFlowNode>[]) => setNodes((n) => applyNodeChanges(c, n))}
            nodesDraggable={false}
            nodesConnectable={false}
            elementsSelectable={false}
            zoomOnScroll={false}
            preventScrolling={false}
            fitView
            minZoom={0.05}
          >
            <Background gap={16} />
          </ReactFlow>
        </div>
      </ReactFlowProvider>
    </StepTypesContext.Provider>
  );
}
