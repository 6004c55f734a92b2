/**
 * Auto-layout of one logic with elkjs (layered, left → right): each node is a box of the canvas's
 * size (./nodeSize.ts), each exit a port on its east side in the order the node shows its exits, so
 * the layout keeps a node's exits in their handle order and edges do not cross needlessly.
 * Pure (no DOM): the designer runs it in the page, and it laid out the shipped flows.
 */
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';
import { NODE_WIDTH, nodeHeight } from './nodeSize';

export interface LayoutItem {
  id: string;
  /** Exits in handle order, with the id of the node each leads to (null: unset). */
  exits: Array<{ pointer: string; target: string | null }>;
}

/** elkjs (1.5 MB) is loaded on the first layout, not with the page. */
let elk: Promise<{ layout(g: ElkNode): Promise<ElkNode> }> | null = null;
const loadElk = () => (elk ??= import('elkjs/lib/elk.bundled.js').then((m) => new m.default()));

/** Top-left corner of the laid-out drawing (where the first layer starts). */
const ORIGIN = { x: 60, y: 60 };

/** New positions (rounded) for every item. */
export async function layoutItems(items: LayoutItem[]): Promise<Map<string, { x: number; y: number }>> {
  const ids = new Set(items.map((i) => i.id));
  const children: ElkNode[] = items.map((it) => ({
    id: it.id,
    width: NODE_WIDTH,
    height: nodeHeight(it.exits.length),
    layoutOptions: { 'elk.portConstraints': 'FIXED_ORDER' },
    ports: [
      { id: `${it.id}::in`, width: 1, height: 1, layoutOptions: { 'elk.port.side': 'WEST' } },
      ...it.exits.map((e, i) => ({
        id: `${it.id}::${e.pointer}`,
        width: 1,
        height: 1,
        // FIXED_ORDER on the east side orders ports top to bottom by index
        layoutOptions: { 'elk.port.side': 'EAST', 'elk.port.index': String(i) },
      })),
    ],
  }));
  const edges: ElkExtendedEdge[] = [];
  for (const it of items)
    for (const e of it.exits)
      if (e.target !== null && ids.has(e.target) && e.target !== it.id)
        edges.push({ id: `${it.id}::${e.pointer}->${e.target}`, sources: [`${it.id}::${e.pointer}`], targets: [`${e.target}::in`] });
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '130',
      'elk.spacing.nodeNode': '40',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.separateConnectedComponents': 'true',
      'elk.spacing.componentComponent': '60',
    },
    children,
    edges,
  };
  const out = await (await loadElk()).layout(graph);
  const pos = new Map<string, { x: number; y: number }>();
  for (const c of out.children ?? []) pos.set(c.id, { x: Math.round((c.x ?? 0) + ORIGIN.x), y: Math.round((c.y ?? 0) + ORIGIN.y) });
  return pos;
}

export { boxesOf, overlaps, type Box } from './nodeSize';
