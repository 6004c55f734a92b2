/** The designer: flow list and palette (left), canvas and problems (centre), inspector and simulation (right). */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ReactFlowProvider } from '@xyflow/react';
import { Api, ApiFailure, initialToken, storeToken, type DirectoryTable, type FlowDetail, type FlowSummary, type NodeTypeInfo, type Problem } from './api';
import { FlowCanvas, categoryColor, type CanvasHandle } from './FlowCanvas';
import { Inspector } from './Inspector';
import { CATEGORY_ICON } from './NodeView';
import type { Pickers } from './formSchema';
import {
  addNodes, defaultValues, findNode, knownVariables, newNodeId, nodeEntries, nodeKey, removeNodes, setExit, updateNode,
  type SlidDoc, type SlidNode,
} from './model';
import { Simulate, type Highlight } from './Simulate';

interface Open {
  /** Flow name (the name it is saved under). */
  name: string;
  /** What was opened: development copy, a release, an import or a new flow. */
  source: 'development' | number | 'import' | 'new';
  /** The text it was loaded from (saved as is while the document has no edit). */
  text: string | null;
  /** The parsed document as loaded (identity tells an unedited document). */
  loaded: SlidDoc;
}

interface History { past: SlidDoc[]; present: SlidDoc; future: SlidDoc[] }

const CATEGORY_ORDER = ['start', 'analysis', 'query', 'registrar', 'action', 'output', 'flow'];
const FLOW_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => { const t = setTimeout(() => setV(value), ms); return () => clearTimeout(t); }, [value, ms]);
  return v;
}

export function App() {
  const [token, setToken] = useState<string | null>(() => initialToken());
  const [askToken, setAskToken] = useState(!token);
  const api = useMemo(() => new Api(token), [token]);
  useEffect(() => { api.onUnauthorized = () => setAskToken(true); }, [api]);

  const [types, setTypes] = useState<Map<string, NodeTypeInfo>>(new Map());
  const [tables, setTables] = useState<DirectoryTable[]>([]);
  const [flows, setFlows] = useState<FlowSummary[]>([]);
  const [details, setDetails] = useState<Record<string, FlowDetail>>({});
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState<{ kind: 'info' | 'ok' | 'error'; text: string } | null>(null);

  // info and success messages fade after a while; errors stay until clicked
  useEffect(() => {
    if (!status || status.kind === 'error') return;
    const t = setTimeout(() => setStatus(null), 6000);
    return () => clearTimeout(t);
  }, [status]);

  const [open, setOpen] = useState<Open | null>(null);
  const [hist, setHist] = useState<History | null>(null);
  const [logicId, setLogicId] = useState<string | null>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [validating, setValidating] = useState(false);
  const [saveProblems, setSaveProblems] = useState<Problem[] | null>(null);
  const [rightTab, setRightTab] = useState<'inspector' | 'simulate'>('inspector');
  const [highlight, setHighlight] = useState<Highlight | null>(null);
  const [newName, setNewName] = useState('');
  const canvas = useRef<CanvasHandle>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const doc = hist?.present ?? null;
  const dirty = !!open && !!doc && doc !== open.loaded;
  const logic = doc && logicId ? doc[logicId] : undefined;

  // ------------------------------------------------------------ loading
  const refreshFlows = useCallback(async () => {
    try { setFlows(await api.flows()); } catch (e) { if (!(e instanceof ApiFailure && e.status === 401)) setStatus({ kind: 'error', text: `flows: ${(e as Error).message}` }); }
  }, [api]);

  useEffect(() => {
    if (!token) return;
    api.nodeTypes().then((ts) => setTypes(new Map(ts.map((t) => [t.type, t])))).catch((e) => setStatus({ kind: 'error', text: `node types: ${e.message}` }));
    api.directorySchema().then(setTables).catch(() => setTables([]));
    refreshFlows();
  }, [api, token, refreshFlows]);

  const loadDoc = useCallback((o: Open) => {
    setOpen(o);
    setHist({ past: [], present: o.loaded, future: [] });
    const ids = Object.keys(o.loaded);
    setLogicId(ids[0] ?? null);
    setSelected([]);
    setProblems([]);
    setSaveProblems(null);
    setHighlight(null);
    setTimeout(() => canvas.current?.fit(), 50);
  }, []);

  const confirmDiscard = () => !dirty || window.confirm('Discard the unsaved changes?');

  const openFlow = useCallback(async (name: string, version: number | 'development' = 'development') => {
    if (!confirmDiscard()) return;
    try {
      const text = await api.exportText(name, version);
      loadDoc({ name, source: version, text, loaded: JSON.parse(text) });
      setStatus({ kind: 'info', text: `opened ${name} ${version === 'development' ? '(development)' : `v${version}`}` });
      window.location.hash = `#/flow/${encodeURIComponent(name)}${version === 'development' ? '' : `/v${version}`}`;
    } catch (e) {
      setStatus({ kind: 'error', text: `open ${name}: ${(e as Error).message}` });
    }
  // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, loadDoc, dirty]);

  // open the flow named in the URL hash once the token is there
  const hashOpened = useRef(false);
  useEffect(() => {
    if (!token || hashOpened.current) return;
    hashOpened.current = true;
    const m = /^#\/flow\/([^/]+)(?:\/v(\d+))?$/.exec(window.location.hash);
    if (m) openFlow(decodeURIComponent(m[1]), m[2] ? Number(m[2]) : 'development');
  }, [token, openFlow]);

  const toggleDetails = async (name: string) => {
    if (details[name]) { const { [name]: _, ...rest } = details; setDetails(rest); return; }
    try { const d = await api.flow(name); setDetails({ ...details, [name]: d }); } catch (e) { setStatus({ kind: 'error', text: (e as Error).message }); }
  };

  // ------------------------------------------------------------ editing
  const commit = useCallback((fn: (d: SlidDoc) => SlidDoc) => {
    setHist((h) => {
      if (!h) return h;
      const next = fn(h.present);
      if (next === h.present) return h;
      return { past: [...h.past.slice(-199), h.present], present: next, future: [] };
    });
  }, []);
  const undo = useCallback(() => setHist((h) => (h && h.past.length ? { past: h.past.slice(0, -1), present: h.past[h.past.length - 1], future: [h.present, ...h.future] } : h)), []);
  const redo = useCallback(() => setHist((h) => (h && h.future.length ? { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1) } : h)), []);

  const addNode = useCallback((type: string, at?: { x: number; y: number }) => {
    if (!doc || !logicId) return;
    const t = types.get(type);
    if (!t) return;
    const pos = at ?? canvas.current?.center() ?? { x: 100, y: 100 };
    const existing = nodeEntries(doc[logicId]);
    // stagger nodes added at the same spot
    let x = Math.round(pos.x - 90);
    const y = Math.round(pos.y - 30);
    while (existing.some((e) => Math.abs(Number(e.node.x) - x) < 220 && Math.abs(Number(e.node.y) - y) < 90)) x += 250;
    const id = newNodeId(doc[logicId]);
    const node: SlidNode = { id, name: t.title, type, description: '', values: defaultValues(t), archived: false, x, y };
    commit((d) => addNodes(d, logicId, [node]));
    setSelected([nodeKey(id)]);
  }, [doc, logicId, types, commit]);

  const duplicate = useCallback(() => {
    if (!doc || !logicId || selected.length === 0) return;
    const l = doc[logicId];
    const taken = new Set<string>();
    const copies: SlidNode[] = [];
    for (const id of selected) {
      const e = findNode(l, id);
      if (!e) continue;
      const nid = newNodeId(l, taken);
      taken.add(nodeKey(nid));
      copies.push({ ...structuredClone(e.node), id: nid, name: `${e.node.name ?? ''} copy`, x: (Number(e.node.x) || 0) + 40, y: (Number(e.node.y) || 0) + 40 });
    }
    commit((d) => addNodes(d, logicId, copies));
    setSelected(copies.map((c) => nodeKey(c.id)));
  }, [doc, logicId, selected, commit]);

  const deleteSelection = useCallback((nodes: string[], edges: Array<{ source: string; pointer: string }>) => {
    if (!logicId) return;
    commit((d) => {
      let out = d;
      for (const e of edges) out = setExit(out, logicId, e.source, e.pointer, null);
      if (nodes.length) out = removeNodes(out, logicId, nodes, types);
      return out;
    });
    setSelected((s) => s.filter((id) => !nodes.includes(id)));
  }, [logicId, commit, types]);

  const onSetExit = useCallback((source: string, pointer: string, target: string | null) => {
    if (!logicId) return;
    commit((d) => {
      const t = target === null ? null : findNode(d[logicId], target)?.node.id ?? target;
      return setExit(d, logicId, source, pointer, t as number | string | null);
    });
  }, [logicId, commit]);

  const onMove = useCallback((moves: Array<{ id: string; x: number; y: number }>) => {
    if (!logicId) return;
    commit((d) => moves.reduce((acc, m) => updateNode(acc, logicId, m.id, (n) => (n.x === m.x && n.y === m.y ? n : { ...n, x: m.x, y: m.y })), d));
  }, [logicId, commit]);

  // ------------------------------------------------------------ validation (debounced, on the server: the engine's own rules)
  const debouncedDoc = useDebounced(doc, 350);
  useEffect(() => {
    if (!debouncedDoc || !open) return;
    let cancelled = false;
    setValidating(true);
    const text = debouncedDoc === open.loaded && open.text !== null ? open.text : JSON.stringify(debouncedDoc);
    api.validate(text, `${open.name}.slid`)
      .then((r) => { if (!cancelled) setProblems(r.problems); })
      .catch((e) => { if (!cancelled) setStatus({ kind: 'error', text: `validate: ${e.message}` }); })
      .finally(() => { if (!cancelled) setValidating(false); });
    return () => { cancelled = true; };
  }, [debouncedDoc, open, api]);

  const logicProblems = useMemo(() => problems.filter((p) => p.logicId === undefined || p.logicId === logicId), [problems, logicId]);
  const errorCount = problems.filter((p) => p.severity === 'error').length;
  const warningCount = problems.length - errorCount;

  // ------------------------------------------------------------ save, release, export, import
  const docText = () => (doc === open?.loaded && open?.text !== null ? open!.text! : JSON.stringify(doc, null, 2) + '\n');

  const save = useCallback(async (): Promise<boolean> => {
    if (!open || !doc) return false;
    if (!FLOW_NAME.test(open.name)) { setStatus({ kind: 'error', text: `invalid flow name "${open.name}"` }); return false; }
    const text = docText();
    try {
      const r = await api.save(open.name, text);
      const loaded = doc;
      setOpen({ ...open, source: 'development', text, loaded });
      setSaveProblems(null);
      setStatus({ kind: 'ok', text: `saved ${open.name} (development${r.created ? ', created' : ''}${r.problems.length ? `, ${r.problems.length} warning(s)` : ''})` });
      refreshFlows();
      if (details[open.name]) setDetails({ ...details, [open.name]: await api.flow(open.name) });
      return true;
    } catch (e) {
      const f = e as ApiFailure;
      setSaveProblems(f.body?.problems ?? null);
      setStatus({ kind: 'error', text: `not saved: ${f.body?.problems ? `${f.body.problems.filter((p: Problem) => p.severity === 'error').length} error(s)` : f.message}` });
      return false;
    }
  // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, doc, api, refreshFlows, details]);

  const release = async () => {
    if (!open) return;
    if ((dirty || open.source !== 'development') && !(await save())) return;
    const note = window.prompt('Release note (optional)') ?? undefined;
    try {
      const r = await api.release(open.name, note || undefined);
      setStatus({ kind: 'ok', text: `released ${open.name} v${r.version}` });
      refreshFlows();
      setDetails({ ...details, [open.name]: await api.flow(open.name) });
    } catch (e) { setStatus({ kind: 'error', text: `release: ${(e as Error).message}` }); }
  };

  const activate = async (name: string, version: number) => {
    try {
      await api.activate(name, version);
      setStatus({ kind: 'ok', text: `activated ${name} v${version}` });
      refreshFlows();
      setDetails({ ...details, [name]: await api.flow(name) });
    } catch (e) { setStatus({ kind: 'error', text: `activate: ${(e as Error).message}` }); }
  };

  const exportSlid = () => {
    if (!open || !doc) return;
    const blob = new Blob([docText()], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${open.name}${typeof open.source === 'number' ? `-v${open.source}` : ''}.slid`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  const importFile = async (file: File) => {
    if (!confirmDiscard()) return;
    const text = await file.text();
    try {
      const loaded = JSON.parse(text);
      const name = file.name.replace(/\.slid$|\.json$/i, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'imported';
      loadDoc({ name, source: 'import', text, loaded });
      setStatus({ kind: 'info', text: `imported ${file.name} as "${name}" (not saved yet)` });
    } catch (e) { setStatus({ kind: 'error', text: `${file.name}: not JSON: ${(e as Error).message}` }); }
  };

  const newFlow = () => {
    const name = newName.trim();
    if (!FLOW_NAME.test(name)) { setStatus({ kind: 'error', text: 'flow name: letters, digits, . _ - (up to 64)' }); return; }
    if (flows.some((f) => f.name === name)) { setStatus({ kind: 'error', text: `flow "${name}" exists` }); return; }
    if (!confirmDiscard()) return;
    loadDoc({ name, source: 'new', text: null, loaded: { 1: { name, description: '', nodes: {} } } });
    setNewName('');
    setStatus({ kind: 'info', text: `new flow "${name}": add a Start node from the palette` });
  };

  // ------------------------------------------------------------ keyboard
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
      const mod = e.ctrlKey || e.metaKey;
      if (!mod) return;
      const k = e.key.toLowerCase();
      if (k === 's') { e.preventDefault(); save(); return; }
      if (typing) return;
      if (k === 'z' && !e.shiftKey) { e.preventDefault(); undo(); }
      else if (k === 'y' || (k === 'z' && e.shiftKey)) { e.preventDefault(); redo(); }
      else if (k === 'd') { e.preventDefault(); duplicate(); }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [save, undo, redo, duplicate]);

  // ------------------------------------------------------------ pickers for the forms
  const pickers: Pickers = useMemo(() => ({
    variables: knownVariables(doc, types).sort(),
    tables: tables.map((t) => t.name),
    columns: tables.flatMap((t) => t.columns.map((c) => `${t.name.split('.').pop()}.${c.name}`)),
    logics: doc ? Object.entries(doc).flatMap(([id, l]) => [id, ...(l?.name ? [l.name] : [])]) : [],
  }), [types, tables, doc]);

  const selectIds = useCallback((ids: string[]) => setSelected((prev) => (prev.length === ids.length && prev.every((id, i) => id === ids[i]) ? prev : ids)), []);
  const selectedEntry = selected.length === 1 && logic ? findNode(logic, selected[0]) : undefined;
  const focusNode = useCallback((id: string) => { setSelected([id]); setRightTab('inspector'); canvas.current?.focusNode(id); }, []);

  const palette = useMemo(() => {
    const groups = new Map<string, NodeTypeInfo[]>();
    for (const t of types.values()) (groups.get(t.category) ?? groups.set(t.category, []).get(t.category)!).push(t);
    return CATEGORY_ORDER.filter((c) => groups.has(c)).map((c) => [c, groups.get(c)!] as const);
  }, [types]);

  const shownFlows = flows.filter((f) => !search || f.name.toLowerCase().includes(search.toLowerCase()) || f.logics.some((l) => l.name.toLowerCase().includes(search.toLowerCase())));
  const shownProblems = saveProblems ?? logicProblems;

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">sipflow <span>designer</span></div>
        {open ? (
          <div className="doc-title" data-testid="doc-title">
            <strong>{open.name}</strong>
            <span className="hint"> {typeof open.source === 'number' ? `release v${open.source}` : open.source}{dirty ? ' · edited' : ''}</span>
            {doc && Object.keys(doc).length > 1 && (
              <select value={logicId ?? ''} onChange={(e) => { setLogicId(e.target.value); setSelected([]); setHighlight(null); setTimeout(() => canvas.current?.fit(), 50); }} data-testid="logic-select">
                {Object.entries(doc).map(([id, l]) => <option key={id} value={id}>logic {id} “{l?.name}”</option>)}
              </select>
            )}
            {doc && Object.keys(doc).length === 1 && logicId && <span className="hint"> · logic {logicId} “{doc[logicId]?.name}”</span>}
          </div>
        ) : <div className="doc-title hint">no flow open</div>}
        <div className="tools">
          <button onClick={undo} disabled={!hist?.past.length} title="Undo (Ctrl+Z)">↶ Undo</button>
          <button onClick={redo} disabled={!hist?.future.length} title="Redo (Ctrl+Y)">↷ Redo</button>
          <button onClick={duplicate} disabled={!selected.length} title="Duplicate (Ctrl+D)">Duplicate</button>
          <span className="sep" />
          <span className={`vstatus ${errorCount ? 'bad' : 'good'}`} data-testid="validation-status">
            {!open ? '' : validating ? 'validating…' : errorCount ? `${errorCount} error(s)` : warningCount ? `valid · ${warningCount} warning(s)` : 'valid'}
          </span>
          <button className="primary" onClick={() => save()} disabled={!open} data-testid="save" title="Save development copy (Ctrl+S)">Save</button>
          <button onClick={release} disabled={!open} data-testid="release" title="Freeze the development copy as a new release">Release</button>
          <button onClick={exportSlid} disabled={!open} data-testid="export">Export .slid</button>
          <button onClick={() => fileInput.current?.click()}>Import…</button>
          <input ref={fileInput} type="file" accept=".slid,.json,application/json" hidden data-testid="import-file"
            onChange={(e) => { const f = e.target.files?.[0]; if (f) importFile(f); e.target.value = ''; }} />
          <button onClick={() => setAskToken(true)} title="API token">Token</button>
        </div>
      </header>

      <aside className="left">
        <section className="panel flows-panel">
          <div className="panel-title">Flows</div>
          <input className="search" placeholder="search flows…" value={search} onChange={(e) => setSearch(e.target.value)} data-testid="flow-search" />
          <ul className="flow-list" data-testid="flow-list">
            {shownFlows.map((f) => (
              <li key={f.name} className={open?.name === f.name ? 'current' : ''}>
                <div className="flow-row">
                  <button className="twisty" onClick={() => toggleDetails(f.name)} title="releases">{details[f.name] ? '▾' : '▸'}</button>
                  <button className="flow-name" onClick={() => openFlow(f.name)} data-testid={`flow-${f.name}`}>{f.name}</button>
                  <span className="hint">{f.activeVersion ? `v${f.activeVersion} active` : 'dev'}</span>
                </div>
                {details[f.name] && (
                  <ul className="releases">
                    <li><button className="link" onClick={() => openFlow(f.name)}>development</button> <span className="hint">{new Date(details[f.name].updatedAt).toLocaleString()}</span></li>
                    {[...details[f.name].releases].reverse().map((r) => (
                      <li key={r.version}>
                        <button className="link" onClick={() => openFlow(f.name, r.version)}>v{r.version}</button>
                        {details[f.name].active?.version === r.version ? <span className="pill active">active</span>
                          : <button className="link small" onClick={() => activate(f.name, r.version)}>activate</button>}
                        {r.note && <span className="hint"> {r.note}</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
          <div className="row">
            <input placeholder="new flow name" value={newName} onChange={(e) => setNewName(e.target.value)} data-testid="new-flow-name"
              onKeyDown={(e) => { if (e.key === 'Enter') newFlow(); }} />
            <button onClick={newFlow} data-testid="new-flow">New</button>
          </div>
        </section>
        <section className="panel palette" data-testid="palette">
          <div className="panel-title">Node types <span className="hint">click or drag onto the canvas</span></div>
          {palette.map(([cat, ts]) => (
            <div key={cat} className="palette-group">
              <div className="palette-cat">{cat}</div>
              {ts.map((t) => (
                <div key={t.type} className="palette-item" draggable={!!open} title={`${t.type}\n${t.description}`}
                  data-testid={`palette-${t.type}`}
                  onDragStart={(e) => { e.dataTransfer.setData('application/x-sipflow-node-type', t.type); e.dataTransfer.effectAllowed = 'copy'; }}
                  onClick={() => addNode(t.type)}>
                  <span className="sip-icon" style={{ background: categoryColor(t.category) }}>{CATEGORY_ICON[t.category]}</span>
                  {t.title}
                </div>
              ))}
            </div>
          ))}
        </section>
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
            onSelect={selectIds}
            onMove={onMove}
            onSetExit={onSetExit}
            onDelete={deleteSelection}
            onDropType={(t, at) => addNode(t, at)}
          />
        ) : (
          <div className="empty">
            <h2>Open a flow</h2>
            <p>Pick a flow on the left, create a new one, or import a <code>.slid</code> file.</p>
          </div>
        )}
        <section className="problems" data-testid="problems">
          <div className="panel-title">
            {saveProblems ? 'Save refused: problems' : 'Problems'} <span className="hint">{errorCount} error(s), {warningCount} warning(s) · validated by the server with the engine's rules</span>
            {saveProblems && <button className="link small" onClick={() => setSaveProblems(null)}>show live problems</button>}
          </div>
          <ul>
            {shownProblems.map((p, i) => (
              <li key={i} className={`problem ${p.severity}`} data-testid="problem" onClick={() => { if (p.nodeId !== undefined && (p.logicId === undefined || p.logicId === logicId)) focusNode(p.nodeId); }}>
                <span className={`sev ${p.severity}`}>{p.severity}</span>
                {p.nodeId !== undefined && <span className="where">node {p.nodeId}{p.nodeName ? ` “${p.nodeName}”` : ''}</span>}
                {p.pointer && <code>{p.pointer}</code>}
                <span>{p.message}</span>
              </li>
            ))}
            {open && shownProblems.length === 0 && !validating && <li className="hint">no problems</li>}
          </ul>
        </section>
        {status && <div className={`status status-${status.kind}`} data-testid="status" onClick={() => setStatus(null)}>{status.text}</div>}
      </main>

      <aside className="right">
        <div className="tabs">
          <button className={rightTab === 'inspector' ? 'on' : ''} onClick={() => setRightTab('inspector')} data-testid="tab-inspector">Properties</button>
          <button className={rightTab === 'simulate' ? 'on' : ''} onClick={() => setRightTab('simulate')} data-testid="tab-simulate">Simulate</button>
        </div>
        <div className="tab-body" style={{ display: rightTab === 'inspector' ? undefined : 'none' }}>
          {selectedEntry && logicId ? (
            <Inspector
              node={selectedEntry.node}
              type={types.get(selectedEntry.node.type)}
              pickers={pickers}
              problems={problems.filter((p) => p.logicId === logicId && p.nodeId === nodeKey(selectedEntry.node.id))}
              onChange={(fn) => commit((d) => updateNode(d, logicId, nodeKey(selectedEntry.node.id), fn))}
            />
          ) : <p className="hint pad">{selected.length > 1 ? `${selected.length} nodes selected` : 'Select a node to edit its properties.'}</p>}
        </div>
        <div className="tab-body" style={{ display: rightTab === 'simulate' ? undefined : 'none' }}>
          <Simulate api={api} doc={doc} logicId={logicId} onHighlight={setHighlight} onFocusNode={(id) => canvas.current?.focusNode(id)} />
        </div>
      </aside>

      {askToken && (
        <div className="modal-back">
          <form className="modal" onSubmit={(e) => {
            e.preventDefault();
            const v = String(new FormData(e.currentTarget).get('token') ?? '').trim();
            storeToken(v || null); setToken(v || null); setAskToken(!v);
          }}>
            <h3>API token</h3>
            <p>The designer talks to the sipflow HTTP API with its bearer token: <code>http.token</code> in the config, or the file <code>&lt;dataDir&gt;/api-token</code>. It is kept in this browser (localStorage).</p>
            <input name="token" type="password" defaultValue={token ?? ''} autoFocus data-testid="token-input" />
            <div className="row"><button className="primary" type="submit">Use token</button>{token && <button type="button" onClick={() => setAskToken(false)}>Cancel</button>}</div>
          </form>
        </div>
      )}
    </div>
  );
}

export function Root() {
  return <ReactFlowProvider><App /></ReactFlowProvider>;
}
