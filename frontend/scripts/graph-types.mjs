// The editor's graph types (src/generated/graph.ts) from the graph's JSON Schema
// (src/generated/graph.schema.json, written by `manage.py graph_schema` from workflows/graph.py)
// with json-schema-to-typescript. `npm run gen:types` writes the file; src/graphTypes.test.ts
// fails when it is stale. `make types` regenerates both files.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { compile } from "json-schema-to-typescript";

const SCHEMA_FILE = new URL("../src/generated/graph.schema.json", import.meta.url);
const TYPES_FILE = new URL("../src/generated/graph.ts", import.meta.url);

const OPTIONS = {
  bannerComment:
    "// Generated from graph.schema.json (itself from workflows/graph.py) by `make types`. Do not edit.\n" +
    "// src/types.ts gives these the names the editor uses.",
  // Every model under $defs, not only those a graph reaches: GraphErrorSpec too.
  unreachableDefinitions: true,
  format: true,
};

/** The TypeScript for a JSON Schema text; by default the committed schema's. */
export async function graphTypes(schemaText = readFileSync(SCHEMA_FILE, "utf8")) {
  return compile(JSON.parse(schemaText), "GraphSchema", OPTIONS);
}

/** The committed TypeScript. */
export function committedTypes() {
  return readFileSync(TYPES_FILE, "utf8");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = await graphTypes();
  let current = null;
  try {
    current = committedTypes();
  } catch {
    // not written yet
  }
  if (text === current) {
    console.log("src/generated/graph.ts unchanged");
  } else {
    writeFileSync(TYPES_FILE, text);
    console.log("wrote src/generated/graph.ts");
  }
}
