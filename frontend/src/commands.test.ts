import { describe, expect, it, vi } from "vitest";
import {
  COMMANDS,
  command,
  commandForKey,
  dispatchKey,
  matches,
  runCommand,
  shortcutText,
  titleOf,
  type CommandActions,
  type CommandId,
  type CommandState,
  type KeyPress,
  type Shortcut,
} from "./commands";

const ALL_ON: CommandState = {
  locked: false,
  canUndo: true,
  canRedo: true,
  hasSelection: true,
  canPaste: true,
  saving: false,
  dirty: true,
  isNew: false,
  hasUpgrades: false,
};

function spies(): CommandActions {
  return {
    save: vi.fn(),
    undo: vi.fn(),
    redo: vi.fn(),
    deleteSelection: vi.fn(),
    copy: vi.fn(),
    paste: vi.fn(),
    selectAll: vi.fn(),
    layout: vi.fn(),
    fit: vi.fn(),
  };
}

/** The actions a run called, by name. */
function called(a: CommandActions): string[] {
  return Object.entries(a)
    .filter(([, f]) => (f as ReturnType<typeof vi.fn>).mock.calls.length > 0)
    .map(([name]) => name);
}

function press(key: string, mods: { ctrl?: boolean; meta?: boolean; shift?: boolean } = {}, typing = false): KeyPress {
  return { key, ctrlKey: !!mods.ctrl, metaKey: !!mods.meta, shiftKey: !!mods.shift, typing };
}

/** A key press that a shortcut describes (an unset modifier left up), as the browser reports it. */
function pressOf(s: Shortcut): KeyPress {
  const key = s.shift && s.key.length === 1 ? s.key.toUpperCase() : s.key === "delete" ? "Delete" : s.key === "backspace" ? "Backspace" : s.key;
  return press(key, { ctrl: s.mod, shift: s.shift });
}

describe("the commands table", () => {
  it("has each command once", () => {
    const ids = COMMANDS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("runs the same action from every shortcut of a command as from its button", () => {
    for (const c of COMMANDS) {
      const fromButton = spies();
      expect(runCommand(c.id, ALL_ON, fromButton)).toBe(true);
      expect(called(fromButton)).toHaveLength(1);
      for (const s of c.keys) {
        expect(commandForKey(pressOf(s))?.id, `${c.id}: ${shortcutText(s)}`).toBe(c.id);
        const fromKey = spies();
        dispatchKey(pressOf(s), ALL_ON, fromKey);
        expect(called(fromKey), `${c.id}: ${shortcutText(s)}`).toEqual(called(fromButton));
      }
    }
  });

  it("gives no key press to two commands", () => {
    const keys = ["a", "c", "f", "l", "s", "v", "y", "z", "Delete", "Backspace"];
    for (const key of keys)
      for (const ctrl of [false, true])
        for (const shift of [false, true]) {
          const p = press(shift && key.length === 1 ? key.toUpperCase() : key, { ctrl, shift });
          const matching = COMMANDS.filter((c) => c.keys.some((s) => matches(s, p)));
          expect(matching.length, JSON.stringify(p)).toBeLessThanOrEqual(1);
        }
  });

  it("keeps the editor's shortcuts", () => {
    const expected: [KeyPress, CommandId | undefined][] = [
      [press("z", { ctrl: true }), "undo"],
      [press("z", { meta: true }), "undo"], // ⌘ on a Mac
      [press("Z", { ctrl: true, shift: true }), "redo"],
      [press("y", { ctrl: true }), "redo"],
      [press("Delete"), "delete"],
      [press("Backspace"), "delete"],
      [press("c", { ctrl: true }), "copy"],
      [press("v", { ctrl: true }), "paste"],
      [press("a", { ctrl: true }), "selectAll"],
      [press("s", { ctrl: true }), "save"],
      [press("S", { ctrl: true, shift: true }), "save"],
      [press("L", { shift: true }), "layout"],
      [press("F", { shift: true }), "fit"],
      [press("F", { ctrl: true, shift: true }), undefined], // the browser's, not ours
      [press("z"), undefined],
      [press("l"), undefined],
      [press("f"), undefined],
    ];
    for (const [p, id] of expected) expect(commandForKey(p)?.id, JSON.stringify(p)).toBe(id);
  });

  it("shows each command's first shortcut in its button's tooltip", () => {
    expect(Object.fromEntries(COMMANDS.map((c) => [c.id, titleOf(c)]))).toEqual({
      save: "Save as a new version (Ctrl+S)",
      undo: "Undo (Ctrl+Z)",
      redo: "Redo (Ctrl+Shift+Z)",
      delete: "Delete the selection (Delete)",
      copy: "Copy (Ctrl+C)",
      paste: "Paste (Ctrl+V)",
      selectAll: "Select all (Ctrl+A)",
      layout: "Auto-layout (Shift+L)",
      fit: "Fit view (Shift+F)",
    });
  });
});

describe("when a command is enabled", () => {
  const enabled = (id: CommandId, s: Partial<CommandState>) => command(id).enabled({ ...ALL_ON, ...s });

  it("allows only Fit view while a diff is shown", () => {
    const open = COMMANDS.filter((c) => c.enabled({ ...ALL_ON, locked: true })).map((c) => c.id);
    expect(open).toEqual(["fit"]);
  });

  it("saves only changes, or a new workflow, and not twice at once", () => {
    expect(enabled("save", { dirty: false })).toBe(false);
    expect(enabled("save", { dirty: false, isNew: true })).toBe(true);
    // A version the server upgraded on reading may be saved as it is, to keep the upgrade.
    expect(enabled("save", { dirty: false, hasUpgrades: true })).toBe(true);
    expect(enabled("save", { saving: true })).toBe(false);
  });

  it("needs something to undo, redo, delete, copy or paste", () => {
    expect(enabled("undo", { canUndo: false })).toBe(false);
    expect(enabled("redo", { canRedo: false })).toBe(false);
    expect(enabled("redo", { canUndo: false })).toBe(true);
    for (const id of ["delete", "copy"] as CommandId[]) expect(enabled(id, { hasSelection: false })).toBe(false);
    expect(enabled("paste", { canPaste: false })).toBe(false);
    expect(enabled("paste", { hasSelection: false })).toBe(true);
    expect(enabled("selectAll", { hasSelection: false })).toBe(true);
  });

  it("runs a disabled command neither from its button nor from its keys", () => {
    const a = spies();
    const state = { ...ALL_ON, canUndo: false };
    expect(runCommand("undo", state, a)).toBe(false);
    dispatchKey(press("z", { ctrl: true }), state, a);
    expect(called(a)).toEqual([]);
  });
});

describe("the keyboard", () => {
  it("leaves keys to a text field being typed in, except Ctrl+S", () => {
    const a = spies();
    for (const c of COMMANDS) for (const s of c.keys) dispatchKey({ ...pressOf(s), typing: true }, ALL_ON, a);
    expect(called(a)).toEqual(["save"]);
  });

  it("stops the browser's own action as the table says", () => {
    const a = spies();
    expect(dispatchKey(press("z", { ctrl: true }), ALL_ON, a)).toBe(true);
    expect(dispatchKey(press("z", { ctrl: true }), { ...ALL_ON, canUndo: false }, a)).toBe(false);
    expect(dispatchKey(press("c", { ctrl: true }), ALL_ON, a)).toBe(false); // the system copy goes on too
    expect(dispatchKey(press("q", { ctrl: true }), ALL_ON, a)).toBe(false);
    // Never the browser's "Save page" dialog: not with nothing to save, not in a diff, not in a field.
    expect(dispatchKey(press("s", { ctrl: true }), { ...ALL_ON, dirty: false }, a)).toBe(true);
    expect(dispatchKey(press("s", { ctrl: true }), { ...ALL_ON, locked: true }, a)).toBe(true);
    expect(dispatchKey(press("s", { ctrl: true }, true), ALL_ON, a)).toBe(true);
  });
});
