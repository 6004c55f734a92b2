/**
 * The canvas: nodes at their x/y showing what they do, exits as edges from named source handles,
 * labelled by meaning (./essence.ts). Dragging a handle onto a node (its input dot or anywhere on
 * its body) sets that exit; dragging an edge end onto another node re-points it, away clears it;
 * Delete removes the selection. "Layout" lays the logic out (./layout.ts, one undoable edit); a
 * logic whose nodes overlap is laid out when first shown. Fitting never zooms out below a readable
 * zoom: a bigger logic is shown from its left edge, to pan.
 */
import { forwardRef, useCallback, useEffect, useImperativeHandle, useMemo, useRef } from 'react';
import {
  Background,
  Controls,
  MarkerType,
  MiniMap,
  Panel,
  ReactFlow,
  applyNodeChanges,
  useEdgesState,
  useReactFlow,
  useUpdateNodeInternals,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type NodeChange,
  type OnSelectionChangeParams,
} from '@xyflow/react';
import type { NodeCategory } from '../../engine/node-type';
import type { NodeTypeInfo, Problem } from './api';
import { essenceOf, exitMeaning, type EssenceContext } from './essence';
import { boxesOf, layoutItems, overlaps } from './layout';
import { NODE_WIDTH, nodeHeight } from './nodeSize';
import { exitsOf, newNoteId, nodeEntries, nodeKey, notesOf, type CanvasNote, type SlidLogic } from './model';
import { NodeView, type SipNode } from './NodeView';
import { NOTE_SIZE, NoteView, type NoteNode } from './NoteView';
import { useState } from 'react';

/** Fitting never zooms out below this: 12 px text stays about 10 px on screen. */
export const MIN_FIT_ZOOM = 0.8;
const MAX_FIT_ZOOM = 1.2;
const FIT_PAD = 40;

export interface CanvasHandle {
  focusNode(id: string): void;
  center(): { x: number; y: number };
  fit(): void;
  /** Lays the logic out (one undoable edit of x/y). */
  layout(): Promise<void>;
}

interface Props {
  logic: SlidLogic | undefined;
  types: Map<string, NodeTypeInfo>;
  problems: Problem[];
  highlight: { nodes: Set<string>; edges: Set<string> } | null;
  selected: string[];
  onSelect(ids: string[]): void;
  onMove(moves: Array<{ id: string; x: number; y: number }>): void;
  onSetExit(source: string, pointer: string, target: string | null): void;
  onDelete(nodes: string[], edges: Array<{ source: string; pointer: string }>): void;
  onDropType(type: string, at: { x: number; y: number }): void;
  /** Logic id → name (the essence of a "call sub-logic" node names the logic). */
  logicNames?: Record<string, string | undefined>;
  /** Changes when another document or logic is shown: then a logic whose nodes overlap is laid out. */
  layoutKey?: string;
  /** Edits the logic's canvas notes (one undoable edit). */
  onNotes?(fn: (notes: CanvasNote[]) => CanvasNote[]): void;
}

const nodeTypes = { sip: NodeView, note: NoteView };
type CanvasNode = SipNode | NoteNode;
/** Canvas ids of notes: `note:<id>` (never a node id: those are numbers or `n<k>`). */
const NOTE_PREFIX = 'note:';
const isNote = (id: string) => id.startsWith(NOTE_PREFIX);

export const FlowCanvas = forwardRef<CanvasHandle, Props>(function FlowCanvas(p, ref) {
  const rf = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);

  const logicRef = useRef(p.logic);
  logicRef.current = p.logic;
  const ctx: EssenceContext = useMemo(() => ({ logics: p.logicNames }), [p.logicNames]);
  const built = useMemo(() => {
    const entries = nodeEntries(p.logic);
    const ids = new Set(entries.map((e) => nodeKey(e.node.id)));
    const errors = new Map<string, number>();
    const warnings = new Map<string, number>();
    for (const pr of p.problems) {
      if (pr.nodeId === undefined) continue;
      const m = pr.severity === 'error' ? errors : warnings;
      m.set(pr.nodeId, (m.get(pr.nodeId) ?? 0) + 1);
    }
    const nodes: SipNode[] = [];
    const edges: Edge[] = [];
    for (const { node } of entries) {
      const id = nodeKey(node.id);
      const info = p.types.get(node.type);
      const exits = info ? exitsOf(info, node.values) : [];
      const lit = p.highlight?.nodes.has(id) ?? false;
      const exitLabels: Record<string, string> = {};
      for (const e of exits) exitLabels[e.pointer] = exitMeaning(info, node.values, e.pointer, ctx);
      nodes.push({
        id,
        type: 'sip',
        position: { x: Number(node.x) || 0, y: Number(node.y) || 0 },
        data: {
          node,
          info,
          exits,
          essence: essenceOf(info, node.values, ctx),
          exitLabels,
          errors: errors.get(id) ?? 0,
          warnings: warnings.get(id) ?? 0,
          highlighted: lit,
        },
        className: [lit ? 'highlighted' : '', node.archived ? 'archived' : '', errors.get(id) ? 'has-errors' : ''].filter(Boolean).join(' '),
      });
      for (const e of exits) {
        if (e.target === null || e.target === undefined || e.target === '') continue;
        const target = nodeKey(e.target);
        if (!ids.has(target)) continue;
        const edgeId = `${id}:${e.pointer}`;
        const hot = p.highlight?.edges.has(edgeId) ?? false;
        edges.push({
          // the exit's name is on its source handle; the edge repeats it for screen readers
          id: edgeId,
          source: id,
          sourceHandle: e.pointer,
          target,
          ariaLabel: `${exitLabels[e.pointer]} → ${target}`,
          label: exitLabels[e.pointer],
          labelBgPadding: [4, 2],
          labelBgBorderRadius: 3,
          className: hot ? 'highlighted' : node.archived ? 'archived' : undefined,
          markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16, color: hot ? '#f59e0b' : '#64748b' },
          animated: hot,
          reconnectable: true,
          data: { pointer: e.pointer },
        });
      }
    }
    return { nodes, edges };
  }, [p.logic, p.types, p.problems, p.highlight, ctx]);

  const onNotesRef = useRef(p.onNotes);
  onNotesRef.current = p.onNotes;
  const [justAdded, setJustAdded] = useState<string | null>(null);
  const noteNodes = useMemo((): NoteNode[] => {
    const onText = (id: string, text: string) => onNotesRef.current?.((ns) => ns.map((n) => (n.id === id ? { ...n, text } : n)));
    const onResize = (id: string, b: { x: number; y: number; width: number; height: number }) =>
      onNotesRef.current?.((ns) => ns.map((n) => (n.id === id ? { ...n, ...b } : n)));
    return notesOf(p.logic).map((note) => ({
      id: NOTE_PREFIX + note.id,
      type: 'note',
      position: { x: Number(note.x) || 0, y: Number(note.y) || 0 },
      width: Number(note.width) || NOTE_SIZE.width,
      height: Number(note.height) || NOTE_SIZE.height,
      zIndex: -1,
      data: { note, onText, onResize, editing: note.id === justAdded },
    }));
  }, [p.logic, justAdded]);
  const allBuilt = useMemo((): CanvasNode[] => [...noteNodes, ...built.nodes], [noteNodes, built.nodes]);

  // Nodes are derived from the document; the canvas keeps what it measured, the selection and the
  // positions of a drag in progress.
  const [nodes, setNodes] = useState<CanvasNode[]>(allBuilt);
  const selectedRef = useRef(p.selected);
  selectedRef.current = p.selected;
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>(built.edges);
  // A node kept by id whose handles changed (another flow opened with the same ids, an exit
  // added at the same height) must be measured again, or edges from its new handles are not drawn.
  const updateNodeInternals = useUpdateNodeInternals();
  const handlesOf = (n: CanvasNode | undefined) => (n?.type === 'sip' ? `${n.data.node.type}|${n.data.exits.map((e) => e.pointer).join(',')}` : 'note');
  const shownRef = useRef<CanvasNode[]>([]);
  useEffect(() => {
    const old = new Map(shownRef.current.map((n) => [n.id, n]));
    shownRef.current = allBuilt;
    const changed = allBuilt.filter((n) => old.has(n.id) && handlesOf(old.get(n.id)) !== handlesOf(n)).map((n) => n.id);
    if (changed.length === 0) return;
    requestAnimationFrame(() => updateNodeInternals(changed));
  }, [allBuilt, updateNodeInternals]);
  useEffect(() => {
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return allBuilt.map((n): CanvasNode => {
        const o = old.get(n.id);
        if (n.type === 'note') {
          // a note's size is the document's (its resizer commits it), its selection the canvas's
          if (!o) return n;
          return o.resizing || o.dragging
            ? ({ ...n, selected: o.selected, position: o.position, width: o.width, height: o.height, resizing: o.resizing, dragging: o.dragging } as NoteNode)
            : { ...n, selected: o.selected };
        }
        const selected = selectedRef.current.includes(n.id);
        return o
          ? { ...n, selected, measured: o.measured, width: o.width, height: o.height, dragging: o.dragging, position: o.dragging ? o.position : n.position }
          : { ...n, selected };
      });
    });
  }, [allBuilt]);
  // a node just added and selected (a palette click hangs it right of the selected one) is brought into view
  const known = useRef<Set<string> | null>(null);
  useEffect(() => {
    const ids = new Set(built.nodes.map((n) => n.id));
    const before = known.current;
    known.current = ids;
    if (!before) return;
    const added = built.nodes.filter((n) => !before.has(n.id) && selectedRef.current.includes(n.id));
    const r = wrapper.current?.getBoundingClientRect();
    if (added.length !== 1 || !r) return;
    const n = added[0];
    const w = NODE_WIDTH;
    const h = nodeHeight(n.data.exits.length);
    const tl = rf.flowToScreenPosition(n.position);
    const br = rf.flowToScreenPosition({ x: n.position.x + w, y: n.position.y + h });
    if (tl.x >= r.left && tl.y >= r.top && br.x <= r.right && br.y <= r.bottom) return;
    void rf.setCenter(n.position.x + w / 2, n.position.y + h / 2, { zoom: rf.getZoom(), duration: 0 });
    fitted.current = false;
  }, [built.nodes, rf]);

  // selection made outside the canvas (new node, problem list, duplicate)
  useEffect(() => {
    setNodes((prev) => {
      let changed = false;
      const next = prev.map((n) => {
        if (n.type === 'note') return n;
        const want = p.selected.includes(n.id);
        if (!!n.selected === want) return n;
        changed = true;
        return { ...n, selected: want };
      });
      return changed ? next : prev;
    });
  }, [p.selected]);
  useEffect(() => {
    setEdges((prev) => {
      const sel = new Set(prev.filter((e) => e.selected).map((e) => e.id));
      return built.edges.map((e) => (sel.has(e.id) ? { ...e, selected: true } : e));
    });
  }, [built.edges, setEdges]);

  const onNodesChange = useCallback((changes: NodeChange<CanvasNode>[]) => setNodes((ns) => applyNodeChanges(changes, ns)), []);

  /** Adds a note at a point of the flow (default: the centre of the canvas), in its editor. */
  const addNote = useCallback(
    (at?: { x: number; y: number }) => {
      if (!onNotesRef.current) return;
      const r = wrapper.current?.getBoundingClientRect();
      const where = at ?? (r ? rf.screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 }) : { x: 0, y: 0 });
      const id = newNoteId(logicRef.current);
      setJustAdded(id);
      onNotesRef.current((ns) => [
        ...ns,
        {
          id,
          text: '',
          x: Math.round(where.x - NOTE_SIZE.width / 2),
          y: Math.round(where.y - NOTE_SIZE.height / 2),
          width: NOTE_SIZE.width,
          height: NOTE_SIZE.height,
        },
      ]);
    },
    [rf],
  );

  const [mapOpen, setMapOpen] = useState(false);
  const fitted = useRef(false);
  const fit = useCallback(() => {
    const r = wrapper.current?.getBoundingClientRect();
    const ns = rf.getNodes();
    if (!r || ns.length === 0) return;
    const b = rf.getNodesBounds(ns);
    const w = r.width - 2 * FIT_PAD;
    const h = r.height - 2 * FIT_PAD;
    const fits = Math.min(w / Math.max(b.width, 1), h / Math.max(b.height, 1));
    const zoom = Math.max(MIN_FIT_ZOOM, Math.min(MAX_FIT_ZOOM, fits));
    // centred when it fits, else from its left (and top) edge: the start is on the left
    const x = b.width * zoom <= w ? FIT_PAD + (w - b.width * zoom) / 2 - b.x * zoom : FIT_PAD - b.x * zoom;
    const y = b.height * zoom <= h ? FIT_PAD + (h - b.height * zoom) / 2 - b.y * zoom : FIT_PAD - b.y * zoom;
    void rf.setViewport({ x, y, zoom });
    fitted.current = true;
  }, [rf]);

  // while the view is the fitted one (not panned or zoomed since), a resized canvas fits again
  useEffect(() => {
    const el = wrapper.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ro = new ResizeObserver(() => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (fitted.current) fit();
      }, 30);
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      clearTimeout(timer);
    };
  }, [fit]);

  const typesRef = useRef(p.types);
  typesRef.current = p.types;
  const onMoveRef = useRef(p.onMove);
  onMoveRef.current = p.onMove;
  const layout = useCallback(
    async (onlyIfOverlapping = false) => {
      const types = typesRef.current;
      const entries = nodeEntries(logicRef.current);
      if (entries.length === 0) return;
      const items = entries.map(({ node }) => {
        const info = types.get(node.type);
        const exits = info ? exitsOf(info, node.values) : [];
        return {
          id: nodeKey(node.id),
          x: Number(node.x) || 0,
          y: Number(node.y) || 0,
          exits: exits.map((e) => ({ pointer: e.pointer, target: e.target === null || e.target === undefined || e.target === '' ? null : nodeKey(e.target) })),
        };
      });
      if (onlyIfOverlapping && overlaps(boxesOf(items.map((i) => ({ ...i, exits: i.exits.length })))).length === 0) return;
      const pos = await layoutItems(items);
      // the document may have changed while elk worked: move only nodes that are still there
      const still = new Set(nodeEntries(logicRef.current).map((e) => nodeKey(e.node.id)));
      onMoveRef.current([...pos].filter(([id]) => still.has(id)).map(([id, at]) => ({ id, ...at })));
      setTimeout(fit, 30);
    },
    [fit],
  );

  // a logic shown for the first time (opened, imported, chosen) whose nodes overlap is laid out
  const laidOut = useRef(new Set<string>());
  useEffect(() => {
    if (!p.layoutKey || laidOut.current.has(p.layoutKey) || p.types.size === 0 || !p.logic) return;
    laidOut.current.add(p.layoutKey);
    void layout(true);
  }, [p.layoutKey, p.types, p.logic, layout]);

  useImperativeHandle(
    ref,
    () => ({
      focusNode(id) {
        const n = rf.getNode(id);
        if (!n) return;
        const w = n.measured?.width ?? 180;
        const h = n.measured?.height ?? 80;
        rf.setCenter(n.position.x + w / 2, n.position.y + h / 2, { zoom: Math.max(rf.getZoom(), 1), duration: 300 });
      },
      center() {
        const r = wrapper.current?.getBoundingClientRect();
        if (!r) return { x: 0, y: 0 };
        return rf.screenToFlowPosition({ x: r.left + r.width / 2, y: r.top + r.height / 2 });
      },
      fit,
      layout: () => layout(false),
    }),
    [rf, fit, layout],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (c.source && c.sourceHandle && c.target) p.onSetExit(c.source, c.sourceHandle, c.target);
    },
    [p],
  );

  const onReconnect = useCallback(
    (old: Edge, c: Connection) => {
      if (!c.source || !c.sourceHandle || !c.target) return;
      if (c.source !== old.source || c.sourceHandle !== old.sourceHandle) p.onSetExit(old.source, old.sourceHandle!, null);
      p.onSetExit(c.source, c.sourceHandle, c.target);
    },
    [p],
  );

  const onReconnectEnd = useCallback(
    (e: MouseEvent | TouchEvent, edge: Edge, _h: unknown, state: FinalConnectionState) => {
      if (state.isValid) return;
      // dropped on a node's body: re-pointed there; elsewhere: cleared
      const target = nodeUnder(e);
      p.onSetExit(edge.source, edge.sourceHandle!, target && target !== edge.source ? target : null);
    },
    [p],
  );

  // an exit dropped on a node's body (not on its input dot) connects to that node
  const onConnectEnd = useCallback(
    (e: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid || !state.fromHandle || state.fromHandle.type !== 'source' || !state.fromHandle.id) return;
      const source = state.fromHandle.nodeId;
      const target = nodeUnder(e);
      if (target && target !== source && (rf.getNode(target) as SipNode | undefined)?.data.node.type !== 'enter.start')
        p.onSetExit(source, state.fromHandle.id, target);
    },
    [p, rf],
  );

  const onSelect = p.onSelect;
  const onSelectionChange = useCallback(
    (s: OnSelectionChangeParams) => {
      const ids = s.nodes.map((n) => n.id).filter((id) => !isNote(id));
      if (ids.join() !== selectedRef.current.join()) onSelect(ids);
    },
    [onSelect],
  );

  return (
    <div
      className="canvas"
      ref={wrapper}
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
      }}
      onDoubleClick={(e) => {
        // a double-click on the empty canvas adds a note there
        if (!(e.target as HTMLElement).classList?.contains('react-flow__pane')) return;
        addNote(rf.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
      }}
      onDrop={(e) => {
        const type = e.dataTransfer.getData('application/x-sipflow-node-type');
        if (!type) return;
        e.preventDefault();
        p.onDropType(type, rf.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
      }}
    >
      <ReactFlow<CanvasNode, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onReconnect={onReconnect}
        onReconnectEnd={onReconnectEnd}
        onConnectEnd={onConnectEnd}
        connectionRadius={36}
        reconnectRadius={24}
        onInit={() => setTimeout(fit, 0)}
        onMoveStart={(e) => {
          if (e) fitted.current = false;
        }}
        onSelectionChange={onSelectionChange}
        onNodeDragStop={(_e, _n, dragged) => {
          const at = (n: CanvasNode) => ({ x: Math.round(n.position.x), y: Math.round(n.position.y) });
          const moved = dragged.filter((n) => !isNote(n.id));
          const notes = new Map(dragged.filter((n) => isNote(n.id)).map((n) => [n.id.slice(NOTE_PREFIX.length), at(n)]));
          if (moved.length) p.onMove(moved.map((n) => ({ id: n.id, ...at(n) })));
          if (notes.size) p.onNotes?.((ns) => ns.map((n) => (notes.has(n.id) ? { ...n, ...notes.get(n.id) } : n)));
        }}
        onDelete={({ nodes: ns, edges: es }) => {
          const gone = new Set(ns.filter((n) => isNote(n.id)).map((n) => n.id.slice(NOTE_PREFIX.length)));
          const nodeIds = ns.map((n) => n.id).filter((id) => !isNote(id));
          if (nodeIds.length || es.length)
            p.onDelete(
              nodeIds,
              es.map((e) => ({ source: e.source, pointer: e.sourceHandle! })),
            );
          if (gone.size) p.onNotes?.((notes) => notes.filter((n) => !gone.has(n.id)));
        }}
        zoomOnDoubleClick={false}
        deleteKeyCode={['Delete', 'Backspace']}
        multiSelectionKeyCode={['Shift', 'Meta', 'Control']}
        minZoom={0.1}
        maxZoom={2.5}
        defaultEdgeOptions={{ type: 'default' }}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={20} />
        {mapOpen && (
          <MiniMap
            pannable
            zoomable
            style={{ width: 160, height: 100, marginBottom: 40 }}
            nodeColor={(n) => (n.type === 'note' ? '#fde68a' : categoryColor((n as SipNode).data?.info?.category))}
            nodeStrokeWidth={2}
          />
        )}
        <Panel position="bottom-right" className="map-toggle">
          <button onClick={() => setMapOpen((o) => !o)} aria-pressed={mapOpen} data-testid="minimap-toggle" title="Show or hide the overview map">
            {mapOpen ? 'hide map' : 'map'}
          </button>
        </Panel>
        <Panel position="top-left" className="canvas-tools">
          <button onClick={() => void layout(false)} data-testid="layout" title="Lay the logic out left to right (undo: Ctrl+Z)">
            Layout
          </button>
          <button onClick={fit} data-testid="fit" title="Fit the logic on screen (at a readable zoom)">
            Fit
          </button>
          {p.onNotes && (
            <button onClick={() => addNote()} data-testid="add-note" title="Add a note (or double-click the canvas)">
              Note
            </button>
          )}
        </Panel>
        <Controls showFitView={false} />
      </ReactFlow>
    </div>
  );
});

/** The canvas node under the pointer of a mouse or touch event (its id), if any. */
function nodeUnder(e: MouseEvent | TouchEvent): string | null {
  const pt = 'changedTouches' in e ? e.changedTouches[0] : (e as MouseEvent);
  if (!pt) return null;
  for (const el of document.elementsFromPoint(pt.clientX, pt.clientY)) {
    const n = (el as HTMLElement).closest?.('.react-flow__node');
    if (n) return n.getAttribute('data-id');
  }
  return null;
}

export const CATEGORY_COLOR: Record<NodeCategory, string> = {
  start: '#16a34a',
  analysis: '#2563eb',
  time: '#0d9488',
  query: '#7c3aed',
  cache: '#a16207',
  registrar: '#db2777',
  manipulation: '#4f46e5',
  list: '#be123c',
  action: '#0891b2',
  output: '#ea580c',
  flow: '#64748b',
};
export const categoryColor = (c: string | undefined) => CATEGORY_COLOR[c as NodeCategory] ?? '#94a3b8';
