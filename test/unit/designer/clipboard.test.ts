/** Copy and paste payloads (designer/src/clipboard.ts): exits kept among the copies, cleared to others, bounds. */
import { builtinRegistry } from '../../../nodes';
import { MAX_PASTE_NODES, copyPayload, parsePayload, pastedNodes } from '../../../designer/src/clipboard';
import type { SlidNode } from '../../../designer/src/model';

const types = new Map(
  builtinRegistry()
    .list()
    .map((t) => [t.type, t]),
);
const nodes: SlidNode[] = [
  { id: 1, name: 'q', type: 'query.queryDatabaseGeneric', values: { tables: ['t'], ifRecordFound: 2, ifnoRecordFound: 9 }, x: 0, y: 0 },
  { id: 2, name: 'r', type: 'output.reply', values: { code: 480 }, x: 300, y: 0 },
];

test('copy clears exits to nodes not copied and lists the ones among them', () => {
  const p = copyPayload(nodes, types);
  expect(p.nodes[0].values).toEqual({ tables: ['t'], ifRecordFound: 2, ifnoRecordFound: null });
  expect(p.edges).toEqual([{ source: '1', exit: 'ifRecordFound', target: '2' }]);
  expect(nodes[0].values!.ifnoRecordFound).toBe(9); // the document is left alone
});

test('paste gives new ids and re-points exits among the copies', () => {
  let next = 10;
  const out = pastedNodes(copyPayload(nodes, types).nodes, types, () => next++, 40, 20);
  expect(out.map((n) => n.id)).toEqual([10, 11]);
  expect(out[0].values!.ifRecordFound).toBe(11);
  expect([out[0].x, out[0].y]).toEqual([40, 20]);
});

test('foreign, malformed and oversized clipboards are refused', () => {
  expect(parsePayload('hello')).toEqual({ refused: expect.stringContaining('no sipflow nodes') });
  expect(parsePayload('{"a":1}')).toEqual({ refused: expect.stringContaining('no sipflow nodes') });
  expect(parsePayload(JSON.stringify({ sipflow: 'nodes', nodes: [{ id: 1 }] }))).toEqual({ refused: expect.stringContaining('no sipflow nodes') });
  const many = { sipflow: 'nodes', nodes: Array.from({ length: MAX_PASTE_NODES + 1 }, (_, i) => ({ id: i, type: 'exit.return' })) };
  expect(parsePayload(JSON.stringify(many))).toEqual({ refused: expect.stringContaining('more than the 500') });
  expect(parsePayload('x'.repeat(1_000_001))).toEqual({ refused: expect.stringContaining('MB') });
  expect(parsePayload(JSON.stringify(copyPayload(nodes, types)))).toEqual({ nodes: expect.any(Array) });
});
