import { describe, expect, it } from "vitest";
import { references, usage } from "./refs";

describe("{{name}} references", () => {
  it("are found anywhere in a value", () => {
    expect([...references({ a: "{{ period_1 }}", b: ["x {{bar_1}}", { c: "{{symbol}}" }], d: 3 })]).toEqual(["period_1", "bar_1", "symbol"]);
  });

  it("list the nodes using each name", () => {
    const nodes = [
      { id: "fetch", params: { period: "{{period_1}}", symbol: "{{symbol}}" } },
      { id: "fetch_2", params: { period: "{{period_1}}" } },
    ];
    expect(Object.fromEntries(usage(nodes))).toEqual({ period_1: ["fetch", "fetch_2"], symbol: ["fetch"] });
  });
});
