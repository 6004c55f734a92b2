/**
 * Opening, saving, releasing, activating, importing, exporting, renaming and deleting flows. Each
 * action reads the state when it starts (`get()`) and dispatches what the server answers: an answer
 * never overwrites the state with a copy taken before its `await`.
 *
 * Safe editing: a save sends the revision the document was made from (If-Match); a stale save (409)
 * offers Reload, Compare and Overwrite. A flow not stored yet (new, or an import the server refused)
 * is saved with If-None-Match: *, so it never replaces an existing flow silently; an import goes
 * through POST /flows/import, which refuses an existing name (then: overwrite, another name, cancel).
 * Activation shows the difference from the active release and asks; failing test cases (422) are
 * shown with "Activate anyway".
 */
import { createElement as h, useEffect, useLayoutEffect, useMemo, useRef, useState, type Dispatch, type ReactNode, type RefObject } from 'react';
import { isFlowName } from '../../../server/flows/name';
import { ApiFailure, type Api, type Problem } from '../api';
import type { Choose } from '../Dialogs';
import { diffDocs } from '../diff';
import type { CanvasHandle } from '../FlowCanvas';
import { DiffView, ReleaseDiff } from '../ReleaseDiff';
import { docOf, docText, isDirty, type Action, type DesignerState, type Open, type Status } from '../store';
import { download } from '../download';

export interface FlowActions {
  openFlow(name: string, version?: number | 'development'): Promise<void>;
  toggleDetails(name: string): Promise<void>;
  save(): Promise<boolean>;
  release(): Promise<void>;
  activate(name: string, version: number): Promise<void>;
  /** Shows the difference between a release and the active one (or another version). */
  compareRelease(name: string, version: number): Promise<void>;
  exportSlid(): void;
  importFile(file: File): Promise<void>;
  newFlow(): void;
  renameFlow(name: string): Promise<void>;
  deleteFlow(name: string): Promise<void>;
}

interface Deps {
  api: Api;
  get(): DesignerState;
  dispatch: Dispatch<Action>;
  canvas: RefObject<CanvasHandle | null>;
  refreshFlows(): Promise<void>;
  choose: Choose;
}

/** A .slid file name as a flow name. */
const nameOfFile = (file: string) =>
  file
    .replace(/\.slid$|\.json$/i, '')
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64) || 'imported';

/** A new name asked for (null: cancelled); re-asked while it is not a valid flow name. */
function askName(question: string, proposal: string): string | null {
  let v = proposal;
  for (;;) {
    const answer = window.prompt(question, v);
    if (answer === null) return null;
    v = answer.trim();
    if (isFlowName(v)) return v;
    question = `"${v}" is not a flow name (letters, digits, . _ -, up to 64). ${question}`;
  }
}

/** The "Compare" part of the save-conflict dialog: the server's copy against the local edits. */
function ConflictBody({ server, local, name }: { server: unknown; local: unknown; name: string }) {
  const [shown, setShown] = useState(false);
  return h(
    'div',
    null,
    h('p', null, `Flow "${name}" was saved elsewhere (another tab or person) since you loaded it. Saving now would overwrite those changes.`),
    h('p', { className: 'hint' }, 'Reload: load the saved copy (your edits are lost). Overwrite: save yours over it. Compare: see what differs.'),
    h('button', { className: 'link', onClick: () => setShown(!shown), 'data-testid': 'conflict-compare' }, shown ? 'Hide comparison' : 'Compare'),
    shown ? h(DiffView, { diff: diffDocs(server, local), before: 'saved copy', after: 'your edits' }) : null,
  );
}

export function useFlowActions({ api, get, dispatch, canvas, refreshFlows, choose }: Deps): FlowActions {
  const actions = useMemo((): FlowActions => {
    const status = (s: Status) => dispatch({ type: 'status', status: s });
    const confirmDiscard = () => !isDirty(get()) || window.confirm('Discard the unsaved changes?');
    const loadDoc = (open: Omit<Open, 'session'>) => {
      dispatch({ type: 'docLoaded', open });
      setTimeout(() => canvas.current?.fit(), 50);
    };
    const message = (e: unknown) => {
      const f = e as ApiFailure;
      return f.body?.detail ?? f.message;
    };

    /**
     * Saves the open document under `name` with `revision` as If-Match (undefined: overwrite; null: create
     * only). A 409 asks what to do (stale: Reload / Compare / Overwrite; exists: Overwrite / another name).
     */
    async function saveAs(name: string, revision: string | null | undefined): Promise<boolean> {
      const s = get();
      const open = s.open;
      const doc = docOf(s);
      if (!open || !doc) return false;
      if (!isFlowName(name)) {
        status({ kind: 'error', text: `invalid flow name "${name}"` });
        return false;
      }
      const text = docText(s);
      try {
        const r = await api.save(name, text, revision);
        dispatch({ type: 'saved', from: { ...open, name }, text, doc, revision: r.revision });
        status({
          kind: 'ok',
          text: `saved ${name} (development${r.created ? ', created' : ''}${r.problems.length ? `, ${r.problems.length} warning(s)` : ''})`,
        });
        refreshFlows();
        if (get().details[name]) dispatch({ type: 'detailsRefreshed', name, detail: await api.flow(name) });
        if (name !== open.name) window.location.hash = `#/flow/${encodeURIComponent(name)}`;
        return true;
      } catch (e) {
        const f = e as ApiFailure;
        if (f.status === 409 && revision === null) return existsConflict(name);
        if (f.status === 409 && revision) return staleConflict(name, f.body?.revision ?? null);
        if (f.status === 404 && revision) return deletedMeanwhile(name);
        dispatch({ type: 'saveRefused', problems: f.body?.problems ?? null });
        status({
          kind: 'error',
          text: `not saved: ${f.body?.problems ? `${f.body.problems.filter((p: Problem) => p.severity === 'error').length} error(s)` : f.message}`,
        });
        return false;
      }
    }

    /** A save of a document not stored yet found the name taken. */
    async function existsConflict(name: string): Promise<boolean> {
      const c = await choose({
        title: `Flow "${name}" already exists`,
        testId: 'exists-dialog',
        body: h('p', null, `A flow named "${name}" is stored already. Overwrite its development copy with this document, or save under another name?`),
        choices: [
          { value: 'rename', label: 'Save under another name…', primary: true },
          { value: 'overwrite', label: 'Overwrite', danger: true },
        ],
      });
      if (c === 'overwrite') {
        const { revision } = await api.exportWithRevision(name, 'development');
        return saveAs(name, revision ?? undefined);
      }
      if (c === 'rename') {
        const other = askName('Save under the name', `${name}-2`);
        return other ? saveAs(other, null) : false;
      }
      status({ kind: 'info', text: 'not saved' });
      return false;
    }

    /** A save of a flow deleted (or renamed away) since it was loaded. */
    async function deletedMeanwhile(name: string): Promise<boolean> {
      const c = await choose({
        title: `Flow "${name}" no longer exists`,
        testId: 'deleted-dialog',
        body: h('p', null, `"${name}" was deleted or renamed since you loaded it. Save this document as a new flow "${name}"?`),
        choices: [{ value: 'create', label: `Save as new flow "${name}"`, primary: true }],
      });
      if (c === 'create') return saveAs(name, null);
      status({ kind: 'info', text: 'not saved' });
      return false;
    }

    /** A save from a revision that is no longer the stored one. */
    async function staleConflict(name: string, current: string | null): Promise<boolean> {
      let server: { text: string; revision: string | null };
      try {
        server = await api.exportWithRevision(name, 'development');
      } catch (e) {
        status({ kind: 'error', text: `not saved: ${message(e)}` });
        return false;
      }
      const c = await choose({
        title: `“${name}” changed since you loaded it`,
        testId: 'conflict-dialog',
        wide: true,
        body: h(ConflictBody, { server: JSON.parse(server.text), local: docOf(get()), name }),
        choices: [
          { value: 'reload', label: 'Reload (discard my edits)' },
          { value: 'overwrite', label: 'Overwrite', danger: true },
        ],
      });
      if (c === 'reload') {
        if (!window.confirm(`Discard your edits and load the saved copy of "${name}"?`)) return false;
        loadDoc({ name, source: 'development', text: server.text, loaded: JSON.parse(server.text), revision: server.revision });
        status({ kind: 'info', text: `reloaded ${name} (development)` });
        return false;
      }
      if (c === 'overwrite') return saveAs(name, server.revision ?? current ?? undefined);
      status({ kind: 'info', text: 'not saved (the flow changed since it was loaded)' });
      return false;
    }

    async function save(): Promise<boolean> {
      const open = get().open;
      if (!open) return false;
      return saveAs(open.name, open.revision);
    }

    /** Imports `text` under `name` through POST /flows/import, asking when the name is taken. */
    async function importAs(name: string, text: string, fileName: string): Promise<void> {
      let loaded: unknown;
      try {
        loaded = JSON.parse(text);
      } catch (e) {
        status({ kind: 'error', text: `${fileName}: not JSON: ${(e as Error).message}` });
        return;
      }
      try {
        const r = await api.importFlow(name, text);
        loadDoc({ name, source: 'development', text, loaded: loaded as Open['loaded'], revision: r.revision });
        status({ kind: 'ok', text: `imported ${fileName} as flow "${name}" (development copy)` });
        window.location.hash = `#/flow/${encodeURIComponent(name)}`;
        refreshFlows();
      } catch (e) {
        const f = e as ApiFailure;
        if (f.status === 409) {
          const c = await choose({
            title: `Flow "${name}" already exists`,
            testId: 'import-dialog',
            body: h(
              'p',
              null,
              `Importing ${fileName} as "${name}" would replace the development copy of the existing flow (its releases stay). Overwrite it, import under another name, or cancel?`,
            ),
            choices: [
              { value: 'rename', label: 'Import under another name…', primary: true },
              { value: 'overwrite', label: 'Overwrite', danger: true },
            ],
          });
          if (c === 'rename') {
            const other = askName(`Import ${fileName} under the name`, `${name}-2`);
            if (other) await importAs(other, text, fileName);
          } else if (c === 'overwrite') {
            try {
              const r = await api.importFlow(name, text, true);
              loadDoc({ name, source: 'development', text, loaded: loaded as Open['loaded'], revision: r.revision });
              status({ kind: 'ok', text: `imported ${fileName} over flow "${name}" (development copy)` });
              refreshFlows();
            } catch (e2) {
              status({ kind: 'error', text: `import: ${message(e2)}` });
            }
          } else status({ kind: 'info', text: 'import cancelled' });
          return;
        }
        if (f.status === 400 && f.body?.problems) {
          // Not storable as is: open it unsaved (a save creates the flow, never overwrites one).
          loadDoc({ name, source: 'import', text, loaded: loaded as Open['loaded'], revision: null });
          dispatch({ type: 'saveRefused', problems: f.body.problems });
          status({ kind: 'error', text: `imported ${fileName} as "${name}", not saved: it has errors to fix first` });
          return;
        }
        status({ kind: 'error', text: `import: ${message(e)}` });
      }
    }

    async function doActivate(name: string, version: number, force: boolean): Promise<void> {
      try {
        await api.activate(name, version, force);
        status({ kind: 'ok', text: `activated ${name} v${version}${force ? ' (forced)' : ''}` });
        refreshFlows();
        dispatch({ type: 'detailsLoaded', name, detail: await api.flow(name) });
      } catch (e) {
        const f = e as ApiFailure;
        const tests = f.body?.tests as { passed: number; failed: number; results: Array<{ name: string; passed: boolean; message?: string }> } | undefined;
        if (f.status === 422 && tests && !force) {
          const c = await choose({
            title: `Test cases of ${name} v${version} fail`,
            testId: 'tests-failed-dialog',
            body: h(
              'div',
              null,
              h('p', null, `${tests.failed} failed, ${tests.passed} passed. Activating puts a release that fails its own test cases in service.`),
              h(
                'ul',
                { className: 'test-failures' },
                tests.results
                  .filter((r) => !r.passed)
                  .map((r, i) => h('li', { key: i, 'data-testid': 'test-failure' }, h('strong', null, r.name), r.message ? `: ${r.message}` : '')),
              ),
            ),
            choices: [{ value: 'force', label: 'Activate anyway', danger: true }],
          });
          if (c === 'force') await doActivate(name, version, true);
          else status({ kind: 'info', text: `${name} v${version} not activated` });
          return;
        }
        status({ kind: 'error', text: `activate: ${message(e)}` });
      }
    }

    return {
      async openFlow(name, version = 'development') {
        if (!confirmDiscard()) return;
        try {
          const { text, revision } = await api.exportWithRevision(name, version);
          loadDoc({ name, source: version, text, loaded: JSON.parse(text), revision });
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
        const name = get().open?.name ?? open.name;
        const note = window.prompt('Release note (optional)') ?? undefined;
        try {
          // exactly the copy this document was saved as or loaded from (409 when saved elsewhere since)
          const r = await api.release(name, note || undefined, get().open?.revision);
          status({ kind: 'ok', text: `released ${name} v${r.version}` });
          refreshFlows();
          dispatch({ type: 'detailsLoaded', name, detail: await api.flow(name) });
        } catch (e) {
          const f = e as ApiFailure;
          status({
            kind: 'error',
            text:
              f.status === 409
                ? `not released: ${name} was saved elsewhere since you loaded it; open it again to release what is stored`
                : `release: ${message(e)}`,
          });
        }
      },

      async activate(name, version) {
        let body: ReactNode;
        try {
          const detail = await api.flow(name);
          const active = detail.active?.version;
          const target = JSON.parse(await api.exportText(name, version));
          if (active === undefined) body = h('p', null, `${name} has no active release: v${version} goes into service as a whole.`);
          else if (active === version) body = h('p', null, `v${version} is the active release already: it is activated again.`);
          else {
            const before = JSON.parse(await api.exportText(name, active));
            body = h(DiffView, { diff: diffDocs(before, target), before: `v${active} (active)`, after: `v${version}` });
          }
        } catch (e) {
          status({ kind: 'error', text: `activate: ${message(e)}` });
          return;
        }
        const c = await choose({
          title: `Activate ${name} v${version}?`,
          testId: 'activate-dialog',
          wide: true,
          body: h('div', null, h('p', { className: 'hint' }, 'Calls from now on run this release; calls in progress finish on the current one.'), body),
          choices: [{ value: 'activate', label: `Activate v${version}`, primary: true }],
        });
        if (c !== 'activate') return;
        await doActivate(name, version, false);
      },

      async compareRelease(name, version) {
        try {
          const detail = get().details[name] ?? (await api.flow(name));
          await choose({
            title: `${name}: release v${version}`,
            testId: 'release-diff-dialog',
            wide: true,
            body: h(ReleaseDiff, { api, flow: name, detail, version }),
            choices: [],
            cancel: 'Close',
          });
        } catch (e) {
          status({ kind: 'error', text: `compare: ${message(e)}` });
        }
      },

      exportSlid() {
        const s = get();
        if (!s.open || !docOf(s)) return;
        download(`${s.open.name}${typeof s.open.source === 'number' ? `-v${s.open.source}` : ''}.slid`, docText(s));
      },

      async importFile(file) {
        if (!confirmDiscard()) return;
        await importAs(nameOfFile(file.name), await file.text(), file.name);
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
        loadDoc({ name, source: 'new', text: null, loaded: { 1: { name, description: '', nodes: {} } }, revision: null });
        dispatch({ type: 'newName', text: '' });
        status({ kind: 'info', text: `new flow "${name}": add a Start node from the palette` });
      },

      async renameFlow(name) {
        const to = askName(`Rename flow "${name}" to`, name);
        if (!to || to === name) return;
        try {
          const r = await api.renameFlow(name, to);
          if (get().open?.name === name) window.location.hash = `#/flow/${encodeURIComponent(to)}`;
          dispatch({ type: 'openMoved', from: name, name: to });
          dispatch({ type: 'detailsClosed', name });
          status({ kind: 'ok', text: `renamed ${name} to ${to}${r.active ? ' (its active release runs under the new name)' : ''}` });
          await refreshFlows();
        } catch (e) {
          status({ kind: 'error', text: `rename: ${message(e)}` });
        }
      },

      async deleteFlow(name) {
        const active = get().flows.find((f) => f.name === name)?.activeVersion;
        const question =
          active != null
            ? `Delete flow "${name}" with all its releases? Its release v${active} is ACTIVE: deleting takes it out of service (calls it answers will no longer be answered by it).`
            : `Delete flow "${name}" with all its releases?`;
        if (!window.confirm(question)) return;
        try {
          await api.deleteFlow(name, active != null);
          // An open copy stays open, unsaved: a save creates the flow again.
          dispatch({ type: 'openMoved', from: name, name, revision: null });
          dispatch({ type: 'detailsClosed', name });
          status({ kind: 'ok', text: `deleted ${name}` });
          await refreshFlows();
        } catch (e) {
          status({ kind: 'error', text: `delete: ${message(e)}` });
        }
      },
    };
  }, [api, get, dispatch, canvas, refreshFlows, choose]);
  return actions;
}

/**
 * Asks the browser to confirm leaving (reload, close, navigate away) while `dirty`. A layout
 * effect: the guard follows `dirty` in the same commit as the page (a passive effect runs after
 * paint, so a reload right after switching to a saved flow could still be asked about the edited
 * one it replaced; seen in test/e2e/designer/safe.test.ts on a loaded machine).
 */
export function useLeaveGuard(dirty: boolean): void {
  useLayoutEffect(() => {
    if (!dirty) return;
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [dirty]);
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
