/**
 * Ctrl+C / Ctrl+V (Cmd on macOS) on the canvas: copies the selected nodes to the system clipboard
 * as JSON (../clipboard.ts) and pastes such JSON, from this flow or another (another tab too), as
 * new nodes. Not while typing in a field, nor when text is selected (then the browser copies it);
 * a clipboard holding anything else is refused with a status message.
 */
import { useEffect, type Dispatch, type RefObject } from 'react';
import { copyPayload, parsePayload } from '../clipboard';
import type { CanvasHandle } from '../FlowCanvas';
import { findNode, type SlidNode } from '../model';
import { docOf, type Action, type DesignerState } from '../store';

export function useClipboard(get: () => DesignerState, dispatch: Dispatch<Action>, canvas: RefObject<CanvasHandle | null>): void {
  useEffect(() => {
    const status = (kind: 'info' | 'ok' | 'error', text: string) => dispatch({ type: 'status', status: { kind, text } });
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.shiftKey || e.altKey) return;
      const key = e.key.toLowerCase();
      if (key !== 'c' && key !== 'v') return;
      const t = e.target as HTMLElement | null;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
      const s = get();
      const doc = docOf(s);
      if (s.view !== 'editor' || !doc || !s.logicId) return;
      if (key === 'c') {
        if (String(window.getSelection() ?? '') !== '') return;
        const nodes = s.selected.map((id) => findNode(doc[s.logicId!], id)?.node).filter((n): n is SlidNode => !!n);
        if (nodes.length === 0) return;
        e.preventDefault();
        const text = JSON.stringify(copyPayload(nodes, s.types), null, 2);
        navigator.clipboard.writeText(text).then(
          () => status('ok', `copied ${nodes.length} node(s) to the clipboard`),
          (err: unknown) => status('error', `copy: the clipboard refused (${(err as Error).message})`),
        );
        return;
      }
      e.preventDefault();
      navigator.clipboard.readText().then(
        (text) => {
          const r = parsePayload(text);
          if ('refused' in r) {
            status('info', `nothing pasted: ${r.refused}`);
            return;
          }
          dispatch({ type: 'paste', nodes: r.nodes, at: canvas.current?.center() ?? { x: 100, y: 100 } });
          status('ok', `pasted ${r.nodes.length} node(s)`);
        },
        (err: unknown) => status('error', `paste: the clipboard cannot be read (${(err as Error).message})`),
      );
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [get, dispatch, canvas]);
}
