// The keyboard side of the commands table (commands.ts): shortcuts run the same commands as
// the toolbar's buttons, under the same conditions.

import { useCallback, useEffect, useRef } from "react";
import { dispatchKey, runCommand, type CommandActions, type CommandId, type CommandState } from "../commands";

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

/** Listens to the keyboard; returns the function the buttons call to run a command. */
export function useCommands(state: CommandState, actions: CommandActions): (id: CommandId) => void {
  // The listener is added once and reads the latest state and actions from here.
  const latest = useRef({ state, actions });
  latest.current = { state, actions };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const press = { key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, shiftKey: e.shiftKey, typing: typing(e.target) };
      if (dispatchKey(press, latest.current.state, latest.current.actions)) e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  return useCallback((id: CommandId) => void runCommand(id, latest.current.state, latest.current.actions), []);
}
