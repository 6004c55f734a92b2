/**
 * The canvas: nodes at their x/y, exits as edges from named source handles. Dragging a handle onto
 * a node sets that exit; dragging an edge end away clears it; Delete removes the selection.
 */
import { forwardRef, useCallback, useEffect, useImperativeHandle, useMemo, useRef } from 'react';
import {
  Background,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  applyNodeChanges,
  useEdgesState,
  useReactFlow,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type NodeChange,
  type OnSelectionChangeParams,
} from '@xyflow/react';
import type { NodeCategory } from '../../engine/node-type';
import type { NodeTypeInfo, Problem } from './api';
import { exitLabel, exitsOf, nodeEntries, nodeKey, type SlidLogic } from './model';
import { NodeView, type SipNode } from './NodeView';
import { useState } from 'react';

export interface CanvasHandle {
  focusNode(id: string): void;
  center(): { x: number; y: number };
  fit(): void;
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
}

const nodeTypes = { sip: NodeView };

export const FlowCanvas = forwardRef<CanvasHandle, Props>(function FlowCanvas(p, ref) {
  const rf = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);

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
      nodes.push({
        id,
        type: 'sip',
        position: { x: Number(node.x) || 0, y: Number(node.y) || 0 },
        data: { node, info, exits, errors: errors.get(id) ?? 0, warnings: warnings.get(id) ?? 0, highlighted: lit },
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
          ariaLabel: `${exitLabel(e.pointer)} → ${target}`,
          className: hot ? 'highlighted' : node.archived ? 'archived' : undefined,
          markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16, color: hot ? '#f59e0b' : '#64748b' },
          animated: hot,
          reconnectable: true,
          data: { pointer: e.pointer },
        });
      }
    }
    return { nodes, edges };
  }, [p.logic, p.types, p.problems, p.highlight]);

  // Nodes are derived from the document; the canvas keeps what it measured, the selection and the
  // positions of a drag in progress.
  const [nodes, setNodes] = useState<SipNode[]>(built.nodes);
  const selectedRef = useRef(p.selected);
  selectedRef.current = p.selected;
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>(built.edges);
  useEffect(() => {
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return built.nodes.map((n) => {
        const o = old.get(n.id);
        const selected = selectedRef.current.includes(n.id);
        return o
          ? { ...n, selected, measured: o.measured, width: o.width, height: o.height, dragging: o.dragging, position: o.dragging ? o.position : n.position }
          : { ...n, selected };
      });
    });
  }, [built.nodes]);
  // selection made outside the canvas (new node, problem list, duplicate)
  useEffect(() => {
    setNodes((prev) => {
      let changed = false;
      const next = prev.map((n) => {
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

  const onNodesChange = useCallback((changes: NodeChange<SipNode>[]) => setNodes((ns) => applyNodeChanges(changes, ns)), []);

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
      fit() {
        rf.fitView({ padding: 0.2, duration: 0, maxZoom: 1.2 });
      },
    }),
    [rf],
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
    (_e: MouseEvent | TouchEvent, edge: Edge, _h: unknown, state: FinalConnectionState) => {
      if (!state.isValid) p.onSetExit(edge.source, edge.sourceHandle!, null);
    },
    [p],
  );

  const onSelect = p.onSelect;
  const onSelectionChange = useCallback(
    (s: OnSelectionChangeParams) => {
      const ids = s.nodes.map((n) => n.id);
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
      onDrop={(e) => {
        const type = e.dataTransfer.getData('application/x-sipflow-node-type');
        if (!type) return;
        e.preventDefault();
        p.onDropType(type, rf.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
      }}
    >
      <ReactFlow<SipNode, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onReconnect={onReconnect}
        onReconnectEnd={onReconnectEnd}
        onSelectionChange={onSelectionChange}
        onNodeDragStop={(_e, _n, dragged) => p.onMove(dragged.map((n) => ({ id: n.id, x: Math.round(n.position.x), y: Math.round(n.position.y) })))}
        onDelete={({ nodes: ns, edges: es }) =>
          p.onDelete(
            ns.map((n) => n.id),
            es.map((e) => ({ source: e.source, pointer: e.sourceHandle! })),
          )
        }
        deleteKeyCode={['Delete', 'Backspace']}
        multiSelectionKeyCode={['Shift', 'Meta', 'Control']}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
        minZoom={0.1}
        maxZoom={2.5}
        defaultEdgeOptions={{ type: 'default' }}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={20} />
        <MiniMap pannable zoomable nodeColor={(n) => categoryColor((n as SipNode).data?.info?.category)} nodeStrokeWidth={2} />
        <Controls />
      </ReactFlow>
    </div>
  );
});

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
