/**
 * Every shipped flow loads with no error and no warning, keeps the export's exact shape (the
 * service logic editor must import it), and has a layout a designer canvas can show.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { FLOWS_DIR, SHIPPED, loadFlow } from './support';

const NODE_KEYS = ['id', 'name', 'type', 'description', 'values', 'archived', 'x', 'y'];
const LOGIC_KEYS = ['name', 'description', 'nodes'];

describe.each(SHIPPED)('%s', (file) => {
  const { problems, doc } = loadFlow(file);

  test('validates with no errors and no warnings', () => {
    expect(problems).toEqual([]);
  });

  test('has the export shape: logic id → {name, description, nodes}; nodes keyed by numeric id', () => {
    for (const [logicId, logic] of Object.entries(doc!)) {
      expect(logicId).toMatch(/^\d+$/);
      expect(Object.keys(logic).sort()).toEqual([...LOGIC_KEYS].sort());
      expect(typeof logic.name).toBe('string');
      expect(Array.isArray(logic.nodes)).toBe(false);
      for (const [key, node] of Object.entries(logic.nodes)) {
        expect(Object.keys(node).sort()).toEqual([...NODE_KEYS].sort());
        expect(typeof node.id).toBe('number');
        expect(String(node.id)).toBe(key);
        expect(node.archived).toBe(false);
        expect(typeof node.name === 'string' && node.name.length > 0).toBe(true);
        expect(Number.isInteger(node.x) && Number.isInteger(node.y)).toBe(true);
      }
    }
  });

  test('lays its nodes out without overlap (a node box is about 200 × 80 on the canvas)', () => {
    for (const logic of Object.values(doc!)) {
      const nodes = Object.values(logic.nodes);
      for (let i = 0; i < nodes.length; i++) {
        for (let j = i + 1; j < nodes.length; j++) {
          const [a, b] = [nodes[i], nodes[j]];
          const overlap = Math.abs(a.x! - b.x!) < 200 && Math.abs(a.y! - b.y!) < 80;
          if (overlap) throw new Error(`${logic.name}: nodes ${a.id} "${a.name}" and ${b.id} "${b.name}" overlap`);
        }
      }
    }
  });
});

test('registration.slid is still the seed, byte for byte', () => {
  const seed = readFileSync(path.join(FLOWS_DIR, '../../shared/seed/registration.slid'), 'utf8');
  expect(readFileSync(path.join(FLOWS_DIR, 'registration.slid'), 'utf8')).toBe(seed);
});

test('one logic per file, except pbx.slid which carries the logics it calls', () => {
  const names = (file: string) => Object.values(loadFlow(file).doc!).map((l) => l.name);
  expect(names('outgoing-call.slid')).toEqual(['outgoing call']);
  expect(names('incoming-call.slid')).toEqual(['incoming call']);
  expect(names('call-screening.slid')).toEqual(['call screening']);
  expect(names('pbx.slid').sort()).toEqual(['call screening', 'incoming call', 'outgoing call', 'pbx', 'registration']);
});

test('pbx.slid carries the seed registration logic unchanged (same id, same nodes)', () => {
  const seed = loadFlow('registration.slid').doc!['24'];
  const copy = loadFlow('pbx.slid').doc!['24'];
  expect(copy.name).toBe(seed.name);
  expect(copy.nodes).toEqual(seed.nodes);
});

test('pbx.slid runs the same incoming-call graph as incoming-call.slid', () => {
  const standalone = Object.values(loadFlow('incoming-call.slid').doc!)[0];
  const inPbx = Object.values(loadFlow('pbx.slid').doc!).find((l) => l.name === 'incoming call')!;
  expect(inPbx.nodes).toEqual(standalone.nodes);
});
