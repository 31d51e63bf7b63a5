// Which connections the editor accepts while a user drags from one port to another. The same
// rules as the server's validation (workflows/graph.py): the ports exist, their types match
// ("any" matches everything), an input takes one edge, and the graph stays acyclic.

import type { GraphEdge, PortDef, StepTypeDef } from "./types";

export const ANY = "any";

export function portTypesMatch(outputType: string, inputType: string): boolean {
  return outputType === ANY || inputType === ANY || outputType === inputType;
}

export interface ConnectionLike {
  source: string | null;
  sourceHandle?: string | null;
  target: string | null;
  targetHandle?: string | null;
}

export type ConnectionCheck = { ok: true } | { ok: false; reason: string };

export interface NodeTypeOf {
  id: string;
  stepType: string;
}

function reaches(edges: GraphEdge[], from: string, to: string): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length) {
    const current = todo.pop()!;
    if (current === to) return true;
    for (const t of next.get(current) ?? []) {
      if (!seen.has(t)) {
        seen.add(t);
        todo.push(t);
      }
    }
  }
  return false;
}

export function findPort(ports: PortDef[], name: string | null | undefined): PortDef | undefined {
  return ports.find((p) => p.name === name);
}

export function checkConnection(
  conn: ConnectionLike,
  nodes: NodeTypeOf[],
  edges: GraphEdge[],
  types: Map<string, StepTypeDef>,
): ConnectionCheck {
  if (!conn.source || !conn.target) return { ok: false, reason: "Connect an output to an input" };
  if (conn.source === conn.target) return { ok: false, reason: "A step cannot feed itself" };
  const source = nodes.find((n) => n.id === conn.source);
  const target = nodes.find((n) => n.id === conn.target);
  if (!source || !target) return { ok: false, reason: "Unknown step" };
  const sourceType = types.get(source.stepType);
  const targetType = types.get(target.stepType);
  if (!sourceType || !targetType) return { ok: false, reason: "Unknown step type" };
  const out = findPort(sourceType.outputs, conn.sourceHandle);
  const inp = findPort(targetType.inputs, conn.targetHandle);
  if (!out) return { ok: false, reason: `"${source.id}" has no output "${conn.sourceHandle ?? ""}"` };
  if (!inp) return { ok: false, reason: `"${target.id}" has no input "${conn.targetHandle ?? ""}"` };
  if (!portTypesMatch(out.type, inp.type))
    return { ok: false, reason: `${source.id}.${out.name} gives ${out.type}, ${target.id}.${inp.name} takes ${inp.type}` };
  if (edges.some((e) => e.target === target.id && e.target_port === inp.name))
    return { ok: false, reason: `Input ${target.id}.${inp.name} is already connected` };
  if (reaches(edges, target.id, source.id))
    return { ok: false, reason: "That connection would make a cycle; a workflow flows one way" };
  return { ok: true };
}
