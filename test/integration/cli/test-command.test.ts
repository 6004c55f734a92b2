/**
 * `sipflow test` as CI runs it: the built CLI (dist/cli/main.js) on a folder of flows with their
 * sidecar test cases; exit code and JUnit XML.
 */
import { execFile } from 'child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { DOMParser } from '@xmldom/xmldom';

const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');
const FLOWS = path.resolve(__dirname, '../../../flows');

function sipflow(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 60_000 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: String(out), err: String(err) }),
    );
  });
}

const parseXml = (text: string) =>
  new DOMParser({
    onError: (level: string, msg: string) => {
      throw new Error(`${level}: ${msg}`);
    },
  }).parseFromString(text, 'text/xml');

describe('sipflow test (built CLI)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-test-cmd-'));
  const pass = path.join(dir, 'pass');
  const fail = path.join(dir, 'fail');
  beforeAll(() => {
    for (const d of [pass, fail]) mkdirSync(d);
    for (const f of ['registration.slid', 'registration.tests.json', 'outgoing-call.slid', 'outgoing-call.tests.json'])
      copyFileSync(path.join(FLOWS, f), path.join(pass, f));
    // a flow without test cases is skipped in a folder
    copyFileSync(path.join(FLOWS, 'incoming-call.slid'), path.join(pass, 'incoming-call.slid'));
    copyFileSync(path.join(FLOWS, 'registration.slid'), path.join(fail, 'registration.slid'));
    const tests = JSON.parse(readFileSync(path.join(FLOWS, 'registration.tests.json'), 'utf8'));
    tests.tests[0].expect.status = 407;
    tests.tests[0].name = 'a <wrong> "status" & more';
    writeFileSync(path.join(fail, 'registration.tests.json'), JSON.stringify(tests));
  });

  test('a passing folder: exit 0, a line per test, valid JUnit XML (a testsuite per flow, a testcase per test)', async () => {
    const junit = path.join(dir, 'pass.xml');
    const r = await sipflow('test', pass, '--junit', junit);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('  ✓ francesco / 123456: authenticated, restarted, saved: 200');
    expect(r.out).toMatch(/2 flow\(s\): 8 passed, 0 failed\n$/);
    const xml = parseXml(readFileSync(junit, 'utf8'));
    const suites = xml.getElementsByTagName('testsuite');
    expect([...Array(suites.length).keys()].map((i) => suites[i].getAttribute('name'))).toEqual(['outgoing-call', 'registration']);
    expect(xml.getElementsByTagName('testcase').length).toBe(8);
    expect(xml.getElementsByTagName('failure').length).toBe(0);
  });

  test('a failing test: exit 1, the line says what differed, the failure in the XML', async () => {
    const junit = path.join(dir, 'fail.xml');
    const r = await sipflow('test', path.join(fail, 'registration.slid'), '--junit', junit);
    expect(r.code).toBe(1);
    expect(r.out).toContain('  ✗ a <wrong> "status" & more: expected challenge 407, got challenge 401');
    expect(r.out).toContain('1 flow(s): 3 passed, 1 failed');
    const xml = parseXml(readFileSync(junit, 'utf8'));
    expect(xml.documentElement!.getAttribute('failures')).toBe('1');
    const failure = xml.getElementsByTagName('failure')[0];
    expect(failure.getAttribute('message')).toBe('expected challenge 407, got challenge 401');
    expect((failure.parentNode as unknown as Element).getAttribute('name')).toBe('a <wrong> "status" & more');
  });

  test('a bad test file: exit 1 naming the file and the pointer, an <error> in the XML; a flow without test cases named: exit 1', async () => {
    writeFileSync(path.join(fail, 'outgoing-call.slid'), readFileSync(path.join(FLOWS, 'outgoing-call.slid')));
    writeFileSync(path.join(fail, 'outgoing-call.tests.json'), JSON.stringify({ tests: [{ name: 'x', cd: {}, expect: {} }] }));
    const junit = path.join(dir, 'bad.xml');
    const r = await sipflow('test', path.join(fail, 'outgoing-call.slid'), '--junit', junit);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`✗ ${path.join(fail, 'outgoing-call.tests.json')}: /tests/0/expect/kind: `);
    expect(parseXml(readFileSync(junit, 'utf8')).getElementsByTagName('error').length).toBe(1);
    const none = await sipflow('test', path.join(pass, 'incoming-call.slid'));
    expect(none.code).toBe(1);
    expect(none.out).toContain('incoming-call.slid: no test cases beside it (incoming-call.tests.json)');
  });
});
