import { describe, expect, it } from "vitest";
import { displayValue, fieldsOf, isRef, parseInput } from "./schema";
import type { JsonSchema } from "./types";

// Trimmed from what pydantic gives for market.fetch_bars, strategies.render_chart and ai.agent_team.
const SCHEMA: JsonSchema = {
  $defs: {
    Mode: { enum: ["round_robin", "selector"], type: "string", title: "Mode" },
    AgentSpec: { type: "object", properties: { name: { type: "string" } } },
  },
  properties: {
    symbol: { type: "string", title: "Symbol", minLength: 1 },
    bar: { default: "1d", enum: ["1m", "1h", "1d", "1w"], type: "string", title: "Bar" },
    overlays: { type: "array", items: { enum: ["sma_20", "bollinger"], type: "string" }, title: "Overlays" },
    bars: { default: 250, type: "integer", minimum: 20 },
    risk_pct: { default: 0.01, type: "number" },
    title: { anyOf: [{ type: "string", maxLength: 120 }, { type: "null" }], default: null },
    end: { anyOf: [{ type: "string", format: "date" }, { type: "null" }], default: null },
    mode: { $ref: "#/$defs/Mode", default: "round_robin" },
    agents: { type: "array", items: { $ref: "#/$defs/AgentSpec" } },
    instructions: { type: "string", maxLength: 2000, default: "" },
    flag: { type: "boolean", default: false },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["symbol"],
  type: "object",
};

describe("fieldsOf", () => {
  const fields = Object.fromEntries(fieldsOf(SCHEMA).map((f) => [f.name, f]));

  it("maps each JSON schema type to a form field", () => {
    expect(Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.kind]))).toEqual({
      symbol: "text",
      bar: "enum",
      overlays: "multienum",
      bars: "integer",
      risk_pct: "number",
      title: "text",
      end: "text",
      mode: "enum",
      agents: "json",
      instructions: "textarea",
      flag: "boolean",
      tags: "list",
    });
  });

  it("keeps enums' options, required flags, nullability and defaults", () => {
    expect(fields.bar.options).toEqual(["1m", "1h", "1d", "1w"]);
    expect(fields.overlays.options).toEqual(["sma_20", "bollinger"]);
    expect(fields.mode.options).toEqual(["round_robin", "selector"]);
    expect(fields.mode.default).toBe("round_robin");
    expect(fields.symbol.required).toBe(true);
    expect(fields.bar.required).toBe(false);
    expect(fields.title.nullable).toBe(true);
  });
});

describe("parseInput", () => {
  const f = Object.fromEntries(fieldsOf(SCHEMA).map((x) => [x.name, x]));

  it("gives numbers for number fields, and keeps anything else as typed for the server to judge", () => {
    expect(parseInput(f.bars, "300")).toEqual({ ok: true, value: 300 });
    expect(parseInput(f.risk_pct, "0.02")).toEqual({ ok: true, value: 0.02 });
    expect(parseInput(f.bars, "abc")).toEqual({ ok: true, value: "abc" });
  });

  it("sends a {{param}} reference as the string, in any field", () => {
    expect(parseInput(f.bars, "{{bars_shown}}")).toEqual({ ok: true, value: "{{bars_shown}}" });
    expect(parseInput(f.flag, "{{live}}")).toEqual({ ok: true, value: "{{live}}" });
    expect(parseInput(f.tags, " {{tags}} ")).toEqual({ ok: true, value: "{{tags}}" });
    expect(isRef("{{ min_r }}")).toBe(true);
    expect(isRef("x {{min_r}}")).toBe(false);
  });

  it("clears an optional field to its default, keeps a required one empty", () => {
    expect(parseInput(f.bars, "  ")).toEqual({ ok: true, value: undefined });
    expect(parseInput(f.symbol, "")).toEqual({ ok: true, value: "" });
  });

  it("splits lists and parses JSON", () => {
    expect(parseInput(f.tags, "a, b\nc")).toEqual({ ok: true, value: ["a", "b", "c"] });
    expect(parseInput(f.agents, '[{"name": "x"}]')).toEqual({ ok: true, value: [{ name: "x" }] });
    expect(parseInput(f.agents, "[{")).toEqual({ ok: false, error: "Not valid JSON" });
  });

  it("shows values back as text", () => {
    expect(displayValue(f.bars, 250)).toBe("250");
    expect(displayValue(f.tags, ["a", "b"])).toBe("a, b");
    expect(displayValue(f.bars, undefined)).toBe("");
    expect(displayValue(f.agents, [{ name: "x" }])).toContain('"name": "x"');
  });
});
