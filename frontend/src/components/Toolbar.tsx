import { useRef } from "react";

export interface ToolbarProps {
  name: string;
  onName: (name: string) => void;
  message: string;
  onMessage: (m: string) => void;
  onSave: () => void;
  saving: boolean;
  dirty: boolean;
  isNew: boolean;
  locked: boolean; // showing a diff: nothing can be edited
  canUndo: boolean;
  canRedo: boolean;
  hasSelection: boolean;
  canPaste: boolean;
  onUndo: () => void;
  onRedo: () => void;
  onDelete: () => void;
  onCopy: () => void;
  onPaste: () => void;
  onSelectAll: () => void;
  onLayout: () => void;
  onFit: () => void;
  onClone: () => void;
  onImport: (file: File) => void;
  exportUrl: string | null;
  detailUrl: string | null;
}

export function Toolbar(p: ToolbarProps) {
  const fileInput = useRef<HTMLInputElement>(null);
  const edit = !p.locked;
  return (
    <div className="wf-toolbar" role="toolbar" aria-label="Editor">
      <input
        className="wf-name"
        aria-label="Workflow name"
        value={p.name}
        placeholder="Workflow name"
        maxLength={200}
        onChange={(e) => p.onName(e.target.value)}
        disabled={p.locked}
      />
      <form
        className="wf-save"
        onSubmit={(e) => {
          e.preventDefault();
          p.onSave();
        }}
      >
        <input
          aria-label="Version message"
          name="message"
          placeholder={p.isNew ? "Message (optional)" : "What changed? (optional)"}
          value={p.message}
          maxLength={500}
          onChange={(e) => p.onMessage(e.target.value)}
          disabled={p.locked}
        />
        <button type="submit" className="btn btn-primary" disabled={p.saving || p.locked || (!p.dirty && !p.isNew)} title="Save as a new version (Ctrl+S)">
          {p.saving ? "Saving…" : p.isNew ? "Create" : "Save"}
        </button>
        <span className={`wf-dirty${p.dirty ? " on" : ""}`} aria-live="polite">
          {p.dirty ? "unsaved changes" : "saved"}
        </span>
      </form>
      <div className="wf-tools">
        <button type="button" className="btn btn-small" onClick={p.onUndo} disabled={!edit || !p.canUndo} title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button type="button" className="btn btn-small" onClick={p.onRedo} disabled={!edit || !p.canRedo} title="Redo (Ctrl+Shift+Z)">
          Redo
        </button>
        <button type="button" className="btn btn-small" onClick={p.onDelete} disabled={!edit || !p.hasSelection} title="Delete the selection (Delete)">
          Delete
        </button>
        <button type="button" className="btn btn-small" onClick={p.onCopy} disabled={!edit || !p.hasSelection} title="Copy (Ctrl+C)">
          Copy
        </button>
        <button type="button" className="btn btn-small" onClick={p.onPaste} disabled={!edit || !p.canPaste} title="Paste (Ctrl+V)">
          Paste
        </button>
        <button type="button" className="btn btn-small" onClick={p.onSelectAll} disabled={!edit} title="Select all (Ctrl+A)">
          Select all
        </button>
        <button type="button" className="btn btn-small" onClick={p.onLayout} disabled={!edit} title="Auto-layout (Shift+L)">
          Auto-layout
        </button>
        <button type="button" className="btn btn-small" onClick={p.onFit} title="Fit view (Shift+F)">
          Fit view
        </button>
        <span className="wf-sep" />
        {p.exportUrl && (
          <a className="btn btn-small" href={p.exportUrl} download title="Download the latest saved version as JSON">
            Export
          </a>
        )}
        <button type="button" className="btn btn-small" onClick={() => fileInput.current?.click()} disabled={!edit} title="Import a workflow export (or a bare graph) from a JSON file">
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
        {!p.isNew && (
          <button type="button" className="btn btn-small" onClick={p.onClone} disabled={!edit} title="Copy the latest saved version into a new workflow">
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
