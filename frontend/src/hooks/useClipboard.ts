// The editor's own clipboard (steps and the edges between them), not the system's: it holds a
// graph, which the system clipboard would only hold as text.

import { useCallback, useRef, useState } from "react";
import { clipOf } from "../doc";
import type { Graph } from "../types";
import type { DocumentApi } from "./useDocument";

export function useClipboard(graphDoc: Pick<DocumentApi, "docRef" | "paste">, flash: (text: string) => void) {
  const clip = useRef<Graph | null>(null);
  const [canPaste, setCanPaste] = useState(false);
  const { docRef, paste: pasteInto } = graphDoc;

  const copy = useCallback(() => {
    const copied = clipOf(docRef.current);
    if (!copied) return;
    clip.current = copied;
    setCanPaste(true);
    const n = copied.nodes.length;
    flash(`Copied ${n} step${n > 1 ? "s" : ""}`);
  }, [docRef, flash]);

  const paste = useCallback(() => {
    if (clip.current) clip.current = pasteInto(clip.current);
  }, [pasteInto]);

  return { copy, paste, canPaste };
}
