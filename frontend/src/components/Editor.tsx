// The workflow editor: palette, canvas, side panels, and the glue between them and the API.
// The graph JSON is the truth (see graph.ts); React Flow state is derived from it, and every
// committed edit is a snapshot in the undo history.

import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type FinalConnectionState,
  type IsValidConnection,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { ApiError, api } from "../api";
import { StepTypesContext } from "../context";
import { diffGraphs, diffToFlow, type GraphDiff } from "../diff";
import {
  canonical,
  edgeToFlow,
  emptyGraph,
  flowToGraph,
  graphToFlow,
  nodeIdFor,
  nodeToFlow,
  parseGraph,
  pasteInto,
  subgraph,
  type FlowEdge,
  type StepFlowNode,
} from "../graph";
import { History } from "../history";
import { autoLayout } from "../layout";
import { checkConnection, type ConnectionLike } from "../ports";
import { references } from "../refs";
import type { Graph, GraphError, ParamValue, RetrySpec, RunDetail, StepTypeDef, Version } from "../types";
import { RUN_FINISHED } from "../types";
import { DRAG_MIME, Palette } from "./Palette";
import { ParamPanel } from "./ParamPanel";
import { RunPanel } from "./RunPanel";
import { nodeTypes } from "./StepNode";
import { Toolbar } from "./Toolbar";
import { VersionHistory } from "./VersionHistory";
import { WorkflowParams } from "./WorkflowParams";

export interface EditorConfig {
  workflowId: number | null;
  workflowName: string;
  initialGraph: Graph | null; // a new workflow's starting graph (blank when null)
  urls: { edit: string; detail: string; run: string };
  symbol: string;
}

type Doc = { nodes: StepFlowNode[]; edges: FlowEdge[]; params: Record<string, ParamValue> };
type Tab = "step" | "workflow" | "versions" | "run";
type DiffView = { a: number; b: number; diff: GraphDiff; nodes: StepFlowNode[]; edges: FlowEdge[] };
type Problem = { detail: string; errors: GraphError[] };

const RUN_POLL_MS = 1000;
const VALIDATE_DELAY_MS = 400;
const NOTICE_MS = 6000;
const FIT = { padding: 0.15, maxZoom: 1 };

/** "/workflows/0/edit/" -> "/workflows/12/edit/" */
export function urlFor(template: string, id: number): string {
  return template.replace("/0/", `/${id}/`);
}

function graphOf(doc: Doc): Graph {
  return flowToGraph(doc.nodes, doc.edges, doc.params);
}

/** A doc from a graph, keeping what React Flow measured and selected on nodes that stay. */
function docOf(graph: Graph, previous?: Doc, select?: Set<string>): Doc {
  const flow = graphToFlow(graph);
  const before = new Map((previous?.nodes ?? []).map((n) => [n.id, n]));
  return {
    nodes: flow.nodes.map((n) => {
      const old = before.get(n.id);
      const selected = select ? select.has(n.id) : (old?.selected ?? false);
      return old?.measured ? { ...n, measured: old.measured, selected } : { ...n, selected };
    }),
    edges: flow.edges,
    params: flow.params,
  };
}

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

function Inner({ config }: { config: EditorConfig }) {
  const rf = useReactFlow<StepFlowNode, FlowEdge>();
  const [workflowId] = useState(config.workflowId);
  const [types, setTypes] = useState<StepTypeDef[]>([]);
  const typeMap = useMemo(() => new Map(types.map((t) => [t.name, t])), [types]);
  const [doc, setDocState] = useState<Doc>({ nodes: [], edges: [], params: {} });
  const docRef = useRef(doc);
  const history = useRef(new History<Graph>(emptyGraph()));
  const [, setHistoryTick] = useState(0);
  const [saved, setSaved] = useState({ graph: canonical(emptyGraph()), name: config.workflowName });
  const [name, setName] = useState(config.workflowName);
  const [message, setMessage] = useState("");
  const [currentVersion, setCurrentVersion] = useState<number | null>(null);
  const [versions, setVersions] = useState<Version[]>([]);
  const [errors, setErrors] = useState<GraphError[]>([]);
  const [ready, setReady] = useState(false);
  const [fatal, setFatal] = useState("");
  const [notice, setNotice] = useState<{ text: string; kind: "info" | "error" } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saving, setSaving] = useState(false);
  const [tab, setTab] = useState<Tab>("step");
  const [diffView, setDiffView] = useState<DiffView | null>(null);
  const [symbol, setSymbol] = useState(config.symbol);
  const [run, setRun] = useState<RunDetail | null>(null);
  const [runError, setRunError] = useState("");
  const [showProblems, setShowProblems] = useState(false);
  const clipboard = useRef<Graph | null>(null);
  const [hasClip, setHasClip] = useState(false);
  const leaving = useRef(false);
  const validateSeq = useRef(0);

  const setDoc = useCallback((next: Doc) => {
    docRef.current = next;
    setDocState(next);
  }, []);

  const commit = useCallback(
    (next: Doc, key: string | null = null) => {
      setDoc(next);
      history.current.push(graphOf(next), key);
      setHistoryTick((t) => t + 1);
    },
    [setDoc],
  );

  const flash = useCallback((text: string, kind: "info" | "error" = "info") => {
    setNotice({ text, kind });
  }, []);

  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice]);

  const load = useCallback(
    (graph: Graph, versionNumber: number | null) => {
      const next = docOf(graph);
      setDoc(next);
      const normal = graphOf(next);
      history.current.reset(normal);
      setHistoryTick((t) => t + 1);
      setSaved((s) => ({ ...s, graph: canonical(normal) }));
      setCurrentVersion(versionNumber);
    },
    [setDoc],
  );

  const refreshVersions = useCallback(async () => {
    if (workflowId === null) return [];
    const list = await api.versions(workflowId);
    setVersions(list);
    return list;
  }, [workflowId]);

  // Load the step types and the latest version.
  useEffect(() => {
    (async () => {
      setTypes(await api.stepTypes());
      if (workflowId !== null) {
        const list = await refreshVersions();
        if (list.length) load(parseGraph(list[0].graph), list[0].number);
      } else {
        load(config.initialGraph ? parseGraph(config.initialGraph) : emptyGraph(), null);
      }
      setReady(true);
      setTimeout(() => rf.fitView(FIT), 50);
    })().catch((e) => setFatal(e instanceof Error ? e.message : String(e)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const graph = useMemo(() => graphOf(doc), [doc]);
  const graphKey = useMemo(() => canonical(graph), [graph]);
  // A new workflow (blank or a template's draft) is unsaved as soon as it has a step.
  const dirty =
    ready &&
    (graphKey !== saved.graph || name.trim() !== saved.name.trim() || (workflowId === null && doc.nodes.length > 0));

  // Validate on the server shortly after each change: errors appear on nodes and fields.
  useEffect(() => {
    if (!ready) return;
    const seq = ++validateSeq.current;
    const timer = setTimeout(() => {
      api
        .validate(JSON.parse(graphKey))
        .then((r) => {
          if (seq === validateSeq.current) setErrors(r.errors);
        })
        .catch(() => undefined); // a failed check is not a problem of the graph
    }, VALIDATE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [graphKey, ready]);

  // Unsaved-changes guard.
  useEffect(() => {
    if (!dirty) return;
    const guard = (e: BeforeUnloadEvent) => {
      if (leaving.current) return;
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", guard);
    return () => window.removeEventListener("beforeunload", guard);
  }, [dirty]);

  // Live run status: poll the run every second until it finishes.
  useEffect(() => {
    if (!run || RUN_FINISHED.includes(run.status)) return;
    const timer = setTimeout(() => {
      api
        .run(run.id)
        .then(setRun)
        .catch((e) => setRunError(e instanceof Error ? e.message : String(e)));
    }, RUN_POLL_MS);
    return () => clearTimeout(timer);
  }, [run]);

  const statuses = useMemo(() => new Map((run?.steps ?? []).map((s) => [s.node_id, s.status])), [run]);

  const nodeKinds = useCallback(() => docRef.current.nodes.map((n) => ({ id: n.id, stepType: n.data.stepType })), []);

  // ---- Edits -------------------------------------------------------------------------------

  const onNodesChange = useCallback(
    (changes: NodeChange<StepFlowNode>[]) => {
      if (diffView) {
        // Only React Flow's own bookkeeping (sizes, selection) while a diff is shown.
        setDiffView((d) => (d ? { ...d, nodes: applyNodeChanges(changes.filter((c) => c.type !== "remove" && c.type !== "position"), d.nodes) } : d));
        return;
      }
      const own = changes.filter((c) => c.type !== "remove"); // deleting goes through deleteSelection
      const next = { ...docRef.current, nodes: applyNodeChanges(own, docRef.current.nodes) };
      if (own.some((c) => c.type === "position" && c.dragging === false)) commit(next);
      else setDoc(next);
    },
    [commit, setDoc, diffView],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => {
      if (diffView) return;
      const own = changes.filter((c) => c.type === "select");
      setDoc({ ...docRef.current, edges: applyEdgeChanges(own, docRef.current.edges) });
    },
    [setDoc, diffView],
  );

  const isValidConnection: IsValidConnection<FlowEdge> = useCallback(
    (c) => checkConnection(c as ConnectionLike, nodeKinds(), graphOf(docRef.current).edges, typeMap).ok,
    [typeMap, nodeKinds],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      const check = checkConnection(c, nodeKinds(), graphOf(docRef.current).edges, typeMap);
      if (!check.ok) return flash(check.reason, "error");
      const edge = edgeToFlow({ source: c.source, source_port: c.sourceHandle ?? "", target: c.target, target_port: c.targetHandle ?? "" });
      commit({ ...docRef.current, edges: [...docRef.current.edges, edge] });
    },
    [commit, flash, typeMap, nodeKinds],
  );

  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      const from = state.fromHandle;
      const to = state.toHandle;
      if (!from || !to || state.isValid) return;
      const c: ConnectionLike =
        from.type === "source"
          ? { source: from.nodeId, sourceHandle: from.id, target: to.nodeId, targetHandle: to.id }
          : { source: to.nodeId, sourceHandle: to.id, target: from.nodeId, targetHandle: from.id };
      const check = checkConnection(c, nodeKinds(), graphOf(docRef.current).edges, typeMap);
      if (!check.ok) flash(`Not connected: ${check.reason}`, "error");
    },
    [flash, typeMap, nodeKinds],
  );

  const addNode = useCallback(
    (stepType: string, position?: { x: number; y: number }) => {
      const d = docRef.current;
      const id = nodeIdFor(stepType, d.nodes.map((n) => n.id));
      const at = position ?? rf.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
      const node = { ...nodeToFlow({ id, type: stepType, params: {}, position: at }), selected: true };
      commit({ ...d, nodes: [...d.nodes.map((n) => ({ ...n, selected: false })), node] });
      setTab("step");
    },
    [commit, rf],
  );

  const onDrop = useCallback(
    (e: DragEvent) => {
      e.preventDefault();
      const stepType = e.dataTransfer.getData(DRAG_MIME);
      if (!stepType || diffView) return;
      addNode(stepType, rf.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [addNode, rf, diffView],
  );

  const selectedIds = useCallback(() => new Set(docRef.current.nodes.filter((n) => n.selected).map((n) => n.id)), []);

  const deleteSelection = useCallback(() => {
    const d = docRef.current;
    const ids = selectedIds();
    const edges = d.edges.filter((e) => !e.selected && !ids.has(e.source) && !ids.has(e.target));
    if (!ids.size && edges.length === d.edges.length) return;
    commit({ ...d, nodes: d.nodes.filter((n) => !ids.has(n.id)), edges });
  }, [commit, selectedIds]);

  const copy = useCallback(() => {
    const ids = selectedIds();
    if (!ids.size) return;
    clipboard.current = subgraph(graphOf(docRef.current), ids);
    setHasClip(true);
    flash(`Copied ${ids.size} step${ids.size > 1 ? "s" : ""}`);
  }, [flash, selectedIds]);

  const paste = useCallback(() => {
    if (!clipboard.current) return;
    const { graph: next, pasted } = pasteInto(graphOf(docRef.current), clipboard.current);
    commit(docOf(next, docRef.current, new Set(pasted)));
    clipboard.current = subgraph(next, new Set(pasted)); // the next paste lands further on
  }, [commit]);

  const selectAll = useCallback(() => {
    const d = docRef.current;
    setDoc({ ...d, nodes: d.nodes.map((n) => ({ ...n, selected: true })), edges: d.edges.map((e) => ({ ...e, selected: true })) });
  }, [setDoc]);

  const layout = useCallback(() => {
    const d = docRef.current;
    commit({ ...d, nodes: autoLayout(d.nodes, d.edges) });
    setTimeout(() => rf.fitView({ ...FIT, duration: 200 }), 30);
  }, [commit, rf]);

  const fit = useCallback(() => rf.fitView({ ...FIT, duration: 200 }), [rf]);

  const undo = useCallback(() => {
    const g = history.current.undo();
    if (g) setDoc(docOf(g, docRef.current));
    setHistoryTick((t) => t + 1);
  }, [setDoc]);

  const redo = useCallback(() => {
    const g = history.current.redo();
    if (g) setDoc(docOf(g, docRef.current));
    setHistoryTick((t) => t + 1);
  }, [setDoc]);

  const setParam = useCallback(
    (nodeId: string, field: string, value: unknown) => {
      const d = docRef.current;
      const nodes = d.nodes.map((n) => {
        if (n.id !== nodeId) return n;
        const params = { ...n.data.params };
        if (value === undefined) delete params[field];
        else params[field] = value;
        return { ...n, data: { ...n.data, params } };
      });
      commit({ ...d, nodes }, `param:${nodeId}:${field}`);
    },
    [commit],
  );

  const setNodeSettings = useCallback(
    (nodeId: string, changes: { label?: string; retry?: RetrySpec | undefined; timeout_s?: number | null }) => {
      const d = docRef.current;
      const nodes = d.nodes.map((n) => {
        if (n.id !== nodeId) return n;
        const data = { ...n.data, ...changes };
        if ("retry" in changes && changes.retry === undefined) delete data.retry;
        if ("timeout_s" in changes && changes.timeout_s === null) delete data.timeout_s;
        return { ...n, data };
      });
      commit({ ...d, nodes }, `node:${nodeId}:${Object.keys(changes).join(",")}`);
    },
    [commit],
  );

  const setWorkflowParam = useCallback(
    (pname: string, value: ParamValue | undefined) => {
      const d = docRef.current;
      const params = { ...d.params };
      if (value === undefined) delete params[pname];
      else params[pname] = value;
      commit({ ...d, params }, `wparam:${pname}`);
    },
    [commit],
  );

  // ---- Saving, versions, import --------------------------------------------------------------

  const leave = (url: string) => {
    leaving.current = true;
    window.location.assign(url);
  };

  const showApiError = useCallback(
    (e: unknown, what: string, aboutCanvas = true) => {
      if (e instanceof ApiError) {
        // Graph errors of what is on the canvas also go on its nodes and fields.
        if (aboutCanvas && e.errors.length) setErrors(e.errors);
        setProblem({ detail: `${what}: ${e.detail}`, errors: e.errors });
      } else flash(`${what}: ${e instanceof Error ? e.message : String(e)}`, "error");
    },
    [flash],
  );

  const save = useCallback(async () => {
    if (diffView || saving) return;
    const g = graphOf(docRef.current);
    const trimmed = name.trim();
    if (!trimmed) return flash("Give the workflow a name first", "error");
    setSaving(true);
    setProblem(null);
    try {
      if (workflowId === null) {
        const wf = await api.createWorkflow(trimmed, g, message.trim() || "Created in the editor");
        leave(urlFor(config.urls.edit, wf.id));
        return;
      }
      if (trimmed !== saved.name.trim()) await api.renameWorkflow(workflowId, trimmed);
      let text = "Renamed";
      if (canonical(g) !== saved.graph) {
        const v = await api.saveVersion(workflowId, g, message.trim());
        setCurrentVersion(v.number);
        await refreshVersions();
        text = `Saved as v${v.number}`;
      }
      setSaved({ graph: canonical(g), name: trimmed });
      setMessage("");
      flash(text);
    } catch (e) {
      showApiError(e, "Not saved");
    } finally {
      setSaving(false);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [diffView, saving, name, message, workflowId, saved, refreshVersions, flash, showApiError]);

  const compare = useCallback(
    async (a: number, b: number) => {
      if (workflowId === null) return;
      try {
        const [va, vb] = await Promise.all([api.version(workflowId, a), api.version(workflowId, b)]);
        const ga = parseGraph(va.graph);
        const gb = parseGraph(vb.graph);
        const diff = diffGraphs(ga, gb);
        setDiffView({ a, b, diff, ...diffToFlow(ga, gb, diff) });
        setTimeout(() => rf.fitView(FIT), 50);
      } catch (e) {
        showApiError(e, "Could not compare");
      }
    },
    [workflowId, rf, showApiError],
  );

  const closeDiff = useCallback(() => {
    setDiffView(null);
    setTimeout(() => rf.fitView(FIT), 50);
  }, [rf]);

  const restore = useCallback(
    async (n: number) => {
      if (workflowId === null) return;
      if (dirty && !window.confirm("Restoring discards your unsaved changes. Go on?")) return;
      try {
        const v = await api.restoreVersion(workflowId, n);
        await refreshVersions();
        setDiffView(null);
        load(parseGraph(v.graph), v.number);
        flash(`Restored v${n} as v${v.number}`);
        setTimeout(() => rf.fitView(FIT), 50);
      } catch (e) {
        showApiError(e, "Not restored");
      }
    },
    [workflowId, dirty, refreshVersions, load, flash, rf, showApiError],
  );

  const clone = useCallback(async () => {
    if (workflowId === null) return;
    if (dirty && !window.confirm("The clone copies the latest saved version, without your unsaved changes. Go on?")) return;
    try {
      const wf = await api.clone(workflowId);
      leave(urlFor(config.urls.edit, wf.id));
    } catch (e) {
      showApiError(e, "Not cloned");
    }
  }, [workflowId, dirty, config.urls.edit, showApiError]);

  const importFile = useCallback(
    async (file: File) => {
      setProblem(null);
      let document: unknown;
      try {
        document = JSON.parse(await file.text());
      } catch (e) {
        setProblem({ detail: `${file.name} is not JSON: ${e instanceof Error ? e.message : e}`, errors: [] });
        return;
      }
      const isExport = !!document && typeof document === "object" && "format" in (document as object);
      if (isExport) {
        // A workflow export becomes a new workflow (the server validates it).
        try {
          const wf = await api.importWorkflow(document);
          leave(urlFor(config.urls.edit, wf.id));
        } catch (e) {
          showApiError(e, `${file.name} was not imported`, false);
        }
        return;
      }
      // A bare graph replaces the canvas; saving makes it a version.
      try {
        const g = parseGraph(document);
        commit(docOf(g));
        flash(`Loaded ${file.name} into the canvas: save to keep it`);
        setTimeout(() => rf.fitView(FIT), 50);
      } catch (e) {
        setProblem({ detail: `${file.name}: ${e instanceof Error ? e.message : e}`, errors: [] });
      }
    },
    [commit, flash, rf, config.urls.edit, showApiError],
  );

  // ---- Running --------------------------------------------------------------------------------

  const startRun = useCallback(async () => {
    if (workflowId === null || currentVersion === null) return;
    setRunError("");
    try {
      setRun(await api.startRun(workflowId, symbol.trim(), currentVersion));
    } catch (e) {
      setRunError(e instanceof ApiError ? e.detail : String(e));
    }
  }, [workflowId, currentVersion, symbol]);

  // ---- Keyboard -------------------------------------------------------------------------------

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "s") {
        e.preventDefault();
        void save();
        return;
      }
      if (typing(e.target)) return;
      if (e.shiftKey && !mod && key === "f") return fit();
      if (diffView) return;
      if (mod && key === "z" && !e.shiftKey) {
        e.preventDefault();
        undo();
      } else if (mod && ((key === "z" && e.shiftKey) || key === "y")) {
        e.preventDefault();
        redo();
      } else if (mod && key === "c") copy();
      else if (mod && key === "v") paste();
      else if (mod && key === "a") {
        e.preventDefault();
        selectAll();
      } else if (key === "delete" || key === "backspace") {
        e.preventDefault();
        deleteSelection();
      } else if (e.shiftKey && key === "l") layout();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [save, fit, undo, redo, copy, paste, selectAll, deleteSelection, layout, diffView]);

  // ---- Rendering ------------------------------------------------------------------------------

  const errorsByNode = useMemo(() => {
    const m = new Map<string, GraphError[]>();
    for (const e of errors) if (e.node) m.set(e.node, [...(m.get(e.node) ?? []), e]);
    return m;
  }, [errors]);
  const badEdges = useMemo(() => new Set(errors.filter((e) => e.edge !== null).map((e) => e.edge)), [errors]);

  const shownNodes = useMemo(
    () =>
      diffView
        ? diffView.nodes
        : doc.nodes.map((n) => ({ ...n, data: { ...n.data, errors: errorsByNode.get(n.id), status: statuses.get(n.id) } })),
    [diffView, doc.nodes, errorsByNode, statuses],
  );
  const shownEdges = useMemo(
    () =>
      diffView
        ? diffView.edges
        : doc.edges.map((e, i) => (badEdges.has(i) ? { ...e, className: "has-error" } : e)),
    [diffView, doc.edges, badEdges],
  );

  const selected = doc.nodes.filter((n) => n.selected);
  const one = selected.length === 1 ? selected[0] : null;
  const usage = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const n of graph.nodes) for (const r of references(n.params)) m.set(r, [...(m.get(r) ?? []), n.id]);
    return m;
  }, [graph]);
  const refNames = useMemo(() => ["symbol", ...Object.keys(doc.params)], [doc.params]);
  const graphProblems = errors.filter((e) => !e.node);
  const runWhy =
    workflowId === null
      ? "Create the workflow first: runs use a saved version."
      : dirty
        ? `Runs use a saved version: this runs v${currentVersion}, without your unsaved changes.`
        : currentVersion
          ? `Runs v${currentVersion}.`
          : "";

  if (fatal) return <div className="alert alert-error">The editor could not load: {fatal}</div>;

  return (
    <StepTypesContext.Provider value={typeMap}>
      <div
        className={`wf-editor${diffView ? " diff-mode" : ""}`}
        data-ready={ready ? "true" : "false"}
        data-dirty={dirty ? "true" : "false"}
        data-version={currentVersion ?? ""}
      >
        <Toolbar
          name={name}
          onName={setName}
          message={message}
          onMessage={setMessage}
          onSave={() => void save()}
          saving={saving}
          dirty={dirty}
          isNew={workflowId === null}
          locked={!!diffView}
          canUndo={history.current.canUndo}
          canRedo={history.current.canRedo}
          hasSelection={selected.length > 0 || doc.edges.some((e) => e.selected)}
          canPaste={hasClip}
          onUndo={undo}
          onRedo={redo}
          onDelete={deleteSelection}
          onCopy={copy}
          onPaste={paste}
          onSelectAll={selectAll}
          onLayout={layout}
          onFit={fit}
          onClone={() => void clone()}
          onImport={(f) => void importFile(f)}
          exportUrl={workflowId !== null && currentVersion !== null ? api.exportUrl(workflowId) : null}
          detailUrl={workflowId !== null ? urlFor(config.urls.detail, workflowId) : null}
        />
        {notice && (
          <div className={`wf-notice ${notice.kind}`} role="status" onClick={() => setNotice(null)}>
            {notice.text}
          </div>
        )}
        {problem && (
          <div className="alert alert-error wf-problem" role="alert" data-testid="problem">
            <button type="button" className="btn-link wf-close" onClick={() => setProblem(null)} aria-label="Dismiss">
              ×
            </button>
            <strong>{problem.detail}</strong>
            {problem.errors.length > 0 && (
              <ul>
                {problem.errors.map((e, i) => (
                  <li key={i}>{e.message}</li>
                ))}
              </ul>
            )}
          </div>
        )}
        <div className="wf-body">
          <Palette types={types} locked={!!diffView} onAdd={(t) => addNode(t)} />
          <div className="wf-canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }} onDrop={onDrop}>
            <ReactFlow<StepFlowNode, FlowEdge>
              nodes={shownNodes}
              edges={shownEdges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onNodeClick={() => setTab("step")}
              deleteKeyCode={null}
              selectionKeyCode="Shift"
              multiSelectionKeyCode={["Meta", "Control"]}
              nodesConnectable={!diffView}
              nodesDraggable={!diffView}
              minZoom={0.1}
              fitView
              fitViewOptions={FIT}
            >
              <Background gap={16} />
              <MiniMap pannable zoomable nodeClassName={(n) => `mini-${(n.data as { status?: string; diff?: string }).diff ?? (n.data as { status?: string }).status ?? "plain"}`} />
              <Controls showInteractive={false} />
            </ReactFlow>
            {diffView && (
              <div className="wf-diff-banner">
                Comparing v{diffView.a} → v{diffView.b} (read-only) ·{" "}
                <button type="button" className="btn btn-small" onClick={closeDiff}>
                  Back to editing
                </button>
              </div>
            )}
            <div className={`wf-problems${errors.length ? " has" : ""}`} data-testid="problems">
              <button type="button" className="btn-link" onClick={() => setShowProblems(!showProblems)}>
                {errors.length ? `${errors.length} problem${errors.length > 1 ? "s" : ""}` : "No problems"}
              </button>
              {graphProblems.length > 0 && !showProblems && <span className="wf-graph-problem">{graphProblems[0].message}</span>}
              {showProblems && errors.length > 0 && (
                <ul>
                  {errors.map((e, i) => (
                    <li key={i}>
                      {e.node ? (
                        <button
                          type="button"
                          className="btn-link"
                          onClick={() => {
                            const d = docRef.current;
                            setDoc({ ...d, nodes: d.nodes.map((n) => ({ ...n, selected: n.id === e.node })) });
                            setTab("step");
                            rf.fitView({ nodes: [{ id: e.node! }], padding: 1, duration: 200 });
                          }}
                        >
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
          </div>
          <aside className="wf-side">
            <nav className="wf-tabs" role="tablist">
              {(
                [
                  ["step", "Step"],
                  ["workflow", "Parameters"],
                  ["versions", "Versions"],
                  ["run", "Run"],
                ] as [Tab, string][]
              ).map(([t, label]) => (
                <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? "active" : ""} onClick={() => setTab(t)} data-tab={t}>
                  {label}
                </button>
              ))}
            </nav>
            <div className="wf-tab-body">
              {tab === "step" &&
                (diffView ? (
                  <p className="muted">Showing a diff: go back to editing to change steps.</p>
                ) : one ? (
                  <ParamPanel
                    key={one.id}
                    nodeId={one.id}
                    data={one.data}
                    type={typeMap.get(one.data.stepType)}
                    errors={errors}
                    refNames={refNames}
                    onParam={(f, v) => setParam(one.id, f, v)}
                    onNode={(c) => setNodeSettings(one.id, c)}
                  />
                ) : (
                  <div className="muted">
                    <p>{selected.length > 1 ? `${selected.length} steps selected.` : "Select a step to edit its parameters."}</p>
                    <p className="small">Drag steps from the left onto the canvas; drag from an output port (right) to an input port (left) to connect them.</p>
                  </div>
                ))}
              {tab === "workflow" && <WorkflowParams params={doc.params} usage={usage} onChange={setWorkflowParam} />}
              {tab === "versions" && (
                <VersionHistory
                  versions={versions}
                  current={currentVersion}
                  comparing={diffView ? { a: diffView.a, b: diffView.b, diff: diffView.diff } : null}
                  onCompare={(a, b) => void compare(a, b)}
                  onCloseDiff={closeDiff}
                  onRestore={(n) => void restore(n)}
                  exportUrl={(n) => api.exportUrl(workflowId ?? 0, n)}
                />
              )}
              {tab === "run" && (
                <RunPanel
                  symbol={symbol}
                  onSymbol={setSymbol}
                  onRun={() => void startRun()}
                  canRun={workflowId !== null && currentVersion !== null && !(run && !RUN_FINISHED.includes(run.status))}
                  why={runWhy}
                  run={run}
                  runUrl={(id) => urlFor(config.urls.run, id)}
                  error={runError}
                />
              )}
            </div>
          </aside>
        </div>
        <datalist id="wf-ref-names">
          {refNames.map((r) => (
            <option key={r} value={`{{${r}}}`} />
          ))}
        </datalist>
      </div>
    </StepTypesContext.Provider>
  );
}

export function Editor({ config }: { config: EditorConfig }) {
  return (
    <ReactFlowProvider>
      <Inner config={config} />
    </ReactFlowProvider>
  );
}
