// The side panel's tabs: the selected step's form, the workflow's parameters, the versions and
// running. Each tab's content is drawn only while it is the open one.

import type { ReactNode } from "react";
import { useStepTypes } from "../context";
import type { NodeSettings } from "../doc";
import type { StepFlowNode } from "../graph";
import type { GraphError } from "../types";
import { ParamPanel } from "./ParamPanel";

export type Tab = "step" | "workflow" | "versions" | "run";

const TABS: [Tab, string][] = [
  ["step", "Step"],
  ["workflow", "Parameters"],
  ["versions", "Versions"],
  ["run", "Run"],
];

interface Props {
  tab: Tab;
  onTab: (tab: Tab) => void;
  panes: Record<Tab, () => ReactNode>;
}

export function SidePanel({ tab, onTab, panes }: Props) {
  return (
    <aside className="wf-side">
      <nav className="wf-tabs" role="tablist">
        {TABS.map(([t, label]) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? "active" : ""} onClick={() => onTab(t)} data-tab={t}>
            {label}
          </button>
        ))}
      </nav>
      <div className="wf-tab-body">{panes[tab]()}</div>
    </aside>
  );
}

interface StepPaneProps {
  selected: StepFlowNode[];
  locked: boolean; // a diff is shown
  errors: GraphError[];
  refNames: string[];
  onParam: (nodeId: string, field: string, value: unknown) => void;
  onNode: (nodeId: string, changes: NodeSettings) => void;
}

/** The Step tab: the form of the one selected step. */
export function StepPane({ selected, locked, errors, refNames, onParam, onNode }: StepPaneProps) {
  const types = useStepTypes();
  if (locked) return <p className="muted">Showing a diff: go back to editing to change steps.</p>;
  const one = selected.length === 1 ? selected[0] : null;
  if (one)
    return (
      <ParamPanel
        key={one.id}
        nodeId={one.id}
        data={one.data}
        type={types.get(one.data.stepType)}
        errors={errors}
        refNames={refNames}
        onParam={(f, v) => onParam(one.id, f, v)}
        onNode={(c) => onNode(one.id, c)}
      />
    );
  return (
    <div className="muted">
      <p>{selected.length > 1 ? `${selected.length} steps selected.` : "Select a step to edit its parameters."}</p>
      <p className="small">Drag steps from the left onto the canvas; drag from an output port (right) to an input port (left) to connect them.</p>
    </div>
  );
}
