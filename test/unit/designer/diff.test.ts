/** The release diff (designer/src/diff.ts): logics and nodes added, removed, changed by pointer; moves apart. */
import { readFileSync } from 'fs';
import path from 'path';
import { diffDocs, diffSummary, showValue } from '../../../designer/src/diff';

const pbx = JSON.parse(readFileSync(path.join(__dirname, '../../../flows/pbx.slid'), 'utf8'));
const clone = <T>(v: T): T => structuredClone(v);
const firstLogic = Object.keys(pbx)[0];
const nodeIds = () => Object.keys(pbx[firstLogic].nodes);

test('a document equals itself: nothing changed', () => {
  const d = diffDocs(pbx, clone(pbx));
  expect(d.same).toBe(true);
  expect(d.onlyMoves).toBe(true);
  expect(diffSummary(d)).toEqual([]);
});

test('a changed value is reported by pointer, old → new; name, description and archived too', () => {
  const b = clone(pbx);
  const key = nodeIds()[0];
  const n = b[firstLogic].nodes[key];
  n.name = 'renamed';
  n.description = 'new text';
  n.archived = true;
  n.values = { ...n.values, extra: { deep: [1, 2] } };
  const d = diffDocs(pbx, b);
  const l = d.logics.find((x) => x.id === firstLogic)!;
  expect(l.status).toBe('changed');
  expect(l.changed).toHaveLength(1);
  const c = l.changed[0];
  expect(c.id).toBe(String(n.id));
  expect(c.name).toBe('renamed');
  expect(c.moved).toBe(false);
  const by = Object.fromEntries(c.changes.map((x) => [x.pointer, [x.before, x.after]]));
  expect(by.name).toEqual([pbx[firstLogic].nodes[key].name, 'renamed']);
  expect(by.description[1]).toBe('new text');
  expect(by.archived[1]).toBe(true);
  expect(by['values/extra/deep/0']).toEqual([undefined, 1]);
  expect(by['values/extra/deep/1']).toEqual([undefined, 2]);
  expect(d.onlyMoves).toBe(false);
});

test('nodes added and removed; a type change is a change', () => {
  const b = clone(pbx);
  const [k0, k1] = nodeIds();
  const removed = b[firstLogic].nodes[k0];
  delete b[firstLogic].nodes[k0];
  b[firstLogic].nodes['999'] = { id: 999, name: 'new one', type: 'Goto', values: {}, x: 1, y: 2 };
  b[firstLogic].nodes[k1].type = 'Other';
  const l = diffDocs(pbx, b).logics.find((x) => x.id === firstLogic)!;
  expect(l.added).toEqual([{ id: '999', name: 'new one', type: 'Goto' }]);
  expect(l.removed).toEqual([{ id: String(removed.id), name: removed.name, type: removed.type }]);
  expect(l.changed.map((c) => c.changes.map((x) => x.pointer))).toEqual([['type']]);
});

test('position-only changes are reported apart; a move with an edit is one change marked moved', () => {
  const b = clone(pbx);
  const [k0, k1] = nodeIds();
  b[firstLogic].nodes[k0].x += 10;
  b[firstLogic].nodes[k1].y += 10;
  b[firstLogic].nodes[k1].name = 'x';
  const d = diffDocs(pbx, b);
  const l = d.logics.find((x) => x.id === firstLogic)!;
  expect(l.moved.map((n) => n.id)).toEqual([String(pbx[firstLogic].nodes[k0].id)]);
  expect(l.changed).toHaveLength(1);
  expect(l.changed[0].moved).toBe(true);
  expect(l.changed[0].changes.map((c) => c.pointer)).toEqual(['name']);
  expect(diffSummary(d)).toContain(`logic ${firstLogic}: 1 node(s) moved`);

  const onlyMove = clone(pbx);
  onlyMove[firstLogic].nodes[k0].x += 1;
  expect(diffDocs(pbx, onlyMove)).toMatchObject({ same: false, onlyMoves: true });
});

test('logics added and removed; the logic name is a logic change', () => {
  const b = clone(pbx);
  delete b[firstLogic];
  b['77'] = { name: 'brand new', description: '', nodes: { 1: { id: 1, type: 'Start', name: 'start' } } };
  const d = diffDocs(pbx, b);
  expect(d.logics.find((l) => l.id === '77')).toMatchObject({ status: 'added', added: [{ id: '1', name: 'start', type: 'Start' }] });
  expect(d.logics.find((l) => l.id === firstLogic)).toMatchObject({ status: 'removed' });
  expect(diffSummary(d)).toEqual(expect.arrayContaining([`logic 77 "brand new" added`]));

  const r = clone(pbx);
  r[firstLogic].name = 'other name';
  expect(diffDocs(pbx, r).logics.find((l) => l.id === firstLogic)!.logicChanges).toEqual([
    { pointer: 'name', before: pbx[firstLogic].name, after: 'other name' },
  ]);
});

test('nodes in array form are matched by id; designer data under x-sipflow is a change', () => {
  const a = { 1: { name: 'l', nodes: [{ id: 1, type: 'Start', name: 's', x: 0, y: 0 }] } };
  const b = { 1: { name: 'l', nodes: [{ id: 1, type: 'Start', name: 's', x: 0, y: 0, 'x-sipflow': { vars: ['a/b'] } }] } };
  const d = diffDocs(a, b);
  expect(d.logics[0].changed[0].changes).toEqual([{ pointer: 'x-sipflow/vars/0', before: undefined, after: 'a/b' }]);
  expect(showValue(undefined)).toBe('—');
  expect(showValue('x'.repeat(200))).toHaveLength(118);
});
