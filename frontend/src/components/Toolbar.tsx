import { useRef } from "react";
import { command, titleOf, type CommandId, type CommandState } from "../commands";

/** The toolbar's command buttons, in order; their text, tooltip and state come from the table. */
export const TOOLBAR_COMMANDS: CommandId[] = ["undo", "redo", "delete", "copy", "paste", "selectAll", "layout", "fit"];

export interface ToolbarProps {
  name: string;
  onName: (name: string) => void;
  message: string;
  onMessage: (m: string) => void;
  commands: CommandState;
  onCommand: (id: CommandId) => void;
  onClone: () => void;
  onImport: (file: File) => void;
  exportUrl: string | null;
  detailUrl: string | null;
}

export function Toolbar(p: ToolbarProps) {
  const fileInput = useRef<HTMLInputElement>(null);
  const { locked, saving, dirty, isNew } = p.commands;
  const save = command("save");
  return (
    <div className="wf-toolbar" role="toolbar" aria-label="Editor">
      <input
        className="wf-name"
        aria-label="Workflow name"
        value={p.name}
        placeholder="Workflow name"
        maxLength={200}
        onChange={(e) => p.onName(e.target.value)}
        disabled={locked}
      />
      <form
        className="wf-save"
        onSubmit={(e) => {
          e.preventDefault();
          p.onCommand("save");
        }}
      >
        <input
          aria-label="Version message"
          name="message"
          placeholder={isNew ? "Message (optional)" : "What changed? (optional)"}
          value={p.message}
          maxLength={500}
          onChange={(e) => p.onMessage(e.target.value)}
          disabled={locked}
        />
        <button type="submit" className="btn btn-primary" disabled={!save.enabled(p.commands)} title={titleOf(save)}>
          {saving ? "Saving…" : isNew ? "Create" : save.label}
        </button>
        <span className={`wf-dirty${dirty ? " on" : ""}`} aria-live="polite">
          {dirty ? "unsaved changes" : "saved"}
        </span>
      </form>
      <div className="wf-tools">
        {TOOLBAR_COMMANDS.map(command).map((c) => (
          <button
            key={c.id}
            type="button"
            className="btn btn-small"
            onClick={() => p.onCommand(c.id)}
            disabled={!c.enabled(p.commands)}
            title={titleOf(c)}
            data-command={c.id}
          >
            {c.label}
          </button>
        ))}
        <span className="wf-sep" />
        {p.exportUrl && (
          <a className="btn btn-small" href={p.exportUrl} download title="Download the latest saved version as JSON">
            Export
          </a>
        )}
        <button type="button" className="btn btn-small" onClick={() => fileInput.current?.click()} disabled={locked} title="Import a workflow export (or a bare graph) from a JSON file">
          Import
        </button>
        <input
          ref={fileInput}
          type="file"
          accept="application/json,.json"
          hidden
          data-testid="import-file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) p.onImport(file);
            e.target.value = "";
          }}
        />
        {!isNew && (
          <button type="button" className="btn btn-small" onClick={p.onClone} disabled={locked} title="Copy the latest saved version into a new workflow">
            Clone
          </button>
        )}
        {p.detailUrl && (
          <a className="btn btn-small" href={p.detailUrl}>
            Workflow page
          </a>
        )}
      </div>
    </div>
  );
}
