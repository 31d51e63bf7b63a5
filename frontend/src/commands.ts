// The editor's commands in one table that both the toolbar's buttons and the keyboard read, so
// a shortcut and its button cannot disagree on what they do, when they may, or what the
// button's tooltip says the shortcut is.

export type CommandId = "save" | "undo" | "redo" | "delete" | "copy" | "paste" | "selectAll" | "layout" | "fit";

/** What decides whether a command may run now. */
export interface CommandState {
  locked: boolean; // a diff is shown: nothing may be edited
  canUndo: boolean;
  canRedo: boolean;
  hasSelection: boolean; // nodes or edges
  canPaste: boolean;
  saving: boolean;
  dirty: boolean;
  isNew: boolean; // not created yet: Create is allowed without changes
  hasUpgrades: boolean; // the server upgraded nodes of the version shown: saving keeps the upgrade
}

export interface CommandActions {
  save: () => void;
  undo: () => void;
  redo: () => void;
  deleteSelection: () => void;
  copy: () => void;
  paste: () => void;
  selectAll: () => void;
  layout: () => void;
  fit: () => void;
}

/** A key press a command answers. `mod` is Ctrl, or ⌘ on a Mac. A modifier left out may be up or
 * down (Ctrl+Shift+S saves too), one given must be as given (Shift+Ctrl+Z is redo, not undo). */
export interface Shortcut {
  key: string; // KeyboardEvent.key, lower case
  mod?: boolean;
  shift?: boolean;
}

export interface Command {
  id: CommandId;
  label: string; // the button's text
  description: string; // the button's tooltip, before the shortcut
  keys: Shortcut[]; // the first is the one the tooltip shows
  /** Also while the focus is in a text field (where the other keys type or edit text). */
  whileTyping?: boolean;
  /** Whether the browser's own action for the keys is stopped: when the command runs, or
   * always (Ctrl+S must never open the browser's "Save page" dialog, even with nothing to save). */
  preventDefault: "when-run" | "always" | "never";
  enabled: (s: CommandState) => boolean;
  run: (a: CommandActions) => void;
}

const editable = (s: CommandState) => !s.locked;

export const COMMANDS: readonly Command[] = [
  {
    id: "save",
    label: "Save",
    description: "Save as a new version",
    keys: [{ key: "s", mod: true }],
    whileTyping: true,
    preventDefault: "always",
    enabled: (s) => !s.saving && !s.locked && (s.dirty || s.isNew || s.hasUpgrades),
    run: (a) => a.save(),
  },
  {
    id: "undo",
    label: "Undo",
    description: "Undo",
    keys: [{ key: "z", mod: true, shift: false }],
    preventDefault: "when-run",
    enabled: (s) => editable(s) && s.canUndo,
    run: (a) => a.undo(),
  },
  {
    id: "redo",
    label: "Redo",
    description: "Redo",
    keys: [
      { key: "z", mod: true, shift: true },
      { key: "y", mod: true },
    ],
    preventDefault: "when-run",
    enabled: (s) => editable(s) && s.canRedo,
    run: (a) => a.redo(),
  },
  {
    id: "delete",
    label: "Delete",
    description: "Delete the selection",
    keys: [{ key: "delete" }, { key: "backspace" }],
    preventDefault: "when-run",
    enabled: (s) => editable(s) && s.hasSelection,
    run: (a) => a.deleteSelection(),
  },
  {
    id: "copy",
    label: "Copy",
    description: "Copy",
    keys: [{ key: "c", mod: true }],
    preventDefault: "never",
    enabled: (s) => editable(s) && s.hasSelection,
    run: (a) => a.copy(),
  },
  {
    id: "paste",
    label: "Paste",
    description: "Paste",
    keys: [{ key: "v", mod: true }],
    preventDefault: "never",
    enabled: (s) => editable(s) && s.canPaste,
    run: (a) => a.paste(),
  },
  {
    id: "selectAll",
    label: "Select all",
    description: "Select all",
    keys: [{ key: "a", mod: true }],
    preventDefault: "when-run",
    enabled: editable,
    run: (a) => a.selectAll(),
  },
  {
    id: "layout",
    label: "Auto-layout",
    description: "Auto-layout",
    keys: [{ key: "l", shift: true }],
    preventDefault: "never",
    enabled: editable,
    run: (a) => a.layout(),
  },
  {
    id: "fit",
    label: "Fit view",
    description: "Fit view",
    keys: [{ key: "f", mod: false, shift: true }],
    preventDefault: "never",
    enabled: () => true, // looking is allowed while a diff is shown
    run: (a) => a.fit(),
  },
];

const BY_ID = new Map(COMMANDS.map((c) => [c.id, c]));

export function command(id: CommandId): Command {
  return BY_ID.get(id)!;
}

/** "Ctrl+Shift+Z", "Shift+L", "Delete". */
export function shortcutText(s: Shortcut): string {
  const key = s.key.length === 1 ? s.key.toUpperCase() : s.key[0].toUpperCase() + s.key.slice(1);
  return `${s.mod ? "Ctrl+" : ""}${s.shift ? "Shift+" : ""}${key}`;
}

/** The button's tooltip: "Undo (Ctrl+Z)". */
export function titleOf(c: Command): string {
  return c.keys.length ? `${c.description} (${shortcutText(c.keys[0])})` : c.description;
}

/** The parts of a KeyboardEvent the table needs, and whether the focus is in a text field. */
export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  typing: boolean;
}

/** Whether a key press is the shortcut (Ctrl or ⌘ both count as `mod`). */
export function matches(s: Shortcut, p: KeyPress): boolean {
  const mod = p.ctrlKey || p.metaKey;
  return s.key === p.key.toLowerCase() && (s.mod === undefined || s.mod === mod) && (s.shift === undefined || s.shift === p.shiftKey);
}

/** The command a key press is a shortcut of, if any (typing or not). */
export function commandForKey(p: KeyPress): Command | undefined {
  return COMMANDS.find((c) => c.keys.some((s) => matches(s, p)));
}

/** Run a command if it is enabled (the toolbar's buttons and the keyboard both come here). */
export function runCommand(id: CommandId, state: CommandState, actions: CommandActions): boolean {
  const c = command(id);
  if (!c.enabled(state)) return false;
  c.run(actions);
  return true;
}

/** Handle a key press: runs its command if it may run; says whether to stop the browser's own action. */
export function dispatchKey(p: KeyPress, state: CommandState, actions: CommandActions): boolean {
  const c = commandForKey(p);
  if (!c || (p.typing && !c.whileTyping)) return false;
  const ran = runCommand(c.id, state, actions);
  return c.preventDefault === "always" || (c.preventDefault === "when-run" && ran);
}
