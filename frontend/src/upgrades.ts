// Nodes the server upgraded when it read a version: their step type's params changed since the
// version was saved, and the graph it returned already follows the new ones. The canvas marks
// them until the next save stores the upgraded params.

import type { NodeUpgrade } from "./types";

export const UPGRADE_TITLE =
  "This step's type changed since this version was saved; its parameters were upgraded. Save to keep the upgrade.";

/** The badge's text: "upgraded v1→v2". */
export function upgradeText(u: Pick<NodeUpgrade, "from_version" | "to_version">): string {
  return `upgraded v${u.from_version}→v${u.to_version}`;
}

/** By node id; a version from a server that does not upgrade has no list: none. */
export function upgradesByNode(upgrades: NodeUpgrade[] | undefined): Map<string, NodeUpgrade> {
  return new Map((upgrades ?? []).map((u) => [u.node, u]));
}

/** The upgrade to show on a node: only on the node that was upgraded, not a later step that
 * took its id (deleted, then one of another type added). */
export function upgradeOf(upgrades: Map<string, NodeUpgrade>, nodeId: string, stepType: string): NodeUpgrade | undefined {
  const u = upgrades.get(nodeId);
  return u && u.type === stepType ? u : undefined;
}
