// Server-side validation, shortly after each change: the problems of the graph, by node, by
// edge and for the graph as a whole.

import { useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api";
import type { GraphError } from "../types";

const VALIDATE_DELAY_MS = 400;

export interface Problems {
  byNode: Map<string, GraphError[]>;
  badEdges: Set<number>; // indexes into the graph's edges
  ofGraph: GraphError[]; // those about no node
}

export function groupProblems(errors: GraphError[]): Problems {
  const byNode = new Map<string, GraphError[]>();
  for (const e of errors) if (e.node) byNode.set(e.node, [...(byNode.get(e.node) ?? []), e]);
  return {
    byNode,
    badEdges: new Set(errors.filter((e) => e.edge !== null).map((e) => e.edge!)),
    ofGraph: errors.filter((e) => !e.node),
  };
}

/** `graphKey` is the graph's canonical JSON; nothing is checked before the editor is `ready`. */
export function useValidation(graphKey: string, ready: boolean) {
  const [errors, setErrors] = useState<GraphError[]>([]);
  // Only the answer about the latest graph counts: an older one may arrive after it.
  const latest = useRef(0);

  useEffect(() => {
    if (!ready) return;
    const seq = ++latest.current;
    const timer = setTimeout(() => {
      api
        .validate(JSON.parse(graphKey))
        .then((r) => {
          if (seq === latest.current) setErrors(r.errors);
        })
        .catch(() => undefined); // a failed check is not a problem of the graph
    }, VALIDATE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [graphKey, ready]);

  const problems = useMemo(() => groupProblems(errors), [errors]);
  // setErrors also takes the errors of a refused save, so they show on nodes and fields too.
  return { errors, setErrors, ...problems };
}
