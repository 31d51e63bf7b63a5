// Entry point: mounts the editor and the read-only previews on the elements a Django template
// marks with data attributes. Everything else on those pages stays server-rendered.

import "@xyflow/react/dist/style.css";
import "./editor.css";
import { createRoot } from "react-dom/client";
import { configureApi } from "./api";
import { Editor } from "./components/Editor";
import { Preview } from "./components/Preview";

function jsonFrom(id: string | undefined): unknown {
  if (!id) return null;
  const el = document.getElementById(id);
  return el?.textContent ? JSON.parse(el.textContent) : null;
}

function mountEditor(el: HTMLElement) {
  const d = el.dataset;
  configureApi({ base: d.apiBase, csrfToken: d.csrfToken });
  const initial = jsonFrom(d.initialGraph);
  createRoot(el).render(
    <Editor
      config={{
        workflowId: d.workflowId ? Number(d.workflowId) : null,
        workflowName: d.workflowName ?? "",
        initialGraph: initial as never,
        urls: { edit: d.editUrl ?? "/workflows/0/edit/", detail: d.detailUrl ?? "/workflows/0/", run: d.runUrl ?? "/runs/0/" },
        symbol: d.symbol ?? "",
      }}
    />,
  );
}

function mountPreview(el: HTMLElement) {
  configureApi({ base: el.dataset.apiBase });
  createRoot(el).render(<Preview graph={jsonFrom(el.dataset.graph)} />);
}

document.querySelectorAll<HTMLElement>("[data-workflow-editor]").forEach(mountEditor);
document.querySelectorAll<HTMLElement>("[data-graph-preview]").forEach(mountPreview);
