import { useMemo, useState } from "react";
import type { StepTypeDef } from "../types";

export const DRAG_MIME = "application/x-step-type";

const CATEGORY_ORDER = ["data", "analysis", "ai", "risk", "flow", "broker", "notify"];

export function groupByCategory(types: StepTypeDef[], query: string): [string, StepTypeDef[]][] {
  const q = query.trim().toLowerCase();
  const groups = new Map<string, StepTypeDef[]>();
  for (const t of types) {
    const text = `${t.name} ${t.label} ${t.category} ${t.description}`.toLowerCase();
    if (q && !text.includes(q)) continue;
    groups.set(t.category, [...(groups.get(t.category) ?? []), t]);
  }
  const rank = (c: string) => (CATEGORY_ORDER.indexOf(c) + 1 || 99);
  return [...groups.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

export function Palette({ types, locked, onAdd }: { types: StepTypeDef[]; locked: boolean; onAdd: (type: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => groupByCategory(types, query), [types, query]);
  if (locked)
    return (
      <aside className="wf-palette" aria-label="Steps">
        <p className="muted small">Showing a diff (read-only). Go back to editing to add steps.</p>
      </aside>
    );
  return (
    <aside className="wf-palette" aria-label="Steps">
      <input
        type="search"
        className="wf-search"
        placeholder="Search steps…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        aria-label="Search steps"
      />
      {groups.length === 0 && <p className="muted small">No step matches “{query}”.</p>}
      {groups.map(([category, items]) => (
        <section key={category} className="wf-palette-group">
          <h4>{category}</h4>
          {items.map((t) => (
            <div
              key={t.name}
              className="wf-palette-item"
              draggable
              data-step-type={t.name}
              title={`${t.description}\n\nDrag onto the canvas, or double-click to add.`}
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_MIME, t.name);
                e.dataTransfer.effectAllowed = "move";
              }}
              onDoubleClick={() => onAdd(t.name)}
            >
              <span className="wf-palette-label">{t.label}</span>
              <span className="wf-palette-name mono">{t.name}</span>
            </div>
          ))}
        </section>
      ))}
    </aside>
  );
}
