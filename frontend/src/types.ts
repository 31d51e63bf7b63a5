// Shapes of the graph format (DESIGN §3) and of the API's answers the editor uses.
// The graph's shapes are generated from the server's pydantic models (workflows/graph.py) into
// generated/graph.ts by `make types`; here they get the names the editor uses.

import type { EdgeSpec, GraphErrorSpec, GraphSpec, NodeSpec } from "./generated/graph";

export type { RetrySpec } from "./generated/graph";

/** A workflow parameter's value. */
export type ParamValue = NonNullable<GraphSpec["params"]>[string];

/** A step as the editor holds it: `params` is always there (parseGraph fills it in). */
export type GraphNode = NodeSpec & { params: Record<string, unknown> };

export type GraphEdge = EdgeSpec;

/** A graph as the editor holds it: every field is there (parseGraph fills in the defaults). */
export type Graph = Required<Omit<GraphSpec, "nodes">> & { nodes: GraphNode[] };

export interface PortDef {
  name: string;
  type: string;
  description: string;
  required: boolean;
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
}

export interface StepTypeDef {
  name: string;
  label: string;
  category: string;
  description: string;
  params_schema: JsonSchema;
  inputs: PortDef[];
  outputs: PortDef[];
  queue?: string;
  tags?: string[];
  requires_upstream?: string[];
  version?: number; // the current version of the type's params (omitted by servers before step versions)
}

/** One validation problem, as the server reports it: it points at a node, an edge index and a field. */
export type GraphError = GraphErrorSpec;

/** A node the server upgraded on reading a version: its stored type version was older. */
export interface NodeUpgrade {
  node: string;
  type: string;
  from_version: number;
  to_version: number;
}

export interface Version {
  number: number;
  graph: Graph; // already upgraded when `upgrades` lists nodes
  message: string;
  author: string | null;
  restored_from: number | null;
  created_at: string;
  upgrades?: NodeUpgrade[]; // missing (servers before step versions) means none
}

export interface Workflow {
  id: number;
  name: string;
  description: string;
  owner: string;
  latest_version: number | null;
}

export interface StepRun {
  id: number;
  node_id: string;
  step_type: string;
  status: string;
  error: string;
  attempt: number;
}

export interface RunDetail {
  id: number;
  workflow: number;
  version: number;
  symbol: string;
  status: string;
  error: string;
  steps: StepRun[];
}

export const RUN_FINISHED = ["succeeded", "failed", "cancelled"];
