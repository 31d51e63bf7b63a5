// Generated from graph.schema.json (itself from workflows/graph.py) by `make types`. Do not edit.
// src/types.ts gives these the names the editor uses.

export interface GraphSpec {
  schema?: number;
  params?: {
    [k: string]: string | number | boolean;
  };
  /**
   * @maxItems 500
   */
  nodes: NodeSpec[];
  /**
   * @maxItems 2000
   */
  edges?: EdgeSpec[];
}
/**
 * This interface was referenced by `GraphSpec`'s JSON-Schema
 * via the `definition` "NodeSpec".
 */
export interface NodeSpec {
  id: string;
  type: string;
  version?: number | null;
  label?: string;
  params?: {
    [k: string]: unknown;
  };
  retry?: RetrySpec;
  timeout_s?: number | null;
  position?: {
    x: number;
    y: number;
    [k: string]: number;
  } | null;
}
/**
 * This interface was referenced by `GraphSpec`'s JSON-Schema
 * via the `definition` "RetrySpec".
 */
export interface RetrySpec {
  /**
   * Retries after the first attempt
   */
  max?: number;
  /**
   * Delay before the first retry; doubles each time
   */
  backoff_s?: number;
}
/**
 * This interface was referenced by `GraphSpec`'s JSON-Schema
 * via the `definition` "EdgeSpec".
 */
export interface EdgeSpec {
  source: string;
  source_port: string;
  target: string;
  target_port: string;
}
/**
 * One validation problem: it points at a node, an edge (its index) and a field.
 *
 * This interface was referenced by `GraphSpec`'s JSON-Schema
 * via the `definition` "GraphErrorSpec".
 */
export interface GraphErrorSpec {
  node: string | null;
  edge: number | null;
  field: string | null;
  code: string;
  message: string;
}
