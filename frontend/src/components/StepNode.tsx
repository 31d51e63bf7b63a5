import { Handle, Position, type NodeProps } from "@xyflow/react";
import { useStepTypes } from "../context";
import type { StepFlowNode } from "../graph";
import { UPGRADE_TITLE, upgradeText } from "../upgrades";

const STATUS_TEXT: Record<string, string> = {
  pending: "pending",
  queued: "queued",
  running: "running",
  waiting: "waiting",
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
  skipped: "skipped",
};

export function StepNode({ id, data, selected }: NodeProps<StepFlowNode>) {
  const type = useStepTypes().get(data.stepType);
  const errors = data.errors ?? [];
  const classes = ["wf-node"];
  if (selected) classes.push("selected");
  if (!type) classes.push("unknown-type");
  if (errors.length) classes.push("has-error");
  if (data.status) classes.push(`wf-status-${data.status}`);
  if (data.diff) classes.push(`diff-${data.diff}`);
  const inputs = type?.inputs ?? [];
  const outputs = type?.outputs ?? [];
  const rows = Math.max(inputs.length, outputs.length);
  return (
    <div className={classes.join(" ")} data-testid={`node-${id}`} data-status={data.status ?? ""} data-diff={data.diff ?? ""}>
      <div className="wf-node-head">
        <span className="wf-node-label">{data.label || type?.label || data.stepType}</span>
        {data.status && <span className={`wf-node-status wf-badge-${data.status}`}>{STATUS_TEXT[data.status] ?? data.status}</span>}
        {data.diff && <span className={`wf-node-diff wf-diff-badge-${data.diff}`}>{data.diff}</span>}
        {data.upgrade && (
          <span className="wf-node-upgrade" title={UPGRADE_TITLE} data-upgraded={`${data.upgrade.from_version}-${data.upgrade.to_version}`}>
            {upgradeText(data.upgrade)}
          </span>
        )}
      </div>
      <div className="wf-node-sub">
        <span className="mono">{id}</span> · <span className="mono">{data.stepType}</span>
      </div>
      <div className="wf-node-ports">
        {Array.from({ length: rows }, (_, i) => (
          <div className="wf-port-row" key={i}>
            <span className="wf-port in">
              {inputs[i] && (
                <>
                  <Handle
                    type="target"
                    position={Position.Left}
                    id={inputs[i].name}
                    className={`wf-handle port-${inputs[i].type}`}
                    title={`${inputs[i].name}: ${inputs[i].type}${inputs[i].required ? "" : " (optional)"}`}
                  />
                  {inputs[i].name}
                  {!inputs[i].required && <span className="muted">?</span>} <span className="wf-port-type">{inputs[i].type}</span>
                </>
              )}
            </span>
            <span className="wf-port out">
              {outputs[i] && (
                <>
                  <span className="wf-port-type">{outputs[i].type}</span> {outputs[i].name}
                  <Handle
                    type="source"
                    position={Position.Right}
                    id={outputs[i].name}
                    className={`wf-handle port-${outputs[i].type}`}
                    title={`${outputs[i].name}: ${outputs[i].type}`}
                  />
                </>
              )}
            </span>
          </div>
        ))}
      </div>
      {data.changedParams && data.changedParams.length > 0 && (
        <div className="wf-node-changed">changed: {data.changedParams.join(", ")}</div>
      )}
      {errors.length > 0 && (
        <ul className="wf-node-errors" role="alert">
          {errors.slice(0, 3).map((e, i) => (
            <li key={i}>{e.message}</li>
          ))}
          {errors.length > 3 && <li>… and {errors.length - 3} more</li>}
        </ul>
      )}
    </div>
  );
}

export const nodeTypes = { step: StepNode };
