// The selected node's form, generated from its step type's JSON schema.

import { useEffect, useState } from "react";
import { canonical } from "../graph";
import type { StepNodeData } from "../graph";
import { displayValue, fieldRoot, fieldsOf, isRef, parseInput, type FieldSpec } from "../schema";
import type { GraphError, RetrySpec, StepTypeDef } from "../types";

interface Props {
  nodeId: string;
  data: StepNodeData;
  type: StepTypeDef | undefined;
  errors: GraphError[];
  refNames: string[];
  onParam: (name: string, value: unknown) => void;
  onNode: (changes: { label?: string; retry?: RetrySpec | undefined; timeout_s?: number | null }) => void;
}

const PARAM_CODES = new Set(["invalid_param", "unresolved_param"]);

/** Errors for one field of the form: param fields by name, node settings by "node:<field>". */
export function fieldErrors(errors: GraphError[], nodeId: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of errors) {
    if (e.node !== nodeId || !e.field) continue;
    const key = PARAM_CODES.has(e.code) ? fieldRoot(e.field)! : e.code === "invalid_format" ? `node:${e.field}` : null;
    // The panel already says which node and field: drop that prefix of the server's message.
    const text = e.message.replace(/^Node "[^"]*", field "[^"]*": /, "");
    if (key) out.set(key, [...(out.get(key) ?? []), text]);
  }
  return out;
}

function TextField({
  field,
  value,
  invalid,
  multiline,
  onChange,
  refNames,
}: {
  field: FieldSpec;
  value: unknown;
  invalid: boolean;
  multiline: boolean;
  onChange: (v: unknown) => void;
  refNames: string[];
}) {
  const [text, setText] = useState(displayValue(field, value));
  const [localError, setLocalError] = useState("");
  // Follow outside changes (undo, another node) without fighting the user's typing.
  useEffect(() => {
    const parsed = parseInput(field, text);
    if (!parsed.ok || canonical(parsed.value) !== canonical(value)) {
      setText(displayValue(field, value));
      setLocalError("");
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const change = (t: string) => {
    setText(t);
    const parsed = parseInput(field, t);
    if (parsed.ok) {
      setLocalError("");
      onChange(parsed.value);
    } else setLocalError(parsed.error);
  };
  const placeholder = field.default !== undefined && field.default !== null ? `default: ${displayValue(field, field.default)}` : "";
  const props = {
    id: `field-${field.name}`,
    name: field.name,
    value: text,
    placeholder,
    "aria-invalid": invalid || !!localError,
    onChange: (e: { target: { value: string } }) => change(e.target.value),
    list: refNames.length ? "wf-ref-names" : undefined,
    spellCheck: false,
  };
  return (
    <>
      {multiline ? <textarea rows={field.kind === "json" ? 6 : 3} {...props} /> : <input type="text" inputMode={field.kind === "number" || field.kind === "integer" ? "decimal" : undefined} {...props} />}
      {localError && <div className="wf-field-error">{localError}</div>}
    </>
  );
}

function EnumField({ field, value, invalid, onChange, refNames }: { field: FieldSpec; value: unknown; invalid: boolean; onChange: (v: unknown) => void; refNames: string[] }) {
  const current = value === undefined || value === null ? "" : String(value);
  const known = field.options ?? [];
  const refs = refNames.map((n) => `{{${n}}}`);
  return (
    <select id={`field-${field.name}`} name={field.name} value={current} aria-invalid={invalid} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}>
      <option value="">{field.default !== undefined ? `(default: ${String(field.default)})` : "(choose)"}</option>
      {known.map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
      {refs.length > 0 && (
        <optgroup label="Workflow parameters">
          {refs.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </optgroup>
      )}
      {current && !known.includes(current) && !refs.includes(current) && <option value={current}>{current}</option>}
    </select>
  );
}

function MultiEnumField({ field, value, onChange }: { field: FieldSpec; value: unknown; onChange: (v: unknown) => void }) {
  const chosen = Array.isArray(value) ? value.map(String) : Array.isArray(field.default) ? field.default.map(String) : [];
  const usingDefault = value === undefined;
  return (
    <div className="wf-multi" id={`field-${field.name}`} role="group" aria-label={field.title}>
      {(field.options ?? []).map((o) => (
        <label key={o} className="wf-check">
          <input
            type="checkbox"
            name={field.name}
            value={o}
            checked={chosen.includes(o)}
            onChange={(e) => {
              const next = e.target.checked ? [...chosen, o] : chosen.filter((c) => c !== o);
              // Keep the options' order, as the server lists them.
              onChange((field.options ?? []).filter((x) => next.includes(x)));
            }}
          />
          {o}
        </label>
      ))}
      {usingDefault && field.default !== undefined && <div className="muted small">(the default)</div>}
    </div>
  );
}

function Field({ field, value, messages, onChange, refNames }: { field: FieldSpec; value: unknown; messages: string[]; onChange: (v: unknown) => void; refNames: string[] }) {
  const invalid = messages.length > 0;
  // Any field can take a {{name}} reference instead of a typed value.
  const [refMode, setRefMode] = useState(isRef(value));
  useEffect(() => {
    if (isRef(value) && field.kind !== "enum") setRefMode(true);
  }, [value, field.kind]);
  const canToggle = ["boolean", "multienum", "json", "list"].includes(field.kind);
  let input;
  if (refMode && canToggle) {
    input = <TextField field={{ ...field, kind: "text" }} value={value} invalid={invalid} multiline={false} onChange={onChange} refNames={refNames} />;
  } else if (field.kind === "enum") {
    input = <EnumField field={field} value={value} invalid={invalid} onChange={onChange} refNames={refNames} />;
  } else if (field.kind === "multienum") {
    input = <MultiEnumField field={field} value={value} onChange={onChange} />;
  } else if (field.kind === "boolean") {
    input = (
      <label className="wf-check">
        <input id={`field-${field.name}`} type="checkbox" checked={value === undefined ? Boolean(field.default) : value === true} onChange={(e) => onChange(e.target.checked)} />
        {field.title}
      </label>
    );
  } else {
    input = <TextField field={field} value={value} invalid={invalid} multiline={field.kind === "textarea" || field.kind === "json"} onChange={onChange} refNames={refNames} />;
  }
  return (
    <div className={`wf-field${invalid ? " invalid" : ""}`} data-field={field.name}>
      <div className="wf-field-head">
        <label htmlFor={`field-${field.name}`}>
          {field.title}
          {field.required && <span className="wf-required" title="required"> *</span>}
        </label>
        {canToggle && (
          <button
            type="button"
            className="btn-link wf-ref-toggle"
            title={refMode ? "Back to the form field" : "Use a {{parameter}} instead"}
            onClick={() => {
              if (refMode) onChange(undefined);
              setRefMode(!refMode);
            }}
          >
            {refMode ? "form" : "{{ }}"}
          </button>
        )}
      </div>
      {input}
      {field.description && <div className="wf-help">{field.description}</div>}
      {messages.map((m, i) => (
        <div key={i} className="wf-field-error" role="alert">
          {m}
        </div>
      ))}
    </div>
  );
}

function NumberSetting({ id, label, value, onChange, messages }: { id: string; label: string; value: number | undefined | null; onChange: (v: number | undefined) => void; messages: string[] }) {
  return (
    <div className={`wf-field${messages.length ? " invalid" : ""}`} data-field={id}>
      <label htmlFor={`setting-${id}`}>{label}</label>
      <input
        id={`setting-${id}`}
        type="number"
        value={value ?? ""}
        aria-invalid={messages.length > 0}
        onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
      />
      {messages.map((m, i) => (
        <div key={i} className="wf-field-error">
          {m}
        </div>
      ))}
    </div>
  );
}

export function ParamPanel({ nodeId, data, type, errors, refNames, onParam, onNode }: Props) {
  const fields = type ? fieldsOf(type.params_schema) : [];
  const byField = fieldErrors(errors, nodeId);
  const known = new Set(fields.map((f) => f.name));
  const extra = Object.keys(data.params).filter((k) => !known.has(k));
  const nodeErrors = errors.filter((e) => e.node === nodeId);
  const retry = data.retry ?? {};
  return (
    <div className="wf-param-panel" data-node={nodeId}>
      <h3>
        {type?.label ?? data.stepType} <span className="muted small mono">{nodeId}</span>
      </h3>
      {type?.description && <p className="muted small">{type.description}</p>}
      {!type && <div className="alert alert-error">Unknown step type “{data.stepType}”: it is not installed on this server.</div>}
      {nodeErrors.length > 0 && (
        <ul className="wf-node-error-list">
          {nodeErrors.map((e, i) => (
            <li key={i}>{e.message}</li>
          ))}
        </ul>
      )}
      <div className="wf-field">
        <label htmlFor="node-label">Label</label>
        <input id="node-label" type="text" value={data.label} placeholder={type?.label} onChange={(e) => onNode({ label: e.target.value })} />
      </div>
      <h4>Parameters</h4>
      {fields.length === 0 && <p className="muted small">This step has no parameters.</p>}
      {fields.map((f) => (
        <Field key={`${nodeId}:${f.name}`} field={f} value={data.params[f.name]} messages={byField.get(f.name) ?? []} onChange={(v) => onParam(f.name, v)} refNames={refNames} />
      ))}
      {extra.map((k) => (
        <div key={k} className="wf-field invalid">
          <label>{k}</label>
          <code>{JSON.stringify(data.params[k])}</code>
          <button type="button" className="btn btn-small" onClick={() => onParam(k, undefined)}>
            Remove
          </button>
          {(byField.get(k) ?? []).map((m, i) => (
            <div key={i} className="wf-field-error">
              {m}
            </div>
          ))}
        </div>
      ))}
      <h4>Execution</h4>
      <NumberSetting
        id="retry.max"
        label="Retries (after the first attempt)"
        value={retry.max}
        messages={byField.get("node:retry.max") ?? []}
        onChange={(v) => onNode({ retry: v === undefined && retry.backoff_s === undefined ? undefined : { ...retry, max: v } })}
      />
      <NumberSetting
        id="retry.backoff_s"
        label="Retry backoff (s)"
        value={retry.backoff_s}
        messages={byField.get("node:retry.backoff_s") ?? []}
        onChange={(v) => onNode({ retry: v === undefined && retry.max === undefined ? undefined : { ...retry, backoff_s: v } })}
      />
      <NumberSetting
        id="timeout_s"
        label={`Timeout (s)${type?.queue ? "" : ""}`}
        value={data.timeout_s}
        messages={byField.get("node:timeout_s") ?? []}
        onChange={(v) => onNode({ timeout_s: v ?? null })}
      />
    </div>
  );
}
