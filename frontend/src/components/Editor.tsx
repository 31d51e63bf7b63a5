// The workflow editor: palette, canvas and side panels, put together. The graph JSON is the
// truth (graph.ts); the hooks own the state around it (the document and its undo history,
// validation, versions, the diff shown, the run followed), and commands.ts is the one list of
// what the toolbar and the keyboard can do.

import { ReactFlowProvider } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";
import { api } from "../api";
import type { CommandState } from "../commands";
import { StepTypesContext } from "../context";
import { hasSelection } from "../doc";
import { useClipboard } from "../hooks/useClipboard";
import { useCommands } from "../hooks/useCommands";
import { useDiffView } from "../hooks/useDiffView";
import { useDocument } from "../hooks/useDocument";
import { useImport } from "../hooks/useImport";
import { useNotices } from "../hooks/useNotices";
import { useRunPolling } from "../hooks/useRunPolling";
import { useValidation } from "../hooks/useValidation";
import { useVersions } from "../hooks/useVersions";
import { useView } from "../hooks/useView";
import { usage } from "../refs";
import type { Graph, StepTypeDef } from "../types";
import { urlFor } from "../urls";
import { Canvas } from "./Canvas";
import { Notices } from "./Notices";
import { Palette } from "./Palette";
import { ProblemsBox } from "./ProblemsBox";
import { RunPanel } from "./RunPanel";
import { SidePanel, StepPane, type Tab } from "./SidePanel";
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

function Inner({ config }: { config: EditorConfig }) {
  const [workflowId] = useState(config.workflowId);
  const [types, setTypes] = useState<StepTypeDef[]>([]);
  const typeMap = useMemo(() => new Map(types.map((t) => [t.name, t])), [types]);
  const [ready, setReady] = useState(false);
  const [fatal, setFatal] = useState("");
  const [tab, setTab] = useState<Tab>("step");

  const view = useView();
  const graphDoc = useDocument();
  const validation = useValidation(graphDoc.graphKey, ready);
  const notices = useNotices(validation.setErrors);
  const diff = useDiffView({ workflowId, showApiError: notices.showApiError, fitSoon: view.fitSoon });
  const locked = diff.view !== null;
  const versions = useVersions({
    workflowId,
    initialName: config.workflowName,
    editUrl: config.urls.edit,
    ready,
    locked,
    graphDoc,
    notices,
    clearDiff: diff.clear,
    fitSoon: view.fitSoon,
  });
  const runs = useRunPolling(workflowId, versions.current, config.symbol);
  const clipboard = useClipboard(graphDoc, notices.flash);
  const importFile = useImport({ replace: graphDoc.replace, openWorkflow: versions.openWorkflow, notices, fitSoon: view.fitSoon });

  // Load the step types, then the latest version (or the new workflow's starting graph).
  useEffect(() => {
    (async () => {
      setTypes(await api.stepTypes());
      await versions.open(config.initialGraph);
      setReady(true);
      view.fitSoon();
    })().catch((e) => setFatal(e instanceof Error ? e.message : String(e)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const addStep = (stepType: string, at?: { x: number; y: number }) => {
    const where = at ?? view.toCanvas(window.innerWidth / 2, window.innerHeight / 2);
    graphDoc.addNode(stepType, where, typeMap.get(stepType)?.version);
    setTab("step");
  };

  const commandState: CommandState = {
    locked,
    canUndo: graphDoc.canUndo,
    canRedo: graphDoc.canRedo,
    hasSelection: hasSelection(graphDoc.doc),
    canPaste: clipboard.canPaste,
    saving: versions.saving,
    dirty: versions.dirty,
    isNew: workflowId === null,
    hasUpgrades: versions.upgrades.size > 0,
  };
  const runCommand = useCommands(commandState, {
    save: () => void versions.save(),
    undo: graphDoc.undo,
    redo: graphDoc.redo,
    deleteSelection: graphDoc.deleteSelection,
    copy: clipboard.copy,
    paste: clipboard.paste,
    selectAll: graphDoc.selectAll,
    layout: () => {
      graphDoc.layout();
      view.fitAfterMove();
    },
    fit: view.fit,
  });

  const { doc, graph } = graphDoc;
  const used = useMemo(() => usage(graph.nodes), [graph]);
  const refNames = useMemo(() => ["symbol", ...Object.keys(doc.params)], [doc.params]);
  const current = versions.current;

  if (fatal) return <div className="alert alert-error">The editor could not load: {fatal}</div>;

  return (
    <StepTypesContext.Provider value={typeMap}>
      <div
        className={`wf-editor${locked ? " diff-mode" : ""}`}
        data-ready={ready ? "true" : "false"}
        data-dirty={versions.dirty ? "true" : "false"}
        data-version={current ?? ""}
      >
        <Toolbar
          name={versions.name}
          onName={versions.setName}
          message={versions.message}
          onMessage={versions.setMessage}
          commands={commandState}
          onCommand={runCommand}
          onClone={() => void versions.clone()}
          onImport={(f) => void importFile(f)}
          exportUrl={workflowId !== null && current !== null ? api.exportUrl(workflowId) : null}
          detailUrl={workflowId !== null ? urlFor(config.urls.detail, workflowId) : null}
        />
        <Notices notice={notices.notice} onDismissNotice={notices.dismissNotice} problem={notices.problem} onDismissProblem={() => notices.setProblem(null)} />
        <div className="wf-body">
          <Palette types={types} locked={locked} onAdd={(t) => addStep(t)} />
          <Canvas
            graphDoc={graphDoc}
            diff={diff.view}
            onDiffNodesChange={diff.onNodesChange}
            onCloseDiff={diff.close}
            problems={validation}
            statuses={runs.statuses}
            upgrades={versions.upgrades}
            flash={notices.flash}
            onAddStep={addStep}
            onNodeClick={() => setTab("step")}
          >
            <ProblemsBox
              errors={validation.errors}
              ofGraph={validation.ofGraph}
              onGoTo={(nodeId) => {
                graphDoc.selectOnly(nodeId);
                setTab("step");
                view.fitNode(nodeId);
              }}
            />
          </Canvas>
          <SidePanel
            tab={tab}
            onTab={setTab}
            panes={{
              step: () => (
                <StepPane
                  selected={doc.nodes.filter((n) => n.selected)}
                  locked={locked}
                  errors={validation.errors}
                  refNames={refNames}
                  onParam={graphDoc.setParam}
                  onNode={graphDoc.setNodeSettings}
                />
              ),
              workflow: () => <WorkflowParams params={doc.params} usage={used} onChange={graphDoc.setWorkflowParam} />,
              versions: () => (
                <VersionHistory
                  versions={versions.versions}
                  current={current}
                  comparing={diff.view}
                  onCompare={(a, b) => void diff.compare(a, b)}
                  onCloseDiff={diff.close}
                  onRestore={(n) => void versions.restore(n)}
                  exportUrl={(n) => api.exportUrl(workflowId ?? 0, n)}
                />
              ),
              run: () => (
                <RunPanel
                  symbol={runs.symbol}
                  onSymbol={runs.setSymbol}
                  onRun={() => void runs.start()}
                  canRun={workflowId !== null && current !== null && !runs.running}
                  isNew={workflowId === null}
                  dirty={versions.dirty}
                  version={current}
                  run={runs.run}
                  runUrl={(id) => urlFor(config.urls.run, id)}
                  error={runs.error}
                />
              ),
            }}
          />
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
