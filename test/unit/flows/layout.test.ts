/**
 * The shipped flows draw with no two node boxes overlapping or touching on the designer's canvas:
 * boxes at the canvas's own node size (designer/src/nodeSize.ts: fixed width, height by exit count).
 */
import { readdirSync, readFileSync } from 'fs';
import path from 'path';
import { exitsFromSchema } from '../../../engine/schema-walk';
import { builtinRegistry } from '../../../nodes';
import { NODE_WIDTH, boxesOf, nodeHeight, overlaps } from '../../../designer/src/nodeSize';

const FLOWS = path.join(__dirname, '../../../flows');
const files = readdirSync(FLOWS).filter((f) => f.endsWith('.slid'));
const registry = builtinRegistry();
/** Boxes closer than this count as touching. */
const MIN_GAP = 10;

test('every shipped flow file is checked', () => {
  expect(files).toEqual(expect.arrayContaining(['registration.slid', 'pbx.slid', 'incoming-call.slid', 'outgoing-call.slid', 'call-screening.slid', 'routing.slid']));
});

describe.each(files)('%s', (file) => {
  test(`no two node boxes overlap or come closer than ${MIN_GAP} px`, () => {
    const doc = JSON.parse(readFileSync(path.join(FLOWS, file), 'utf8')) as Record<string, { name: string; nodes: Record<string, { id: number; name: string; type: string; values?: object; x: number; y: number }> }>;
    for (const logic of Object.values(doc)) {
      const nodes = Object.values(logic.nodes);
      const boxes = boxesOf(
        nodes.map((n) => {
          const t = registry.get(n.type);
          if (!t) throw new Error(`${file}: unknown node type ${n.type}`);
          return { id: `${n.id} "${n.name}"`, x: n.x, y: n.y, exits: exitsFromSchema(t.valuesSchema, n.values ?? {}).length };
        }),
      );
      expect({ logic: logic.name, overlapping: overlaps(boxes, MIN_GAP) }).toEqual({ logic: logic.name, overlapping: [] });
    }
  });
});

test('the overlap check finds overlapping and touching boxes', () => {
  const h = nodeHeight(2);
  expect(overlaps(boxesOf([{ id: 'a', x: 0, y: 0, exits: 2 }, { id: 'b', x: NODE_WIDTH - 1, y: h - 1, exits: 0 }]))).toEqual([['a', 'b']]);
  expect(overlaps(boxesOf([{ id: 'a', x: 0, y: 0, exits: 2 }, { id: 'b', x: NODE_WIDTH + 5, y: 0, exits: 0 }]), MIN_GAP)).toEqual([['a', 'b']]);
  expect(overlaps(boxesOf([{ id: 'a', x: 0, y: 0, exits: 2 }, { id: 'b', x: 0, y: h + MIN_GAP, exits: 0 }]), MIN_GAP)).toEqual([]);
});
