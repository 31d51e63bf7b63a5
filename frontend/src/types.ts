// Shapes of the graph format (DESIGN §3) and of the API's answers the editor uses.

export type ParamValue = string | number | boolean;

export interface RetrySpec {
  max?: number;
  backoff_s?: number;
}

export interface GraphNode {
  id: string;
  type: string;
  label?: string;
  params: Record<string, unknown>;
  retry?: RetrySpec;
  timeout_s?: number | null;
  position?: { x: number; y: number };
  version?: number; // the step type's version its params follow (servers before step versions omit it)
}

export interface GraphEdge {
  source: string;
  source_port: string;
  target: string;
  target_port: string;
}

export interface Graph {
  schema: number;
  params: Record<string, ParamValue>;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

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
export interface GraphError {
  node: string | null;
  edge: number | null;
  field: string | null;
  code: string;
  message: string;
}

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
