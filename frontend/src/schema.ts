// Form fields from a step type's JSON schema (pydantic's model_json_schema), and the rules
// turning what a user typed into a param value. Any field may hold a {{name}} reference; such a
// value is sent as the string, whatever the field's type: the server resolves it.

import type { JsonSchema } from "./types";

export type FieldKind = "text" | "textarea" | "number" | "integer" | "boolean" | "enum" | "multienum" | "list" | "json";

export interface FieldSpec {
  name: string;
  title: string;
  description: string;
  kind: FieldKind;
  required: boolean;
  nullable: boolean;
  default?: unknown;
  options?: string[]; // enum and multienum
  itemKind?: "text" | "number" | "integer"; // list
  schema: JsonSchema;
}

const REF = /\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/;
const WHOLE_REF = /^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$/;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

export function isRef(value: unknown): value is string {
  return typeof value === "string" && WHOLE_REF.test(value);
}

export function hasRef(value: unknown): boolean {
  return typeof value === "string" && REF.test(value);
}

export function refName(value: string): string | null {
  return WHOLE_REF.exec(value)?.[1] ?? null;
}

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let s = schema;
  for (let depth = 0; depth < 10; depth++) {
    if (s.$ref) {
      const name = s.$ref.replace(/^#\/\$defs\//, "");
      const target = root.$defs?.[name];
      if (!target) return s;
      // Keep the property's own title, description and default over the definition's.
      const { $ref: _ref, ...own } = s;
      s = { ...target, ...own };
      continue;
    }
    if (s.allOf && s.allOf.length === 1) {
      const { allOf, ...own } = s;
      s = { ...allOf[0], ...own };
      continue;
    }
    break;
  }
  return s;
}

function typeOf(s: JsonSchema): string | undefined {
  return Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
}

export function fieldOf(name: string, raw: JsonSchema, root: JsonSchema, required: boolean): FieldSpec {
  let s = resolve(raw, root);
  let nullable = false;
  if (s.anyOf) {
    const branches = s.anyOf.map((b) => resolve(b, root));
    const real = branches.filter((b) => b.type !== "null");
    nullable = real.length < branches.length;
    if (real.length === 1) {
      const { anyOf: _anyOf, ...own } = s;
      s = { ...real[0], ...own };
    }
  }
  const base = {
    name,
    title: s.title ?? name,
    description: s.description ?? "",
    required,
    nullable,
    default: s.default,
    schema: s,
  };
  const type = typeOf(s);
  if (s.enum) return { ...base, kind: "enum", options: s.enum.map(String) };
  if (type === "boolean") return { ...base, kind: "boolean" };
  if (type === "integer") return { ...base, kind: "integer" };
  if (type === "number") return { ...base, kind: "number" };
  if (type === "string") return { ...base, kind: (s.maxLength ?? 0) > 200 ? "textarea" : "text" };
  if (type === "array" && s.items) {
    const item = resolve(s.items, root);
    if (item.enum) return { ...base, kind: "multienum", options: item.enum.map(String) };
    const itemType = typeOf(item);
    if (itemType === "string") return { ...base, kind: "list", itemKind: "text" };
    if (itemType === "integer" || itemType === "number") return { ...base, kind: "list", itemKind: itemType };
  }
  return { ...base, kind: "json" };
}

export function fieldsOf(schema: JsonSchema): FieldSpec[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, s]) => fieldOf(name, s, schema, required.has(name)));
}

function scalar(kind: "text" | "number" | "integer", text: string): unknown {
  if (kind !== "text" && NUMBER.test(text.trim())) return Number(text.trim());
  return text; // a reference, or something the server will report as invalid
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/** The param value for text a user typed into a field; `undefined` means "not set" (the default). */
export function parseInput(field: FieldSpec, text: string): Parsed {
  const trimmed = text.trim();
  if (trimmed === "") {
    if (field.required) return { ok: true, value: field.kind === "text" || field.kind === "textarea" ? "" : undefined };
    return { ok: true, value: undefined };
  }
  if (isRef(trimmed)) return { ok: true, value: trimmed };
  switch (field.kind) {
    case "number":
    case "integer":
      return { ok: true, value: scalar(field.kind, trimmed) };
    case "list":
      return {
        ok: true,
        value: text
          .split(/[\n,]/)
          .map((t) => t.trim())
          .filter(Boolean)
          .map((t) => scalar(field.itemKind ?? "text", t)),
      };
    case "json":
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch {
        return { ok: false, error: "Not valid JSON" };
      }
    case "boolean":
      if (trimmed === "true" || trimmed === "false") return { ok: true, value: trimmed === "true" };
      return { ok: true, value: text };
    default:
      return { ok: true, value: text };
  }
}

/** The text shown in a field's input for a param value. */
export function displayValue(field: FieldSpec, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (field.kind === "list" && Array.isArray(value)) return value.join(", ");
  if (field.kind === "json") return JSON.stringify(value, null, 2);
  return String(value);
}

/** The first segment of a server error's field ("overlays.0" -> "overlays"). */
export function fieldRoot(field: string | null): string | null {
  return field === null ? null : field.split(".")[0];
}
