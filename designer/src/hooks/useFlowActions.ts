/**
 * Opening, saving, releasing, activating, importing and exporting flows. Each action reads the
 * state when it starts (`get()`) and dispatches what the server answers: an answer never
 * overwrites the state with a copy taken before its `await`.
 */
import { useEffect, useMemo, useRef, type Dispatch, type RefObject } from 'react';
import { isFlowName } from '../../../server/flows/name';
import { ApiFailure, type Api, type Problem } from '../api';
import type { CanvasHandle } from '../FlowCanvas';
import { docOf, docText, isDirty, type Action, type DesignerState, type Open, type Status } from '../store';

export interface FlowActions {
  openFlow(name: string, version?: number | 'development'): Promise<void>;
  toggleDetails(name: string): Promise<void>;
  save(): Promise<boolean>;
  release(): Promise<void>;
  activate(name: string, version: number): Promise<void>;
  exportSlid(): void;
  importFile(file: File): Promise<void>;
  newFlow(): void;
}

interface Deps {
  api: Api;
  get(): DesignerState;
  dispatch: Dispatch<Action>;
  canvas: RefObject<CanvasHandle | null>;
  refreshFlows(): Promise<void>;
}

export function useFlowActions({ api, get, dispatch, canvas, refreshFlows }: Deps): FlowActions {
  const actions = useMemo((): FlowActions => {
    const status = (s: Status) => dispatch({ type: 'status', status: s });
    const confirmDiscard = () => !isDirty(get()) || window.confirm('Discard the unsaved changes?');
    const loadDoc = (open: Omit<Open, 'session'>) => {
      dispatch({ type: 'docLoaded', open });
      setTimeout(() => canvas.current?.fit(), 50);
    };

    async function save(): Promise<boolean> {
      const s = get();
      const open = s.open;
      const doc = docOf(s);
      if (!open || !doc) return false;
      if (!isFlowName(open.name)) {
        status({ kind: 'error', text: `invalid flow name "${open.name}"` });
        return false;
      }
      const text = docText(s);
      try {
        const r = await api.save(open.name, text);
        dispatch({ type: 'saved', from: open, text, doc });
        status({
          kind: 'ok',
          text: `saved ${open.name} (development${r.created ? ', created' : ''}${r.problems.length ? `, ${r.problems.length} warning(s)` : ''})`,
        });
        refreshFlows();
        if (get().details[open.name]) dispatch({ type: 'detailsRefreshed', name: open.name, detail: await api.flow(open.name) });
        return true;
      } catch (e) {
        const f = e as ApiFailure;
        dispatch({ type: 'saveRefused', problems: f.body?.problems ?? null });
        status({
          kind: 'error',
          text: `not saved: ${f.body?.problems ? `${f.body.problems.filter((p: Problem) => p.severity === 'error').length} error(s)` : f.message}`,
        });
        return false;
      }
    }

    return {
      async openFlow(name, version = 'development') {
        if (!confirmDiscard()) return;
        try {
          const text = await api.exportText(name, version);
          loadDoc({ name, source: version, text, loaded: JSON.parse(text) });
          status({ kind: 'info', text: `opened ${name} ${version === 'development' ? '(development)' : `v${version}`}` });
          window.location.hash = `#/flow/${encodeURIComponent(name)}${version === 'development' ? '' : `/v${version}`}`;
        } catch (e) {
          status({ kind: 'error', text: `open ${name}: ${(e as Error).message}` });
        }
      },

      async toggleDetails(name) {
        if (get().details[name]) {
          dispatch({ type: 'detailsClosed', name });
          return;
        }
        try {
          dispatch({ type: 'detailsLoaded', name, detail: await api.flow(name) });
        } catch (e) {
          status({ kind: 'error', text: (e as Error).message });
        }
      },

      save,

      async release() {
        const s = get();
        const open = s.open;
        if (!open) return;
        if ((isDirty(s) || open.source !== 'development') && !(await save())) return;
        const note = window.prompt('Release note (optional)') ?? undefined;
        try {
          const r = await api.release(open.name, note || undefined);
          status({ kind: 'ok', text: `released ${open.name} v${r.version}` });
          refreshFlows();
          dispatch({ type: 'detailsLoaded', name: open.name, detail: await api.flow(open.name) });
        } catch (e) {
          status({ kind: 'error', text: `release: ${(e as Error).message}` });
        }
      },

      async activate(name, version) {
        try {
          await api.activate(name, version);
          status({ kind: 'ok', text: `activated ${name} v${version}` });
          refreshFlows();
          dispatch({ type: 'detailsLoaded', name, detail: await api.flow(name) });
        } catch (e) {
          status({ kind: 'error', text: `activate: ${(e as Error).message}` });
        }
      },

      exportSlid() {
        const s = get();
        if (!s.open || !docOf(s)) return;
        const blob = new Blob([docText(s)], { type: 'application/json' });
        const a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = `${s.open.name}${typeof s.open.source === 'number' ? `-v${s.open.source}` : ''}.slid`;
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      },

      async importFile(file) {
        if (!confirmDiscard()) return;
        const text = await file.text();
        try {
          const loaded = JSON.parse(text);
          const name =
            file.name
              .replace(/\.slid$|\.json$/i, '')
              .replace(/[^A-Za-z0-9._-]/g, '-')
              .replace(/^[^A-Za-z0-9]+/, '') || 'imported';
          loadDoc({ name, source: 'import', text, loaded });
          status({ kind: 'info', text: `imported ${file.name} as "${name}" (not saved yet)` });
        } catch (e) {
          status({ kind: 'error', text: `${file.name}: not JSON: ${(e as Error).message}` });
        }
      },

      newFlow() {
        const s = get();
        const name = s.newName.trim();
        if (!isFlowName(name)) {
          status({ kind: 'error', text: 'flow name: letters, digits, . _ - (up to 64)' });
          return;
        }
        if (s.flows.some((f) => f.name === name)) {
          status({ kind: 'error', text: `flow "${name}" exists` });
          return;
        }
        if (!confirmDiscard()) return;
        loadDoc({ name, source: 'new', text: null, loaded: { 1: { name, description: '', nodes: {} } } });
        dispatch({ type: 'newName', text: '' });
        status({ kind: 'info', text: `new flow "${name}": add a Start node from the palette` });
      },
    };
  }, [api, get, dispatch, canvas, refreshFlows]);
  return actions;
}

/** Opens the flow named in the URL hash (`#/flow/<name>[/v<n>]`) once the token is there. */
export function useOpenFromHash(token: string | null, openFlow: FlowActions['openFlow']): void {
  const opened = useRef(false);
  useEffect(() => {
    if (!token || opened.current) return;
    opened.current = true;
    const m = /^#\/flow\/([^/]+)(?:\/v(\d+))?$/.exec(window.location.hash);
    if (m) openFlow(decodeURIComponent(m[1]), m[2] ? Number(m[2]) : 'development');
  }, [token, openFlow]);
}
