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
}

/** One validation problem, as the server reports it: it points at a node, an edge index and a field. */
export interface GraphError {
  node: string | null;
  edge: number | null;
  field: string | null;
  code: string;
  message: string;
}

export interface Version {
  number: number;
  graph: Graph;
  message: string;
  author: string | null;
  restored_from: number | null;
  created_at: string;
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
