import { readFileSync } from 'fs';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import { saveSlid } from '../../../engine/slid';
import { runLogic } from '../../../engine/run';
import { testContext } from '../../support/context';
import { FIXTURES, cdOf, registry } from './helpers';

const SEED = path.join(__dirname, '../../../flows/registration.slid');

describe('load → save round trip', () => {
  test('the seed comes back deep-equal', () => {
    const text = readFileSync(SEED, 'utf8');
    const r = loadSlidText(text, 'registration.slid', registry);
    expect(r.problems).toEqual([]);
    expect(JSON.parse(saveSlid(r.doc!))).toEqual(JSON.parse(text));
  });

  test('unknown keys at logic, node and values level are kept, in order, with their values', async () => {
    const text = readFileSync(path.join(FIXTURES, 'valid/unknown-keys.slid'), 'utf8');
    const r = loadSlidText(text, 'unknown-keys.slid', registry);
    expect(r.problems).toEqual([]);
    // running the compiled logic must not mutate the document either
    const out = await runLogic(r.service!, '3', cdOf({}), testContext());
    expect(out.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Nobody here' });
    const saved = saveSlid(r.doc!);
    const original = JSON.parse(text);
    expect(JSON.parse(saved)).toEqual(original);
    expect(saved.endsWith('\n')).toBe(true);
    const back = JSON.parse(saved);
    expect(Object.keys(back['3'])).toEqual(['name', 'description', 'version', 'editor', 'nodes']);
    expect(back['3'].editor).toEqual({ zoom: 1.5, locked: false });
    expect(back['3'].nodes['0'].tags).toEqual(['entry']);
    expect(back['3'].nodes['0'].values.color).toBe('#00ff00');
    expect(back['3'].nodes['1'].values.uiHint).toEqual({ collapsed: true });
    expect(back['3'].nodes['1'].comment).toBeNull();
    expect(back['3'].nodes['1'].archived).toBeNull();
  });

  test('every shipped-style fixture that loads round-trips (array nodes included)', () => {
    for (const name of ['nodes-array.slid', 'archived-nodes.slid', 'unreachable-node.slid']) {
      const text = readFileSync(path.join(FIXTURES, 'valid', name), 'utf8');
      const r = loadSlidText(text, name, registry);
      expect(r.service).toBeDefined();
      expect(JSON.parse(saveSlid(r.doc!))).toEqual(JSON.parse(text));
    }
  });
});
