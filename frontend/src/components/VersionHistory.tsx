import { useEffect, useState } from "react";
import type { GraphDiff, ValueChange } from "../diff";
import { diffIsEmpty } from "../diff";
import { edgeId } from "../graph";
import type { Version } from "../types";

function show(v: unknown): string {
  return v === undefined ? "(default)" : JSON.stringify(v);
}

function Changes({ items }: { items: ValueChange[] }) {
  return (
    <ul className="wf-value-changes">
      {items.map((c) => (
        <li key={c.name}>
          <span className="mono">{c.name}</span>: <del>{show(c.before)}</del> → <ins>{show(c.after)}</ins>
        </li>
      ))}
    </ul>
  );
}

type Section = { title: string; className: string };

function NodeSection({ title, className, mark, nodes }: Section & { mark: string; nodes: GraphDiff["nodesAdded"] }) {
  if (nodes.length === 0) return null;
  return (
    <section>
      <h4 className={className}>{title}</h4>
      <ul>
        {nodes.map((n) => (
          <li key={n.id} {...{ [mark]: n.id }}>
            <span className="mono">{n.id}</span> ({n.type})
          </li>
        ))}
      </ul>
    </section>
  );
}

function EdgeSection({ title, className, edges }: Section & { edges: GraphDiff["edgesAdded"] }) {
  if (edges.length === 0) return null;
  return (
    <section>
      <h4 className={className}>{title}</h4>
      <ul>
        {edges.map((e) => (
          <li key={edgeId(e)} className="mono">
            {e.source}.{e.source_port} → {e.target}.{e.target_port}
          </li>
        ))}
      </ul>
    </section>
  );
}

export function DiffList({ diff }: { diff: GraphDiff }) {
  if (diffIsEmpty(diff)) return <p className="muted">No differences (node positions are not compared).</p>;
  return (
    <div className="wf-diff-list" data-testid="diff-list">
      <NodeSection title="Steps added" className="diff-added-text" mark="data-diff-added" nodes={diff.nodesAdded} />
      <NodeSection title="Steps removed" className="diff-removed-text" mark="data-diff-removed" nodes={diff.nodesRemoved} />
      {diff.nodesChanged.length > 0 && (
        <section>
          <h4 className="diff-changed-text">Steps changed</h4>
          <ul>
            {diff.nodesChanged.map((c) => (
              <li key={c.id} data-diff-changed={c.id}>
                <span className="mono">{c.id}</span>
                <Changes items={[...c.params, ...c.fields]} />
              </li>
            ))}
          </ul>
        </section>
      )}
      <EdgeSection title="Connections added" className="diff-added-text" edges={diff.edgesAdded} />
      <EdgeSection title="Connections removed" className="diff-removed-text" edges={diff.edgesRemoved} />
      {diff.paramsChanged.length > 0 && (
        <section>
          <h4 className="diff-changed-text">Workflow parameters changed</h4>
          <Changes items={diff.paramsChanged} />
        </section>
      )}
    </div>
  );
}

interface Props {
  versions: Version[];
  current: number | null;
  comparing: { a: number; b: number; diff: GraphDiff } | null;
  onCompare: (a: number, b: number) => void;
  onCloseDiff: () => void;
  onRestore: (n: number) => void;
  exportUrl: (n: number) => string;
}

export function VersionHistory({ versions, current, comparing, onCompare, onCloseDiff, onRestore, exportUrl }: Props) {
  const latest = versions[0]?.number ?? 0;
  const [a, setA] = useState<number>(Math.max(1, latest - 1));
  const [b, setB] = useState<number>(latest);
  useEffect(() => {
    setA(Math.max(1, latest - 1));
    setB(latest);
  }, [latest]);
  if (!versions.length) return <p className="muted">Not saved yet: the first save makes version 1.</p>;
  return (
    <div className="wf-versions">
      <form
        className="wf-compare"
        onSubmit={(e) => {
          e.preventDefault();
          onCompare(a, b);
        }}
      >
        <label>
          Compare <select aria-label="Older version" name="diff-a" value={a} onChange={(e) => setA(Number(e.target.value))}>
            {versions.map((v) => (
              <option key={v.number} value={v.number}>
                v{v.number}
              </option>
            ))}
          </select>
        </label>
        <label>
          with <select aria-label="Newer version" name="diff-b" value={b} onChange={(e) => setB(Number(e.target.value))}>
            {versions.map((v) => (
              <option key={v.number} value={v.number}>
                v{v.number}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="btn btn-small" disabled={a === b}>
          Show diff
        </button>
      </form>
      {comparing && (
        <div className="wf-diff-panel">
          <div className="wf-diff-head">
            <strong>
              v{comparing.a} → v{comparing.b}
            </strong>
            <button type="button" className="btn btn-small" onClick={onCloseDiff}>
              Back to editing
            </button>
          </div>
          <p className="small wf-legend">
            <span className="diff-added-text">■ added</span> <span className="diff-removed-text">■ removed</span>{" "}
            <span className="diff-changed-text">■ changed</span>
          </p>
          <DiffList diff={comparing.diff} />
        </div>
      )}
      <ol className="wf-version-list" reversed>
        {versions.map((v) => (
          <li key={v.number} data-version={v.number} className={v.number === current ? "current" : ""}>
            <div className="wf-version-head">
              <strong>v{v.number}</strong>
              {v.number === latest && <span className="badge status-succeeded">latest</span>}
              <span className="muted small">
                {v.author ?? "—"} · {new Date(v.created_at).toLocaleString()}
              </span>
            </div>
            <div className="wf-version-message">{v.message || <span className="muted">no message</span>}</div>
            {v.restored_from && <div className="muted small">restored from v{v.restored_from}</div>}
            <div className="wf-version-actions">
              {v.number !== latest && (
                <button type="button" className="btn btn-small" onClick={() => onRestore(v.number)} data-restore={v.number}>
                  Restore as new version
                </button>
              )}
              <a className="btn btn-small" href={exportUrl(v.number)} download>
                Export
              </a>
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
