const REF = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Names referenced as {{name}} anywhere inside a param value (as workflows/graph.py reads them). */
export function references(value: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === "string") for (const m of v.matchAll(REF)) out.add(m[1]);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(value);
  return out;
}

/** For each name referenced as {{name}} in the nodes' params, the ids of the nodes that use it. */
export function usage(nodes: { id: string; params: unknown }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of nodes) for (const r of references(n.params)) out.set(r, [...(out.get(r) ?? []), n.id]);
  return out;
}
