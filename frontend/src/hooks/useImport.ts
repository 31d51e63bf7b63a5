// Import from a JSON file: a workflow export becomes a new workflow (the server validates it);
// a bare graph replaces the canvas, for the user to save as a version.

import { useCallback } from "react";
import { api } from "../api";
import { parseGraph } from "../graph";
import type { Graph } from "../types";
import type { Notices } from "./useNotices";

interface Options {
  replace: (graph: Graph) => void;
  openWorkflow: (id: number) => void;
  notices: Pick<Notices, "flash" | "setProblem" | "showApiError">;
  fitSoon: () => void;
}

const why = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function useImport({ replace, openWorkflow, notices, fitSoon }: Options) {
  const { flash, setProblem, showApiError } = notices;
  return useCallback(
    async (file: File) => {
      setProblem(null);
      let json: unknown;
      try {
        json = JSON.parse(await file.text());
      } catch (e) {
        setProblem({ detail: `${file.name} is not JSON: ${why(e)}`, errors: [] });
        return;
      }
      if (!!json && typeof json === "object" && "format" in json) {
        try {
          const wf = await api.importWorkflow(json);
          openWorkflow(wf.id);
        } catch (e) {
          showApiError(e, `${file.name} was not imported`, false); // its errors are not the canvas's
        }
        return;
      }
      try {
        replace(parseGraph(json));
        flash(`Loaded ${file.name} into the canvas: save to keep it`);
        fitSoon();
      } catch (e) {
        setProblem({ detail: `${file.name}: ${why(e)}`, errors: [] });
      }
    },
    [replace, openWorkflow, flash, setProblem, showApiError, fitSoon],
  );
}
