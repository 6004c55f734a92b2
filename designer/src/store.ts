/**
 * The designer's state: one reducer, typed actions. Every change goes through `dispatch`, including
 * the ones made when an API call returns, so an answer updates the state as it is then (never a
 * copy taken before the `await`). Document edits are computed here from the present document.
 */
import { addLogic, deleteLogic, renameLogic } from './logics';
import type { DirectoryTable, FlowDetail, FlowSummary, HistoryRun, NodeTypeInfo, Problem } from './api';
import {
  addNodes,
  defaultValues,
  exitsOf,
  findNode,
  newNodeId,
  nodeEntries,
  nodeKey,
  removeNodes,
  setExit,
  notesOf,
  setNotes,
  updateNode,
  type CanvasNote,
  type SlidDoc,
  type SlidNode,
} from './model';
import { EXIT_ROW, NODE_WIDTH, boxesOf, nodeHeight, overlaps } from './nodeSize';
import { pastedNodes } from './clipboard';
import type { OpenRun } from './CallRun';
import type { SimulatorPreset } from './Simulate';
import { pathHighlight, splitPasses, type Highlight } from './trace';

export interface Open {
  /** Which load of a document this is (a save answered for another load leaves the open one alone). */
  session: number;
  /** Flow name (the name it is saved under). */
  name: string;
  /** What was opened: development copy, a release, an import or a new flow. */
  source: 'development' | number | 'import' | 'new';
  /** The text it was loaded from (saved as is while the document has no edit). */
  text: string | null;
  /** The parsed document as loaded (identity tells an unedited document). */
  loaded: SlidDoc;
  /**
   * The development copy's revision this document was made from (sent as If-Match on save: a stale
   * save is refused); null: the flow is not stored yet (a save only creates, never overwrites).
   */
  revision: string | null;
}

export interface History {
  past: SlidDoc[];
  present: SlidDoc;
  future: SlidDoc[];
}

export interface Status {
  kind: 'info' | 'ok' | 'error';
  text: string;
}

export type RightTab = 'inspector' | 'simulate' | 'run' | 'tests';
/** The editor (flows, canvas, panels) or the Calls view (recorded calls). */
export type View = 'editor' | 'calls';

export interface DesignerState {
  token: string | null;
  askToken: boolean;
  types: Map<string, NodeTypeInfo>;
  tables: DirectoryTable[];
  flows: FlowSummary[];
  /** Flows whose releases are shown in the list. */
  details: Record<string, FlowDetail>;
  search: string;
  status: Status | null;
  open: Open | null;
  hist: History | null;
  logicId: string | null;
  selected: string[];
  /** Live problems of the document (server validation). */
  problems: Problem[];
  validating: boolean;
  /** Problems of a refused save (shown instead of the live ones until dismissed). */
  saveProblems: Problem[] | null;
  rightTab: RightTab;
  highlight: Highlight | null;
  newName: string;
  /** Documents loaded so far (the next Open's session). */
  sessions: number;
  view: View;
  /** A recorded call's logic run shown in the editor (its path lit, its steps in the "Run" tab). */
  run: OpenRun | null;
  /** The call descriptor a run's "Replay in simulator" put into the simulator. */
  simPreset: SimulatorPreset | null;
}

export type Action =
  // session and catalogue
  | { type: 'token'; token: string | null }
  | { type: 'askToken'; ask: boolean }
  | { type: 'typesLoaded'; types: NodeTypeInfo[] }
  | { type: 'tablesLoaded'; tables: DirectoryTable[] }
  | { type: 'flowsLoaded'; flows: FlowSummary[] }
  /** Shows a flow's releases (fetched). */
  | { type: 'detailsLoaded'; name: string; detail: FlowDetail }
  /** Updates a flow's releases only when they are still shown. */
  | { type: 'detailsRefreshed'; name: string; detail: FlowDetail }
  | { type: 'detailsClosed'; name: string }
  | { type: 'search'; text: string }
  | { type: 'newName'; text: string }
  | { type: 'status'; status: Status | null }
  // the open document
  | { type: 'docLoaded'; open: Omit<Open, 'session'> }
  /** A save started on `from` (the Open then) stored `text`, made from `doc`. */
  | { type: 'saved'; from: Open; text: string; doc: SlidDoc; revision: string }
  /** The open flow was renamed or deleted (then `revision` null: a save creates it again). */
  | { type: 'openMoved'; from: string; name: string; revision?: string | null }
  | { type: 'saveRefused'; problems: Problem[] | null }
  | { type: 'saveProblemsCleared' }
  | { type: 'validating' }
  | { type: 'validated'; problems: Problem[] }
  | { type: 'validationDone' }
  | { type: 'logicChosen'; logicId: string }
  // editing (applied to the present document)
  | { type: 'undo' }
  | { type: 'redo' }
  /**
   * A new node at `at`; with `chain` (a palette click) and one node selected: right of the selected
   * node instead, connected from its first unconnected exit.
   */
  | { type: 'addNode'; nodeType: string; at: { x: number; y: number }; chain?: boolean }
  | { type: 'addLogic'; name: string }
  | { type: 'renameLogic'; logicId: string; name: string }
  | { type: 'deleteLogic'; logicId: string }
  | { type: 'duplicate' }
  | { type: 'delete'; nodes: string[]; edges: Array<{ source: string; pointer: string }> }
  | { type: 'setExit'; source: string; pointer: string; target: string | null }
  | { type: 'move'; moves: Array<{ id: string; x: number; y: number }> }
  | { type: 'editNode'; logicId: string; id: string; fn: (n: SlidNode) => SlidNode }
  /** Nodes from the clipboard (./clipboard.ts), centred on `at`: new ids, exits among them re-pointed. */
  | { type: 'paste'; nodes: SlidNode[]; at: { x: number; y: number } }
  /** Edits the canvas notes of the logic shown (`logic["x-sipflow"].notes`). */
  | { type: 'notes'; fn: (notes: CanvasNote[]) => CanvasNote[] }
  // view
  | { type: 'select'; ids: string[] }
  | { type: 'focusNode'; id: string }
  | { type: 'rightTab'; tab: RightTab }
  | { type: 'highlight'; highlight: Highlight | null }
  | { type: 'view'; view: View }
  /** A recorded run opened on the canvas (the run's flow and logic already open): path lit, "Run" tab shown. */
  | { type: 'runOpened'; run: OpenRun }
  | { type: 'runClosed' }
  /** A recorded run's call descriptor into the simulator, shown on the logic open. */
  | { type: 'replay'; run: HistoryRun; cd: Record<string, unknown>; label: string };

export function initialState(token: string | null): DesignerState {
  return {
    token,
    askToken: !token,
    types: new Map(),
    tables: [],
    flows: [],
    details: {},
    search: '',
    status: null,
    open: null,
    hist: null,
    logicId: null,
    selected: [],
    problems: [],
    validating: false,
    saveProblems: null,
    rightTab: 'inspector',
    highlight: null,
    newName: '',
    sessions: 0,
    view: 'editor',
    run: null,
    simPreset: null,
  };
}

/** The document being edited (present of the history). */
export const docOf = (s: DesignerState): SlidDoc | null => s.hist?.present ?? null;
/** True when the document differs from what was loaded or last saved. */
export const isDirty = (s: DesignerState): boolean => !!s.open && !!s.hist && s.hist.present !== s.open.loaded;

/** The text to save or export: the loaded text while unedited (byte for byte), else the document. */
export function docText(s: DesignerState): string {
  const doc = docOf(s);
  return doc === s.open?.loaded && s.open.text !== null ? s.open.text : JSON.stringify(doc, null, 2) + '\n';
}

/** One edit of the present document: a new history entry unless nothing changed (then `s` itself). */
function commit(s: DesignerState, fn: (d: SlidDoc) => SlidDoc, extra: Partial<DesignerState> = {}): DesignerState {
  const h = s.hist;
  if (!h) return Object.keys(extra).length ? { ...s, ...extra } : s;
  const next = fn(h.present);
  const hist = next === h.present ? h : { past: [...h.past.slice(-199), h.present], present: next, future: [] };
  return hist === h && Object.keys(extra).length === 0 ? s : { ...s, ...extra, hist };
}

const sameIds = (a: string[], b: string[]) => a.length === b.length && a.every((id, i) => id === b[i]);

/** Boxes of a logic's nodes at the canvas's size. */
function boxesOfLogic(s: DesignerState, logic: SlidDoc[string]) {
  return boxesOf(
    nodeEntries(logic).map(({ node }) => {
      const t = s.types.get(node.type);
      return { id: nodeKey(node.id), x: Number(node.x) || 0, y: Number(node.y) || 0, exits: t ? exitsOf(t, node.values).length : 0 };
    }),
  );
}

/** A node added right of the selected one, connected from its first unconnected exit, and selected. */
function chainNode(s: DesignerState, type: string): DesignerState | null {
  const doc = docOf(s);
  const logicId = s.logicId;
  if (!doc || !logicId || s.selected.length !== 1) return null;
  const t = s.types.get(type);
  const from = findNode(doc[logicId], s.selected[0]);
  if (!t || !from) return null;
  const ft = s.types.get(from.node.type);
  const exits = ft ? exitsOf(ft, from.node.values) : [];
  const free = exits.findIndex((e) => e.target === null || e.target === undefined || e.target === '');
  const id = newNodeId(doc[logicId]);
  const x = Math.round((Number(from.node.x) || 0) + NODE_WIDTH + 130);
  // level with the exit it hangs from, then down until it overlaps nothing
  let y = Math.round((Number(from.node.y) || 0) + (free > 0 ? nodeHeight(0) + EXIT_ROW * free : 0));
  const boxes = boxesOfLogic(s, doc[logicId]);
  const h = nodeHeight(exitsOf(t, defaultValues(t)).length);
  while (overlaps([...boxes, { id: '', x, y, width: NODE_WIDTH, height: h }], 20).some(([a, b]) => a === '' || b === '')) y += 40;
  const node: SlidNode = { id, name: t.title, type, description: '', values: defaultValues(t), archived: false, x, y };
  return commit(
    s,
    (d) => {
      const added = addNodes(d, logicId, [node]);
      return free >= 0 ? setExit(added, logicId, s.selected[0], exits[free].pointer, id) : added;
    },
    { selected: [nodeKey(id)] },
  );
}

function addNode(s: DesignerState, type: string, pos: { x: number; y: number }, chain = false): DesignerState {
  if (chain) {
    const chained = chainNode(s, type);
    if (chained) return chained;
  }
  const doc = docOf(s);
  const logicId = s.logicId;
  if (!doc || !logicId) return s;
  const t = s.types.get(type);
  if (!t) return s;
  const existing = nodeEntries(doc[logicId]);
  // stagger nodes added at the same spot
  let x = Math.round(pos.x - 90);
  const y = Math.round(pos.y - 30);
  while (existing.some((e) => Math.abs(Number(e.node.x) - x) < 220 && Math.abs(Number(e.node.y) - y) < 90)) x += 250;
  const id = newNodeId(doc[logicId]);
  const node: SlidNode = { id, name: t.title, type, description: '', values: defaultValues(t), archived: false, x, y };
  return commit(s, (d) => addNodes(d, logicId, [node]), { selected: [nodeKey(id)] });
}

function paste(s: DesignerState, nodes: SlidNode[], at: { x: number; y: number }): DesignerState {
  const doc = docOf(s);
  const logicId = s.logicId;
  if (!doc || !logicId || nodes.length === 0) return s;
  const boxes = boxesOf(
    nodes.map((n) => {
      const t = s.types.get(n.type);
      return { id: nodeKey(n.id), x: Number(n.x) || 0, y: Number(n.y) || 0, exits: t ? exitsOf(t, n.values).length : 0 };
    }),
  );
  const minX = Math.min(...boxes.map((b) => b.x));
  const minY = Math.min(...boxes.map((b) => b.y));
  const maxX = Math.max(...boxes.map((b) => b.x + b.width));
  const maxY = Math.max(...boxes.map((b) => b.y + b.height));
  let dx = Math.round(at.x - (minX + maxX) / 2);
  let dy = Math.round(at.y - (minY + maxY) / 2);
  // off the nodes already there (by steps of 40, as far as it takes)
  const there = boxesOfLogic(s, doc[logicId]).map((b) => ({ ...b, id: `there:${b.id}` }));
  for (let k = 0; k < 50; k++) {
    const moved = boxes.map((b) => ({ ...b, x: b.x + dx, y: b.y + dy }));
    if (!overlaps([...there, ...moved], 10).some(([a, b]) => a.startsWith('there:') !== b.startsWith('there:'))) break;
    dx += 40;
    dy += 40;
  }
  const added = pastedNodes(nodes, s.types, (taken) => newNodeId(doc[logicId], taken), dx, dy);
  return commit(s, (d) => addNodes(d, logicId, added), { selected: added.map((n) => nodeKey(n.id)) });
}

function duplicate(s: DesignerState): DesignerState {
  const doc = docOf(s);
  const logicId = s.logicId;
  if (!doc || !logicId || s.selected.length === 0) return s;
  const l = doc[logicId];
  const taken = new Set<string>();
  const copies: SlidNode[] = [];
  for (const id of s.selected) {
    const e = findNode(l, id);
    if (!e) continue;
    const nid = newNodeId(l, taken);
    taken.add(nodeKey(nid));
    copies.push({ ...structuredClone(e.node), id: nid, name: `${e.node.name ?? ''} copy`, x: (Number(e.node.x) || 0) + 40, y: (Number(e.node.y) || 0) + 40 });
  }
  return commit(s, (d) => addNodes(d, logicId, copies), { selected: copies.map((c) => nodeKey(c.id)) });
}

/** The state with a recorded run's logic chosen, or why it cannot be: its flow is not the one open, or lacks the logic. */
function showRunLogic(s: DesignerState, run: HistoryRun): DesignerState | string {
  const doc = docOf(s);
  if (run.flow !== null && s.open?.name !== run.flow)
    return s.flows.some((f) => f.name === run.flow)
      ? `flow "${run.flow}" of the run is not open`
      : `flow "${run.flow}" of the run is not in the flows store (deleted or renamed since)`;
  if (!doc) return 'the run names no flow: open the flow it ran in first';
  if (!doc[run.logicId]) return `logic ${run.logicId} (“${run.logic}”) is not in flow ${s.open?.name}`;
  return s.logicId === run.logicId ? s : { ...s, logicId: run.logicId, selected: [] };
}

/** After an undo or redo, the logic shown must still exist (one added or deleted by the step). */
function keepLogic(s: DesignerState): DesignerState {
  const doc = docOf(s);
  if (!doc || (s.logicId !== null && doc[s.logicId])) return s;
  return { ...s, logicId: Object.keys(doc)[0] ?? null, selected: [], highlight: null };
}

export function reducer(s: DesignerState, a: Action): DesignerState {
  switch (a.type) {
    case 'token':
      return { ...s, token: a.token, askToken: !a.token };
    case 'askToken':
      return { ...s, askToken: a.ask };
    case 'typesLoaded':
      return { ...s, types: new Map(a.types.map((t) => [t.type, t])) };
    case 'tablesLoaded':
      return { ...s, tables: a.tables };
    case 'flowsLoaded':
      return { ...s, flows: a.flows };
    case 'detailsLoaded':
      return { ...s, details: { ...s.details, [a.name]: a.detail } };
    case 'detailsRefreshed':
      return s.details[a.name] ? { ...s, details: { ...s.details, [a.name]: a.detail } } : s;
    case 'detailsClosed': {
      if (!s.details[a.name]) return s;
      const { [a.name]: _, ...rest } = s.details;
      return { ...s, details: rest };
    }
    case 'search':
      return { ...s, search: a.text };
    case 'newName':
      return { ...s, newName: a.text };
    case 'status':
      return { ...s, status: a.status };

    case 'docLoaded': {
      const ids = Object.keys(a.open.loaded);
      const sessions = s.sessions + 1;
      return {
        ...s,
        sessions,
        open: { ...a.open, session: sessions },
        hist: { past: [], present: a.open.loaded, future: [] },
        logicId: ids[0] ?? null,
        selected: [],
        problems: [],
        saveProblems: null,
        highlight: null,
      };
    }
    case 'saved':
      // Another document opened meanwhile: the save stands, but the open one is left alone.
      if (s.open?.session !== a.from.session) return s;
      return { ...s, open: { ...a.from, source: 'development', text: a.text, loaded: a.doc, revision: a.revision }, saveProblems: null };
    case 'openMoved':
      if (s.open?.name !== a.from) return s;
      return { ...s, open: { ...s.open, name: a.name, ...(a.revision !== undefined ? { revision: a.revision } : {}) } };
    case 'saveRefused':
      return { ...s, saveProblems: a.problems };
    case 'saveProblemsCleared':
      return { ...s, saveProblems: null };
    case 'validating':
      return { ...s, validating: true };
    case 'validated':
      return { ...s, problems: a.problems };
    case 'validationDone':
      return { ...s, validating: false };
    case 'logicChosen':
      return { ...s, logicId: a.logicId, selected: [], highlight: null };

    case 'undo': {
      const h = s.hist;
      if (!h || !h.past.length) return s;
      return keepLogic({ ...s, hist: { past: h.past.slice(0, -1), present: h.past[h.past.length - 1], future: [h.present, ...h.future] } });
    }
    case 'redo': {
      const h = s.hist;
      if (!h || !h.future.length) return s;
      return keepLogic({ ...s, hist: { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1) } });
    }
    case 'addLogic': {
      const doc = docOf(s);
      if (!doc) return s;
      const added = addLogic(doc, a.name);
      return commit(s, () => added.doc, { logicId: added.id, selected: [], highlight: null });
    }
    case 'renameLogic':
      return commit(s, (d) => renameLogic(d, a.logicId, a.name, s.types));
    case 'deleteLogic': {
      const doc = docOf(s);
      if (!doc) return s;
      const out = deleteLogic(doc, a.logicId, s.types);
      if (typeof out === 'string') return { ...s, status: { kind: 'error', text: out } };
      const logicId = s.logicId === a.logicId ? (Object.keys(out)[0] ?? null) : s.logicId;
      return commit(s, () => out, { logicId, selected: [], highlight: null });
    }
    case 'addNode':
      return addNode(s, a.nodeType, a.at, a.chain);
    case 'duplicate':
      return duplicate(s);
    case 'delete': {
      const logicId = s.logicId;
      if (!logicId) return s;
      const selected = s.selected.filter((id) => !a.nodes.includes(id));
      return commit(
        s,
        (d) => {
          let out = d;
          for (const e of a.edges) out = setExit(out, logicId, e.source, e.pointer, null);
          if (a.nodes.length) out = removeNodes(out, logicId, a.nodes, s.types);
          return out;
        },
        sameIds(selected, s.selected) ? {} : { selected },
      );
    }
    case 'setExit': {
      const logicId = s.logicId;
      if (!logicId) return s;
      return commit(s, (d) => {
        const t = a.target === null ? null : (findNode(d[logicId], a.target)?.node.id ?? a.target);
        return setExit(d, logicId, a.source, a.pointer, t);
      });
    }
    case 'move': {
      const logicId = s.logicId;
      if (!logicId) return s;
      return commit(s, (d) =>
        a.moves.reduce((acc, m) => updateNode(acc, logicId, m.id, (n) => (n.x === m.x && n.y === m.y ? n : { ...n, x: m.x, y: m.y })), d),
      );
    }
    case 'editNode':
      return commit(s, (d) => updateNode(d, a.logicId, a.id, a.fn));
    case 'paste':
      return paste(s, a.nodes, a.at);
    case 'notes': {
      const logicId = s.logicId;
      if (!logicId) return s;
      return commit(s, (d) => {
        const before = notesOf(d[logicId]);
        const after = a.fn(before);
        return after === before ? d : setNotes(d, logicId, after);
      });
    }

    case 'select':
      return sameIds(s.selected, a.ids) ? s : { ...s, selected: a.ids };
    case 'focusNode':
      return { ...s, selected: [a.id], rightTab: 'inspector' };
    case 'rightTab':
      return { ...s, rightTab: a.tab };
    case 'highlight':
      return { ...s, highlight: a.highlight };
    case 'view':
      return { ...s, view: a.view };
    case 'runOpened': {
      const shown = showRunLogic(s, a.run.run);
      if (typeof shown === 'string') return { ...s, status: { kind: 'error', text: shown } };
      const highlight = pathHighlight(splitPasses([{ input: a.run.run.input, trace: a.run.run.path }]), a.run.run.logicId);
      return { ...shown, view: 'editor', run: a.run, rightTab: 'run', highlight };
    }
    case 'runClosed':
      return { ...s, run: null, rightTab: s.rightTab === 'run' ? 'inspector' : s.rightTab, highlight: null };
    case 'replay': {
      const shown = showRunLogic(s, a.run);
      if (typeof shown === 'string') return { ...s, status: { kind: 'error', text: shown } };
      return { ...shown, view: 'editor', rightTab: 'simulate', highlight: null, simPreset: { seq: (s.simPreset?.seq ?? 0) + 1, cd: a.cd, label: a.label } };
    }
  }
}
