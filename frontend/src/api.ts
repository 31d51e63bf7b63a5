// The REST API client. Session auth: the browser sends the session cookie; unsafe methods carry
// Django's CSRF token in X-CSRFToken (rendered into the page, or read from the csrftoken cookie).

import type { Graph, GraphError, RunDetail, StepTypeDef, Version, Workflow } from "./types";

let apiBase = "/api/";
let csrf = "";

export function configureApi(options: { base?: string; csrfToken?: string }): void {
  if (options.base) apiBase = options.base.endsWith("/") ? options.base : `${options.base}/`;
  if (options.csrfToken) csrf = options.csrfToken;
}

export function csrfToken(): string {
  if (csrf) return csrf;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** An answer other than 2xx: `detail` is the server's message, `errors` its graph errors if any. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: GraphError[] = [],
  ) {
    super(detail);
  }
}

function detailOf(body: unknown, status: number): string {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.detail === "string") return b.detail;
    // A serializer's field errors: {"field": ["message", ...]}
    const parts = Object.entries(b).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : String(v)}`);
    if (parts.length) return parts.join("; ");
  }
  return `The server answered HTTP ${status}`;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(apiBase + path.replace(/^\//, ""), {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const errors = data && typeof data === "object" && Array.isArray((data as { errors?: unknown }).errors)
      ? ((data as { errors: GraphError[] }).errors)
      : [];
    throw new ApiError(response.status, detailOf(data, response.status), errors);
  }
  return data as T;
}

export const api = {
  stepTypes: () => request<StepTypeDef[]>("GET", "step-types/"),
  workflow: (id: number) => request<Workflow>("GET", `workflows/${id}/`),
  createWorkflow: (name: string, graph: Graph, message: string) =>
    request<Workflow>("POST", "workflows/", { name, graph, message }),
  renameWorkflow: (id: number, name: string) => request<Workflow>("PATCH", `workflows/${id}/`, { name }),
  versions: (id: number) => request<Version[]>("GET", `workflows/${id}/versions/`),
  version: (id: number, n: number) => request<Version>("GET", `workflows/${id}/versions/${n}/`),
  saveVersion: (id: number, graph: Graph, message: string) =>
    request<Version>("POST", `workflows/${id}/versions/`, { graph, message }),
  restoreVersion: (id: number, n: number) => request<Version>("POST", `workflows/${id}/versions/${n}/restore/`),
  clone: (id: number, name?: string) => request<Workflow>("POST", `workflows/${id}/clone/`, name ? { name } : {}),
  exportUrl: (id: number, n?: number) => `${apiBase}workflows/${id}/export/${n ? `?version=${n}` : ""}`,
  importWorkflow: (document: unknown) => request<Workflow>("POST", "workflows/import/", document),
  validate: (graph: Graph) => request<{ valid: boolean; errors: GraphError[] }>("POST", "graphs/validate/", { graph }),
  startRun: (workflow: number, symbol: string, version?: number) =>
    request<RunDetail>("POST", "runs/", version ? { workflow, symbol, version } : { workflow, symbol }),
  run: (id: number) => request<RunDetail>("GET", `runs/${id}/`),
};
