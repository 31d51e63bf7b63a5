// Workflow-level parameters: the defaults that {{name}} references resolve to.

import { useState } from "react";
import type { ParamValue } from "../types";

// The names the gallery's templates use, offered as one-click additions.
export const SUGGESTED: [string, ParamValue][] = [
  ["period_1", "1y"],
  ["bar_1", "1d"],
  ["period_2", "5y"],
  ["bar_2", "1w"],
  ["period_3", "max"],
  ["bar_3", "1w"],
  ["min_r", 1.0],
  ["min_profit", 0.05],
];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A typed value from text: numbers and true/false keep their type, anything else is text. */
export function paramValueOf(text: string): ParamValue {
  const t = text.trim();
  if (t !== "" && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (t === "true" || t === "false") return t === "true";
  return text;
}

function ValueInput({ name, value, onChange }: { name: string; value: ParamValue; onChange: (v: ParamValue) => void }) {
  const [text, setText] = useState(String(value));
  return (
    <input
      id={`wparam-${name}`}
      type="text"
      className="mono"
      value={paramValueOf(text) === value ? text : String(value)}
      onChange={(e) => {
        setText(e.target.value);
        onChange(paramValueOf(e.target.value));
      }}
    />
  );
}

interface Props {
  params: Record<string, ParamValue>;
  usage: Map<string, string[]>;
  onChange: (name: string, value: ParamValue | undefined) => void;
}

export function WorkflowParams({ params, usage, onChange }: Props) {
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const add = (n: string, v: ParamValue) => {
    if (!NAME.test(n)) return setError("A name is letters, digits and _, not starting with a digit");
    if (n === "symbol") return setError("symbol is given by each run");
    if (n in params) return setError(`${n} exists already`);
    setError("");
    onChange(n, v);
    setName("");
    setValue("");
  };
  const names = Object.keys(params);
  return (
    <div className="wf-wparams">
      <p className="muted small">
        Defaults for <code>{"{{name}}"}</code> references in step fields. <code>{"{{symbol}}"}</code> is the run's symbol. A
        strategy or a run may override them.
      </p>
      <table className="table compact">
        <thead>
          <tr>
            <th>Name</th>
            <th>Value</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {names.length === 0 && (
            <tr>
              <td colSpan={3} className="muted">
                No parameters.
              </td>
            </tr>
          )}
          {names.map((n) => (
            <tr key={n}>
              <td className="mono">
                <label htmlFor={`wparam-${n}`}>{n}</label>
                {usage.get(n)?.length ? <div className="muted small">used by {usage.get(n)!.join(", ")}</div> : <div className="muted small">unused</div>}
              </td>
              <td>
                <ValueInput name={n} value={params[n]} onChange={(v) => onChange(n, v)} />
              </td>
              <td>
                <button type="button" className="btn btn-small" title={`Remove ${n}`} onClick={() => onChange(n, undefined)}>
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="wf-add-param"
        onSubmit={(e) => {
          e.preventDefault();
          add(name.trim(), paramValueOf(value));
        }}
      >
        <input aria-label="New parameter name" placeholder="name" value={name} onChange={(e) => setName(e.target.value)} className="mono" />
        <input aria-label="New parameter value" placeholder="value" value={value} onChange={(e) => setValue(e.target.value)} className="mono" />
        <button type="submit" className="btn btn-small">
          Add
        </button>
      </form>
      {error && <div className="wf-field-error">{error}</div>}
      <div className="wf-suggested">
        {SUGGESTED.filter(([n]) => !(n in params)).map(([n, v]) => (
          <button key={n} type="button" className="btn btn-small" onClick={() => add(n, v)} title={`Add ${n} = ${v}`}>
            + {n}
          </button>
        ))}
      </div>
    </div>
  );
}
