// The toolbar's buttons are the commands table's: same text, tooltip and enabled state. (The
// keyboard reads the same table: commands.test.ts.)

import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { COMMANDS, command, titleOf, type CommandState } from "../commands";
import { TOOLBAR_COMMANDS, Toolbar } from "./Toolbar";

const STATE: CommandState = {
  locked: false,
  canUndo: true,
  canRedo: false,
  hasSelection: false,
  canPaste: true,
  saving: false,
  dirty: true,
  isNew: false,
  hasUpgrades: false,
};

type Button = { text: string; attrs: Record<string, string> };

function buttons(state: CommandState): Button[] {
  const html = renderToStaticMarkup(
    <Toolbar
      name="w"
      onName={() => {}}
      message=""
      onMessage={() => {}}
      commands={state}
      onCommand={() => {}}
      onClone={() => {}}
      onImport={() => {}}
      exportUrl={null}
      detailUrl={null}
    />,
  );
  return [...html.matchAll(/<button([^>]*)>([^<]*)<\/button>/g)].map((m) => ({
    text: m[2],
    attrs: Object.fromEntries([...m[1].matchAll(/([\w-]+)(?:="([^"]*)")?/g)].map((a) => [a[1], a[2] ?? ""])),
  }));
}

describe("the toolbar", () => {
  it("has a button for every command but Save (the form's submit button), in the table's words", () => {
    expect([...TOOLBAR_COMMANDS, "save"].sort()).toEqual(COMMANDS.map((c) => c.id).sort());
    const shown = buttons(STATE).filter((b) => b.attrs["data-command"]);
    expect(shown.map((b) => [b.attrs["data-command"], b.text, b.attrs.title])).toEqual(
      TOOLBAR_COMMANDS.map((id) => [id, command(id).label, titleOf(command(id))]),
    );
  });

  it("enables a button exactly when its command is enabled", () => {
    const states: CommandState[] = [STATE, { ...STATE, locked: true }, { ...STATE, hasSelection: true, canUndo: false, canRedo: true }];
    for (const state of states) {
      const shown = buttons(state).filter((b) => b.attrs["data-command"]);
      expect(shown).toHaveLength(TOOLBAR_COMMANDS.length);
      for (const b of shown) {
        const c = command(b.attrs["data-command"] as (typeof TOOLBAR_COMMANDS)[number]);
        expect("disabled" in b.attrs, `${c.id} in ${JSON.stringify(state)}`).toBe(!c.enabled(state));
      }
    }
  });

  it("enables Save as the save command is, whatever its text", () => {
    const save = (state: CommandState) => buttons(state).find((b) => b.attrs.type === "submit")!;
    expect(save(STATE)).toMatchObject({ text: "Save", attrs: { title: titleOf(command("save")) } });
    expect("disabled" in save({ ...STATE, dirty: false }).attrs).toBe(true);
    expect(save({ ...STATE, dirty: false, isNew: true }).text).toBe("Create");
    expect("disabled" in save({ ...STATE, dirty: false, isNew: true }).attrs).toBe(false);
    expect(save({ ...STATE, saving: true })).toMatchObject({ text: "Saving…", attrs: { disabled: "" } });
  });
});
