/**
 * The shipped flows come with test cases (flows/<name>.tests.json) and they pass: `sipflow test
 * flows/` in process. Every outcome node (`output.*`) of every logic of each shipped flow is
 * expected by at least one test case (in its expected path), computed from the .slid files.
 */
import { readdirSync, readFileSync } from 'fs';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import { builtinRegistry } from '../../../nodes';
import { parseTestDocument } from '../../../server/flows/test-cases';
import { runCli } from '../../support/cli';

const FLOWS = path.join(__dirname, '../../../flows');
const slids = readdirSync(FLOWS).filter((f) => f.endsWith('.slid')).sort();

interface SlidNode { id: number | string; type: string; archived?: boolean | null }
type Slid = Record<string, { name: string; nodes: Record<string, SlidNode> | SlidNode[] }>;

describe('shipped flows: test cases', () => {
  test('every shipped flow has test cases, and `sipflow test flows/` passes them all', async () => {
    for (const f of slids) expect(readdirSync(FLOWS)).toContain(f.replace(/\.slid$/, '.tests.json'));
    const r = await runCli('test', FLOWS);
    expect(r.out).not.toContain('✗');
    expect(r.out).toMatch(new RegExp(`${slids.length} flow\\(s\\): \\d+ passed, 0 failed$`));
    expect(r.code).toBe(0);
  }, 120_000);

  test.each(slids)('%s: every output node is expected by a test case', (file) => {
    const text = readFileSync(path.join(FLOWS, file), 'utf8');
    // loading without warnings: no node is unreachable from its logic's start
    const loaded = loadSlidText(text, file, builtinRegistry());
    expect(loaded.problems).toEqual([]);
    const slid = JSON.parse(text) as Slid;
    const tests = parseTestDocument(readFileSync(path.join(FLOWS, file.replace(/\.slid$/, '.tests.json')), 'utf8'), file).tests;
    const first = Object.keys(slid)[0];
    const expected = new Set<string>();
    for (const t of tests) {
      const logic = loaded.service!.find(t.logic ?? first)!.id;
      // a path entry `n` is node n of the test's logic, `l/n` node n of logic l
      for (const step of t.expect.path ?? []) expected.add(step.includes('/') ? step : `${logic}/${step}`);
    }
    const outputs = Object.entries(slid).flatMap(([logicId, l]) =>
      Object.values(l.nodes)
        .filter((n) => n.type.startsWith('output.') && n.archived !== true)
        .map((n) => `${logicId}/${n.id}`),
    );
    expect(outputs.length).toBeGreaterThan(0);
    expect(outputs.filter((o) => !expected.has(o))).toEqual([]);
  });
});
