// Running the saved version shown, and following the run: it is read again every second until
// it ends, and each node gets its step's status.

import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError, api } from "../api";
import { RUN_FINISHED, type RunDetail } from "../types";

const RUN_POLL_MS = 1000;

export function useRunPolling(workflowId: number | null, version: number | null, initialSymbol: string) {
  const [symbol, setSymbol] = useState(initialSymbol);
  const [run, setRun] = useState<RunDetail | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    if (!run || RUN_FINISHED.includes(run.status)) return;
    const timer = setTimeout(() => {
      api
        .run(run.id)
        .then(setRun)
        .catch((e) => setError(e instanceof Error ? e.message : String(e)));
    }, RUN_POLL_MS);
    return () => clearTimeout(timer);
  }, [run]);

  const start = useCallback(async () => {
    if (workflowId === null || version === null) return;
    setError("");
    try {
      setRun(await api.startRun(workflowId, symbol.trim(), version));
    } catch (e) {
      setError(e instanceof ApiError ? e.detail : String(e));
    }
  }, [workflowId, version, symbol]);

  /** Step status by node id. */
  const statuses = useMemo(() => new Map((run?.steps ?? []).map((s) => [s.node_id, s.status])), [run]);
  const running = !!run && !RUN_FINISHED.includes(run.status);

  return { symbol, setSymbol, run, error, start, statuses, running };
}
