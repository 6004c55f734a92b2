/**
 * The designer: flow list and palette (left), canvas and problems (centre), inspector, simulation
 * and a recorded run's steps (right); or, switched in the top bar, the Calls view (./Calls.tsx). State lives in one reducer (./store.ts); loading, editing, validation, flow actions and
 * shortcuts are hooks (./hooks); this component draws.
 */
import { useCallback, useMemo, useRef, useState } from 'react';
import { ReactFlowProvider } from '@xyflow/react';
import { storeToken } from './api';
import { FlowCanvas, type CanvasHandle } from './FlowCanvas';
import { CallRun } from './CallRun';
import { Calls } from './Calls';
import { Inspector } from './Inspector';
import { Palette } from './Palette';
import { PanelToggle } from './PanelToggle';
import { ShortcutHelp } from './ShortcutHelp';
import { usePanels } from './hooks/usePanels';
import { LogicMenu } from './LogicMenu';
import type { Pickers } from './formSchema';
import { foreignKeysOf } from './formAssist';
import { findNode, knownVariables, nodeKey } from './model';
import { Simulate } from './Simulate';
import { TestCases, importTestsFile } from './TestCases';
import { download } from './download';
import { exportFlowTests } from './api';
import { docOf, isDirty } from './store';
import { useDesignerStore } from './hooks/useDesignerStore';
import { useEditing } from './hooks/useEditing';
import { useFlowActions, useLeaveGuard, useOpenFromHash } from './hooks/useFlowActions';
import { useChoice } from './Dialogs';
import { useCallRuns } from './hooks/useCallRuns';
import { useApi, useCatalog, useStatusFade } from './hooks/useSession';
import { useShortcuts } from './hooks/useShortcuts';
import { useClipboard } from './hooks/useClipboard';
import { useValidation } from './hooks/useValidation';

export function App() {
  const { state, dispatch, get } = useDesignerStore();
  const {
    token,
    askToken,
    types,
    tables,
    flows,
    details,
    search,
    status,
    open,
    hist,
    logicId,
    selected,
    problems,
    validating,
    saveProblems,
    rightTab,
    highlight,
    newName,
    view,
    run,
    simPreset,
  } = state;
  const canvas = useRef<CanvasHandle>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const api = useApi(token, dispatch);
  const refreshFlows = useCatalog(api, token, dispatch);
  useStatusFade(status, dispatch);
  const edit = useEditing(dispatch, canvas);
  const choice = useChoice();
  const flow = useFlowActions({ api, get, dispatch, canvas, refreshFlows, choose: choice.choose });
  useOpenFromHash(token, flow.openFlow);
  const callRuns = useCallRuns({ get, dispatch, openFlow: flow.openFlow });
  // The Calls view stays mounted once shown: its search, list and open call survive a trip to the editor.
  const [callsShown, setCallsShown] = useState(false);
  if (view === 'calls' && !callsShown) setCallsShown(true);
  const [panels, togglePanel] = usePanels();
  const [helpShown, setHelpShown] = useState(false);
  const toggleHelp = useCallback(() => setHelpShown((v) => !v), []);
  const closeHelp = useCallback(() => setHelpShown(false), []);
  useShortcuts({ save: flow.save, undo: edit.undo, redo: edit.redo, duplicate: edit.duplicate, help: toggleHelp });
  useClipboard(get, dispatch, canvas);

  const doc = docOf(state);
  const dirty = isDirty(state);
  useLeaveGuard(dirty);
  // test cases (./TestCases.tsx): kept with the flow as stored on the server
  const [testsSeq, setTestsSeq] = useState(0);
  const storedFlow = open && flows.some((f) => f.name === open.name) ? open.name : null;
  const logic = doc && logicId ? doc[logicId] : undefined;
  useValidation(api, open, doc, dispatch);

  const logicProblems = useMemo(() => problems.filter((p) => p.logicId === undefined || p.logicId === logicId), [problems, logicId]);
  const errorCount = problems.filter((p) => p.severity === 'error').length;
  const warningCount = problems.length - errorCount;

  // ------------------------------------------------------------ pickers for the forms
  const pickers: Pickers = useMemo(
    () => ({
      variables: knownVariables(doc, types).sort(),
      tables: tables.map((t) => t.name),
      columns: tables.flatMap((t) => t.columns.map((c) => `${t.name.split('.').pop()}.${c.name}`)),
      tableColumns: Object.fromEntries(tables.map((t) => [t.name, t.columns.map((c) => `${t.name.split('.').pop()}.${c.name}`)])),
      logics: doc ? Object.entries(doc).flatMap(([id, l]) => [id, ...(l?.name ? [l.name] : [])]) : [],
      foreignKeys: foreignKeysOf(tables),
    }),
    [types, tables, doc],
  );

  const logicNames = useMemo(() => (doc ? Object.fromEntries(Object.entries(doc).map(([id, l]) => [id, l?.name])) : {}), [doc]);
  const selectedEntry = selected.length === 1 && logic ? findNode(logic, selected[0]) : undefined;

  const shownFlows = flows.filter(
    (f) => !search || f.name.toLowerCase().includes(search.toLowerCase()) || f.logics.some((l) => l.name.toLowerCase().includes(search.toLowerCase())),
  );
  const shownProblems = saveProblems ?? logicProblems;

  // stable: ./CallRun.tsx lights the path again when the canvas's logic changes
  const highlightRun = useCallback((h: typeof highlight) => dispatch({ type: 'highlight', highlight: h }), [dispatch]);
  const focusNode = (id: string) => canvas.current?.focusNode(id);

  return (
    <div className={`app view-${view}${panels.left ? ' left-collapsed' : ''}${panels.right ? ' right-collapsed' : ''}`}>
      {helpShown && <ShortcutHelp onClose={closeHelp} />}
      <header className="topbar">
        <div className="brand">
          sipflow <span>designer</span>
        </div>
        <nav className="views" aria-label="views">
          <button
            className={view === 'editor' ? 'on' : ''}
            aria-pressed={view === 'editor'}
            onClick={() => dispatch({ type: 'view', view: 'editor' })}
            data-testid="view-editor"
          >
            Flows
          </button>
          <button
            className={view === 'calls' ? 'on' : ''}
            aria-pressed={view === 'calls'}
            onClick={() => dispatch({ type: 'view', view: 'calls' })}
            data-testid="view-calls"
          >
            Calls
          </button>
        </nav>
        {view === 'calls' ? (
          <div className="doc-title">
            <strong>Calls</strong>
            <span className="hint"> · recorded SIP messages and logic runs</span>
          </div>
        ) : open ? (
          <div className={`doc-title${dirty ? ' dirty' : ''}`} data-testid="doc-title" title={dirty ? 'edited: not saved yet' : undefined}>
            <strong>{open.name}</strong>
            <span className="hint">
              {' '}
              {typeof open.source === 'number' ? `release v${open.source}` : open.source}
              {dirty ? ' · edited' : ''}
            </span>
            {doc && <LogicMenu doc={doc} logicId={logicId} dispatch={dispatch} chooseLogic={edit.chooseLogic} />}
          </div>
        ) : (
          <div className="doc-title hint">no flow open</div>
        )}
        <div className="tools" style={{ display: view === 'editor' ? undefined : 'none' }}>
          <button onClick={edit.undo} disabled={!hist?.past.length} title="Undo (Ctrl+Z)">
            ↶ Undo
          </button>
          <button onClick={edit.redo} disabled={!hist?.future.length} title="Redo (Ctrl+Y)">
            ↷ Redo
          </button>
          <button onClick={edit.duplicate} disabled={!selected.length} title="Duplicate (Ctrl+D)">
            Duplicate
          </button>
          <span className="sep" />
          <span className={`vstatus ${errorCount ? 'bad' : 'good'}`} data-testid="validation-status">
            {!open ? '' : validating ? 'validating…' : errorCount ? `${errorCount} error(s)` : warningCount ? `valid · ${warningCount} warning(s)` : 'valid'}
          </span>
          <button className="primary" onClick={() => flow.save()} disabled={!open} data-testid="save" title="Save development copy (Ctrl+S)">
            Save
          </button>
          <button onClick={flow.release} disabled={!open} data-testid="release" title="Freeze the development copy as a new release">
            Release
          </button>
          <button
            onClick={() => {
              flow.exportSlid();
              // the flow's test cases beside it, when it has some
              if (storedFlow)
                void exportFlowTests(api, storedFlow, typeof open?.source === 'number' ? open.source : 'development')
                  .then((text) => text !== null && download(`${storedFlow}.tests.json`, text))
                  .catch(() => undefined);
            }}
            disabled={!open}
            data-testid="export"
          >
            Export .slid
          </button>
          <button onClick={() => fileInput.current?.click()}>Import…</button>
          <input
            ref={fileInput}
            type="file"
            accept=".slid,.json,application/json"
            multiple
            hidden
            data-testid="import-file"
            onChange={(e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              // a `<flow>.tests.json` goes to the stored flow of that name; a .slid opens as before
              for (const f of files.filter((x) => x.name.endsWith('.tests.json'))) {
                const name = f.name.replace(/(-v\d+|-development)?\.tests\.json$/, '');
                if (!flows.some((x) => x.name === name)) {
                  dispatch({ type: 'status', status: { kind: 'error', text: `${f.name}: no flow "${name}": import and save its .slid first` } });
                  continue;
                }
                void importTestsFile(api, name, f)
                  .then((n) => {
                    if (n >= 0) dispatch({ type: 'status', status: { kind: 'info', text: `${f.name}: ${n} test case(s) imported into "${name}"` } });
                    setTestsSeq((x) => x + 1);
                  })
                  .catch((err: Error) => dispatch({ type: 'status', status: { kind: 'error', text: `${f.name}: ${err.message}` } }));
              }
              const slid = files.find((x) => !x.name.endsWith('.tests.json'));
              if (slid) flow.importFile(slid);
            }}
          />
          <button onClick={() => dispatch({ type: 'askToken', ask: true })} title="API token">
            Token
          </button>
        </div>
        <button onClick={toggleHelp} data-testid="shortcut-help-button" title="Keyboard shortcuts (?)" aria-label="keyboard shortcuts">
          ?
        </button>
      </header>

      <aside className="left">
        <PanelToggle side="left" collapsed={panels.left} onToggle={togglePanel} />
        <section className="panel flows-panel">
          <div className="panel-title">Flows</div>
          <input
            className="search"
            placeholder="search flows…"
            value={search}
            onChange={(e) => dispatch({ type: 'search', text: e.target.value })}
            data-testid="flow-search"
          />
          <ul className="flow-list" data-testid="flow-list">
            {shownFlows.map((f) => (
              <li key={f.name} className={open?.name === f.name ? 'current' : ''}>
                <div className="flow-row">
                  <button className="twisty" onClick={() => flow.toggleDetails(f.name)} title="releases">
                    {details[f.name] ? '▾' : '▸'}
                  </button>
                  <button className="flow-name" onClick={() => flow.openFlow(f.name)} data-testid={`flow-${f.name}`}>
                    {f.name}
                  </button>
                  <span className="hint">{f.activeVersion ? `v${f.activeVersion} active` : 'dev'}</span>
                </div>
                {details[f.name] && (
                  <ul className="releases">
                    <li className="flow-manage">
                      <button className="link small" onClick={() => flow.renameFlow(f.name)} data-testid={`rename-${f.name}`}>
                        rename
                      </button>{' '}
                      <button className="link small danger" onClick={() => flow.deleteFlow(f.name)} data-testid={`delete-${f.name}`}>
                        delete
                      </button>
                    </li>
                    <li>
                      <button className="link" onClick={() => flow.openFlow(f.name)}>
                        development
                      </button>{' '}
                      <span className="hint">{new Date(details[f.name].updatedAt).toLocaleString()}</span>
                    </li>
                    {[...details[f.name].releases].reverse().map((r) => (
                      <li key={r.version}>
                        <button className="link" onClick={() => flow.openFlow(f.name, r.version)}>
                          v{r.version}
                        </button>
                        {details[f.name].active?.version === r.version ? (
                          <span className="pill active">active</span>
                        ) : (
                          <button className="link small" onClick={() => flow.activate(f.name, r.version)} data-testid={`activate-${f.name}-${r.version}`}>
                            activate
                          </button>
                        )}
                        <button className="link small" onClick={() => flow.compareRelease(f.name, r.version)} data-testid={`compare-${f.name}-${r.version}`}>
                          compare
                        </button>
                        {r.note && <span className="hint"> {r.note}</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
          <div className="row">
            <input
              placeholder="new flow name"
              value={newName}
              onChange={(e) => dispatch({ type: 'newName', text: e.target.value })}
              data-testid="new-flow-name"
              onKeyDown={(e) => {
                if (e.key === 'Enter') flow.newFlow();
              }}
            />
            <button onClick={flow.newFlow} data-testid="new-flow">
              New
            </button>
          </div>
        </section>
        <Palette types={types} canAdd={!!open} onAdd={edit.addNode} />
      </aside>

      <main className="center">
        {open && doc ? (
          <FlowCanvas
            ref={canvas}
            logic={logic}
            types={types}
            problems={logicProblems}
            highlight={highlight}
            selected={selected}
            onSelect={edit.select}
            onMove={edit.move}
            onSetExit={edit.setExit}
            onDelete={edit.deleteSelection}
            onDropType={(t, at) => edit.addNode(t, at)}
            logicNames={logicNames}
            onNotes={edit.notes}
            layoutKey={open ? `${open.session}:${logicId}` : undefined}
          />
        ) : (
          <div className="empty">
            <h2>Open a flow</h2>
            <p>
              Pick a flow on the left, create a new one, or import a <code>.slid</code> file.
            </p>
          </div>
        )}
        <section className="problems" data-testid="problems">
          <div className="panel-title">
            {saveProblems ? 'Save refused: problems' : 'Problems'}{' '}
            <span className="hint">
              {errorCount} error(s), {warningCount} warning(s) · validated by the server with the engine's rules
            </span>
            {saveProblems && (
              <button className="link small" onClick={() => dispatch({ type: 'saveProblemsCleared' })}>
                show live problems
              </button>
            )}
          </div>
          <ul>
            {shownProblems.map((p, i) => (
              <li
                key={i}
                className={`problem ${p.severity}`}
                data-testid="problem"
                onClick={() => {
                  if (p.nodeId !== undefined && (p.logicId === undefined || p.logicId === logicId)) edit.focusNode(p.nodeId);
                }}
              >
                <span className={`sev ${p.severity}`}>{p.severity}</span>
                {p.nodeId !== undefined && (
                  <span className="where">
                    node {p.nodeId}
                    {p.nodeName ? ` “${p.nodeName}”` : ''}
                  </span>
                )}
                {p.pointer && <code>{p.pointer}</code>}
                <span>{p.message}</span>
              </li>
            ))}
            {open && shownProblems.length === 0 && !validating && <li className="hint">no problems</li>}
          </ul>
        </section>
        {status && (
          <div className={`status status-${status.kind}`} data-testid="status" onClick={() => dispatch({ type: 'status', status: null })}>
            {status.text}
          </div>
        )}
      </main>

      <aside className="right">
        <PanelToggle side="right" collapsed={panels.right} onToggle={togglePanel} />
        <div className="tabs">
          <button className={rightTab === 'inspector' ? 'on' : ''} onClick={() => dispatch({ type: 'rightTab', tab: 'inspector' })} data-testid="tab-inspector">
            Properties
          </button>
          <button className={rightTab === 'simulate' ? 'on' : ''} onClick={() => dispatch({ type: 'rightTab', tab: 'simulate' })} data-testid="tab-simulate">
            Simulate
          </button>
          <button className={rightTab === 'tests' ? 'on' : ''} onClick={() => dispatch({ type: 'rightTab', tab: 'tests' })} data-testid="tab-tests">
            Tests
          </button>
          {run && (
            <button className={rightTab === 'run' ? 'on' : ''} onClick={() => dispatch({ type: 'rightTab', tab: 'run' })} data-testid="tab-run">
              Run
            </button>
          )}
        </div>
        <div className="tab-body" style={{ display: rightTab === 'inspector' ? undefined : 'none' }}>
          {selectedEntry && logicId ? (
            <Inspector
              node={selectedEntry.node}
              type={types.get(selectedEntry.node.type)}
              pickers={pickers}
              problems={problems.filter((p) => p.logicId === logicId && p.nodeId === nodeKey(selectedEntry.node.id))}
              onChange={(fn) => edit.editNode(logicId, nodeKey(selectedEntry.node.id), fn)}
            />
          ) : (
            <p className="hint pad">{selected.length > 1 ? `${selected.length} nodes selected` : 'Select a node to edit its properties.'}</p>
          )}
        </div>
        <div className="tab-body" style={{ display: rightTab === 'simulate' ? undefined : 'none' }}>
          <Simulate
            api={api}
            doc={doc}
            logicId={logicId}
            preset={simPreset}
            onHighlight={highlightRun}
            onFocusNode={focusNode}
            flowName={storedFlow}
            onTestSaved={() => setTestsSeq((x) => x + 1)}
          />
        </div>
        <div className="tab-body" style={{ display: rightTab === 'tests' ? undefined : 'none' }}>
          <TestCases
            api={api}
            flowName={storedFlow}
            seq={testsSeq}
            onShowPath={(logic, path) => {
              const ids = path.filter((p) => !p.includes('/'));
              if (logic === undefined || logic === logicId || (logicId !== null && doc?.[logicId]?.name === logic))
                highlightRun({ nodes: new Set(ids), edges: new Set() });
            }}
          />
        </div>
        {run && rightTab === 'run' && (
          <div className="tab-body">
            <CallRun
              open={run}
              flowName={open?.name ?? null}
              logicId={logicId}
              onHighlight={highlightRun}
              onFocusNode={focusNode}
              onReplay={() => void callRuns.replay(run.call, run.index)}
              onBack={() => dispatch({ type: 'view', view: 'calls' })}
            />
          </div>
        )}
      </aside>

      {callsShown && (
        <main className="calls-main" style={{ display: view === 'calls' ? undefined : 'none' }}>
          <Calls
            api={api}
            active={view === 'calls'}
            onOpenRun={(call, i) => void callRuns.openRun(call, i)}
            onReplay={(call, i) => void callRuns.replay(call, i)}
          />
        </main>
      )}

      {choice.dialog}

      {askToken && (
        <div className="modal-back">
          <form
            className="modal"
            onSubmit={(e) => {
              e.preventDefault();
              const v = String(new FormData(e.currentTarget).get('token') ?? '').trim();
              storeToken(v || null);
              dispatch({ type: 'token', token: v || null });
            }}
          >
            <h3>API token</h3>
            <p>
              The designer talks to the sipflow HTTP API with its bearer token: <code>http.token</code> in the config, or the file{' '}
              <code>&lt;dataDir&gt;/api-token</code>. It is kept in this browser (localStorage).
            </p>
            <input name="token" type="password" defaultValue={token ?? ''} autoFocus data-testid="token-input" />
            <div className="row">
              <button className="primary" type="submit">
                Use token
              </button>
              {token && (
                <button type="button" onClick={() => dispatch({ type: 'askToken', ask: false })}>
                  Cancel
                </button>
              )}
            </div>
          </form>
        </div>
      )}
    </div>
  );
}

export function Root() {
  return (
    <ReactFlowProvider>
      <App />
    </ReactFlowProvider>
  );
}
