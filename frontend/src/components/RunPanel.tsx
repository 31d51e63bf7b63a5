import type { RunDetail } from "../types";

interface Props {
  symbol: string;
  onSymbol: (s: string) => void;
  onRun: () => void;
  canRun: boolean;
  isNew: boolean; // not created yet: nothing to run
  dirty: boolean;
  version: number | null; // the saved version a run uses
  run: RunDetail | null;
  runUrl: (id: number) => string;
  error: string;
}

/** Which version a run uses, said before it starts (runs never use unsaved changes). */
export function runExplanation(isNew: boolean, dirty: boolean, version: number | null): string {
  if (isNew) return "Create the workflow first: runs use a saved version.";
  if (dirty) return `Runs use a saved version: this runs v${version}, without your unsaved changes.`;
  return version ? `Runs v${version}.` : "";
}

export function RunPanel({ symbol, onSymbol, onRun, canRun, isNew, dirty, version, run, runUrl, error }: Props) {
  const why = runExplanation(isNew, dirty, version);
  return (
    <div className="wf-run">
      <form
        className="wf-run-form"
        onSubmit={(e) => {
          e.preventDefault();
          onRun();
        }}
      >
        <label htmlFor="run-symbol">Symbol</label>
        <input
          id="run-symbol"
          className="mono"
          value={symbol}
          maxLength={32}
          placeholder="AAPL"
          onChange={(e) => onSymbol(e.target.value.toUpperCase())}
          spellCheck={false}
          autoComplete="off"
        />
        <button type="submit" className="btn btn-primary" disabled={!canRun || !symbol.trim()}>
          Run
        </button>
      </form>
      {why && <p className="muted small">{why}</p>}
      {error && (
        <div className="alert alert-error" role="alert">
          {error}
        </div>
      )}
      {run && (
        <div className="wf-run-status" data-run={run.id} data-run-status={run.status}>
          <p>
            <a href={runUrl(run.id)}>Run {run.id}</a> · v{run.version} · {run.symbol} ·{" "}
            <span className={`badge status-${run.status}`}>{run.status}</span>
          </p>
          {run.error && <p className="wf-field-error">{run.error}</p>}
          <table className="table compact">
            <tbody>
              {run.steps.map((s) => (
                <tr key={s.id}>
                  <td className="mono">{s.node_id}</td>
                  <td>
                    <span className={`badge status-${s.status}`}>{s.status}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
