import { describe, expect, it } from "vitest";
import { UPGRADE_TITLE, upgradeOf, upgradeText, upgradesByNode } from "./upgrades";

const CHART = { node: "chart", type: "strategies.render_chart", from_version: 1, to_version: 2 };

describe("node upgrades", () => {
  it("are none for a version from a server without step type versions", () => {
    expect(upgradesByNode(undefined).size).toBe(0);
    expect(upgradesByNode([]).size).toBe(0);
  });

  it("are shown on the node upgraded, as from → to, saying to save", () => {
    const byNode = upgradesByNode([CHART]);
    expect(upgradeOf(byNode, "chart", "strategies.render_chart")).toBe(CHART);
    expect(upgradeText(CHART)).toBe("upgraded v1→v2");
    expect(UPGRADE_TITLE).toMatch(/Save to keep the upgrade\.$/);
  });

  it("are not shown on another node, nor on a later step of another type under the same id", () => {
    const byNode = upgradesByNode([CHART]);
    expect(upgradeOf(byNode, "fetch", "market.fetch_bars")).toBeUndefined();
    expect(upgradeOf(byNode, "chart", "notify.email")).toBeUndefined();
  });
});
