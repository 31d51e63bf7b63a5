// The workflow as saved: its name and versions, which version the canvas shows (and which of
// its nodes the server upgraded), whether the canvas has unsaved changes (and the guard against
// leaving with them), and saving, restoring and cloning.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api";
import { graphOf } from "../doc";
import { canonical, emptyGraph, parseGraph } from "../graph";
import { urlFor } from "../urls";
import type { Graph, NodeUpgrade, Version } from "../types";
import { upgradesByNode } from "../upgrades";
import type { DocumentApi } from "./useDocument";
import type { Notices } from "./useNotices";

interface Options {
  workflowId: number | null; // null: a new workflow, created by its first save
  initialName: string;
  editUrl: string; // the editor page's URL template
  ready: boolean; // the first graph is loaded: only then can anything be unsaved
  locked: boolean; // a diff is shown
  graphDoc: Pick<DocumentApi, "doc" | "docRef" | "graphKey" | "reset">;
  notices: Pick<Notices, "flash" | "setProblem" | "showApiError">;
  clearDiff: () => void;
  fitSoon: () => void;
}

export function useVersions({ workflowId, initialName, editUrl, ready, locked, graphDoc, notices, clearDiff, fitSoon }: Options) {
  const { docRef, reset } = graphDoc;
  const { flash, setProblem, showApiError } = notices;
  const [versions, setVersions] = useState<Version[]>([]);
  const [current, setCurrent] = useState<number | null>(null);
  const [saved, setSaved] = useState({ graph: canonical(emptyGraph()), name: initialName });
  const [name, setName] = useState(initialName);
  const [message, setMessage] = useState("");
  const [saving, setSaving] = useState(false);
  const [upgradeList, setUpgradeList] = useState<NodeUpgrade[]>([]);
  const upgrades = useMemo(() => upgradesByNode(upgradeList), [upgradeList]);

  // A new workflow (blank or a template's draft) is unsaved as soon as it has a step.
  const dirty =
    ready &&
    (graphDoc.graphKey !== saved.graph ||
      name.trim() !== saved.name.trim() ||
      (workflowId === null && graphDoc.doc.nodes.length > 0));

  // ---- Leaving the page -------------------------------------------------------------------

  const leaving = useRef(false);
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

  /** Go to another workflow's editor, without the unsaved-changes question (it was asked). */
  const openWorkflow = useCallback(
    (id: number) => {
      leaving.current = true;
      window.location.assign(urlFor(editUrl, id));
    },
    [editUrl],
  );

  // ---- Loading ------------------------------------------------------------------------------

  /** Show a version (or a new workflow's starting graph, with no number). */
  const load = useCallback(
    (graph: Graph, versionNumber: number | null, upgraded: NodeUpgrade[] = []) => {
      const normal = reset(graph);
      setSaved((s) => ({ ...s, graph: canonical(normal) }));
      setCurrent(versionNumber);
      setUpgradeList(upgraded);
    },
    [reset],
  );
  const loadVersion = useCallback((v: Version) => load(parseGraph(v.graph), v.number, v.upgrades), [load]);

  const refresh = useCallback(async () => {
    if (workflowId === null) return [];
    const list = await api.versions(workflowId);
    setVersions(list);
    return list;
  }, [workflowId]);

  /** The latest version, or for a new workflow its starting graph (blank when null). */
  const open = useCallback(
    async (initialGraph: Graph | null) => {
      if (workflowId !== null) {
        const list = await refresh();
        if (list.length) loadVersion(list[0]);
      } else {
        load(initialGraph ? parseGraph(initialGraph) : emptyGraph(), null);
      }
    },
    [workflowId, refresh, load, loadVersion],
  );

  // ---- Saving, restoring, cloning -------------------------------------------------------------

  const save = useCallback(async () => {
    if (locked || saving) return;
    const g = graphOf(docRef.current);
    const trimmed = name.trim();
    if (!trimmed) return flash("Give the workflow a name first", "error");
    setSaving(true);
    setProblem(null);
    try {
      if (workflowId === null) {
        const wf = await api.createWorkflow(trimmed, g, message.trim() || "Created in the editor");
        openWorkflow(wf.id);
        return;
      }
      if (trimmed !== saved.name.trim()) await api.renameWorkflow(workflowId, trimmed);
      let text = "Renamed";
      // An upgrade alone is worth a version: it stores the params in their current form.
      if (canonical(g) !== saved.graph || upgradeList.length > 0) {
        const v = await api.saveVersion(workflowId, g, message.trim());
        setCurrent(v.number);
        setUpgradeList([]); // the version just saved holds the upgraded params
        await refresh();
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
  }, [locked, saving, docRef, name, message, workflowId, saved, upgradeList, refresh, openWorkflow, flash, setProblem, showApiError]);

  const restore = useCallback(
    async (n: number) => {
      if (workflowId === null) return;
      if (dirty && !window.confirm("Restoring discards your unsaved changes. Go on?")) return;
      try {
        const v = await api.restoreVersion(workflowId, n);
        await refresh();
        clearDiff();
        loadVersion(v);
        flash(`Restored v${n} as v${v.number}`);
        fitSoon();
      } catch (e) {
        showApiError(e, "Not restored");
      }
    },
    [workflowId, dirty, refresh, clearDiff, loadVersion, flash, fitSoon, showApiError],
  );

  const clone = useCallback(async () => {
    if (workflowId === null) return;
    if (dirty && !window.confirm("The clone copies the latest saved version, without your unsaved changes. Go on?")) return;
    try {
      const wf = await api.clone(workflowId);
      openWorkflow(wf.id);
    } catch (e) {
      showApiError(e, "Not cloned");
    }
  }, [workflowId, dirty, openWorkflow, showApiError]);

  return { versions, current, upgrades, name, setName, message, setMessage, saving, dirty, open, save, restore, clone, openWorkflow };
}
