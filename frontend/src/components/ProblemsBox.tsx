// The problems box (bottom left of the canvas): how many problems the graph has, and the list of
// them, each leading to its node.

import { useState } from "react";
import type { GraphError } from "../types";

interface Props {
  errors: GraphError[];
  ofGraph: GraphError[]; // the errors about no node
  onGoTo: (nodeId: string) => void;
}

export function ProblemsBox({ errors, ofGraph, onGoTo }: Props) {
  const [open, setOpen] = useState(false);
  return (
    <div className={`wf-problems${errors.length ? " has" : ""}`} data-testid="problems">
      <button type="button" className="btn-link" onClick={() => setOpen(!open)}>
        {errors.length ? `${errors.length} problem${errors.length > 1 ? "s" : ""}` : "No problems"}
      </button>
      {ofGraph.length > 0 && !open && <span className="wf-graph-problem">{ofGraph[0].message}</span>}
      {open && errors.length > 0 && (
        <ul>
          {errors.map((e, i) => (
            <li key={i}>
              {e.node ? (
                <button type="button" className="btn-link" onClick={() => onGoTo(e.node!)}>
                  {e.message}
                </button>
              ) : (
                e.message
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
