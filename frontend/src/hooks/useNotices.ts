// What the editor tells the user: a notice that goes away by itself, and a problem (a refused
// save, a bad import) that stays until dismissed.

import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../api";
import type { GraphError } from "../types";

const NOTICE_MS = 6000;

export type Notice = { text: string; kind: "info" | "error" };
export type Problem = { detail: string; errors: GraphError[] };

/** `onCanvasErrors` takes the graph errors of a refused request about what is on the canvas. */
export function useNotices(onCanvasErrors: (errors: GraphError[]) => void) {
  const [notice, setNotice] = useState<Notice | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);

  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice]);

  const flash = useCallback((text: string, kind: Notice["kind"] = "info") => setNotice({ text, kind }), []);

  /** A failed request: the server's answer as a problem, anything else as a notice. */
  const showApiError = useCallback(
    (e: unknown, what: string, aboutCanvas = true) => {
      if (e instanceof ApiError) {
        if (aboutCanvas && e.errors.length) onCanvasErrors(e.errors);
        setProblem({ detail: `${what}: ${e.detail}`, errors: e.errors });
      } else flash(`${what}: ${e instanceof Error ? e.message : String(e)}`, "error");
    },
    [flash, onCanvasErrors],
  );

  return { notice, dismissNotice: () => setNotice(null), flash, problem, setProblem, showApiError };
}

export type Notices = ReturnType<typeof useNotices>;
