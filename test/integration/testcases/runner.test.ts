/**
 * The test-case runner against the shipped flows: a private PGlite directory (seeded, fixture rows
 * rolled back after the test that gave them), private location bindings, digest auth played
 * server-side, a fixed instant.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { loadSlidText, type CompiledService } from '../../../engine/load';
import { builtinRegistry } from '../../../nodes';
import { checkTestDocument, openTestEnvironment, runTestCases, type TestDocument, type TestEnvironment } from '../../../server/flows/test-cases';

const FLOWS = path.join(__dirname, '../../../flows');
const load = (file: string): CompiledService => {
  const r = loadSlidText(readFileSync(path.join(FLOWS, file), 'utf8'), file, builtinRegistry());
  if (!r.service) throw new Error(`${file} does not load`);
  return r.service;
};

const register = (headers: Record<string, string> = {}) => ({
  requestMethod: 'REGISTER',
  requestURI: 'sip:10.1.10.163',
  sourceAddress: '10.1.10.89',
  sourcePort: 57806,
  transport: 'udp',
  headers: {
    From: '"Francesco" <sip:francesco@nl.netaxis.be>;tag=a1',
    To: '"Francesco" <sip:francesco@nl.netaxis.be>',
    'Call-ID': 'runner-test',
    CSeq: '1 REGISTER',
    Contact: '<sip:francesco@10.1.10.89:57806;ob>',
    Expires: '300',
    ...headers,
  },
});
const invite = (called: string) => ({
  requestMethod: 'INVITE',
  requestURI: `sip:${called}@nl.netaxis.be`,
  sourceAddress: '192.0.2.10',
  headers: { From: '<sip:+3225551234@pstn.example>;tag=x', To: `<sip:${called}@nl.netaxis.be>`, 'Call-ID': `in-${called}`, CSeq: '1 INVITE' },
});
const doc = (d: unknown): TestDocument => checkTestDocument(d, 'test.tests.json');

describe('test-case runner', () => {
  const registration = load('registration.slid');
  const incoming = load('incoming-call.slid');
  let env: TestEnvironment;
  beforeAll(async () => {
    env = await openTestEnvironment();
  });
  afterAll(() => env.close());

  test('registration: challenge, then with credentials the path through authenticate and save; a wrong expectation fails saying what differed', async () => {
    const r = await runTestCases(
      registration,
      doc({
        tests: [
          { name: 'no credentials', cd: register(), expect: { kind: 'challenge', status: 401 } },
          {
            name: 'francesco',
            cd: register(),
            credentials: { username: 'francesco', password: '123456' },
            expect: { kind: 'register', status: 200, path: ['4', '2'] },
          },
          { name: 'wrong password', cd: register(), credentials: { username: 'francesco', password: 'nope' }, expect: { kind: 'challenge', status: 401 } },
          { name: 'must fail', cd: register(), expect: { kind: 'challenge', status: 407 } },
          { name: 'wrong path', cd: register(), expect: { kind: 'challenge', path: ['6'] } },
        ],
      }),
    );
    expect(r.results.map((t) => [t.name, t.passed])).toEqual([
      ['no credentials', true],
      ['francesco', true],
      ['wrong password', true],
      ['must fail', false],
      ['wrong path', false],
    ]);
    expect(r).toMatchObject({ passed: 3, failed: 2 });
    expect(r.results[3].message).toBe('expected challenge 407, got challenge 401');
    expect(r.results[3].actual).toMatchObject({ kind: 'challenge', status: 401 });
    expect(r.results[4].message).toMatch(/^expected the path to go through 6, it went 0 → /);
    expect(r.results[1].logic).toBe('24 "registration"');
  });

  test('fixture rows change the outcome, and are gone for the next test; fixture bindings relay', async () => {
    const r = await runTestCases(
      incoming,
      doc({
        tests: [
          { name: 'unknown number', cd: invite('0099123456'), expect: { kind: 'reply', status: 404 } },
          {
            name: 'a fixture customer owns it',
            cd: invite('0099123456'),
            directory: {
              'registration.customers': [{ id: 50, name: 'Fixture PBX', username: 'fix', password: 'fix-pw', aor: 'fix@nl.netaxis.be' }],
              'registration.customer_numbers': [{ number: '0099123456', is_range: false, customer_id: 50 }],
            },
            expect: { kind: 'reply', status: 480, path: ['1', '3', '4'] },
          },
          { name: 'unknown again (rows rolled back)', cd: invite('0099123456'), expect: { kind: 'reply', status: 404 } },
          {
            name: 'registered PBX',
            cd: invite('000112233'),
            location: [{ aor: 'francesco@nl.netaxis.be', contact: 'sip:francesco@10.1.10.89:57806;ob' }],
            expect: { kind: 'relay' },
          },
          { name: 'not registered', cd: invite('000112233'), expect: { kind: 'reply', status: 480 } },
          {
            name: 'expired binding',
            cd: invite('000112233'),
            location: [{ aor: 'francesco', contact: 'sip:f@10.0.0.1', expires: -10 }],
            expect: { kind: 'reply', status: 480 },
          },
        ],
      }),
      {},
      env,
    );
    expect(r.results.filter((t) => !t.passed)).toEqual([]);
    expect(r.passed).toBe(6);
  });

  test('bad fixture rows fail their test with the pointer, the others still run', async () => {
    const r = await runTestCases(
      incoming,
      doc({
        tests: [
          { name: 'bad rows', cd: invite('1'), directory: { 'registration.nope': [{ a: 1 }] }, expect: { kind: 'reply' } },
          { name: 'unknown', cd: invite('0099123456'), expect: { kind: 'reply', status: 404 } },
          { name: 'no such logic', logic: '99', cd: invite('1'), expect: { kind: 'reply' } },
        ],
      }),
      {},
      env,
    );
    expect(r.results[0]).toMatchObject({ passed: false });
    expect(r.results[0].message).toMatch(/^\/tests\/0\/directory: the fixture rows cannot be inserted: /);
    expect(r.results[1].passed).toBe(true);
    expect(r.results[2].message).toBe('no logic "99" in this flow');
  });

  test("a runaway logic is held by the engine's limits: the test fails with the error outcome", async () => {
    const loop = loadSlidText(
      JSON.stringify({
        7: {
          name: 'loop',
          nodes: {
            0: { id: 0, name: 'Start', type: 'enter.start', values: { next: 1 } },
            1: { id: 1, name: 'again', type: 'action.setVariables', values: { variables: [{ variable: 'x', value: '1' }], next: 1 } },
          },
        },
      }),
      'loop.slid',
      builtinRegistry(),
    ).service!;
    const r = await runTestCases(
      loop,
      doc({ tests: [{ name: 'loops', cd: invite('1'), expect: { kind: 'reply', status: 200 } }] }),
      { limits: { maxTransitions: 50 } },
      env,
    );
    expect(r.results[0].passed).toBe(false);
    expect(r.results[0].message).toMatch(/^expected reply 200, got error 500 \(Server Internal Error \(more than 50 state transitions\)\)/);
    expect(r.results[0].actual!.path.length).toBeLessThanOrEqual(51);
  });

  test('a spent time budget fails the remaining tests as not run', async () => {
    const r = await runTestCases(incoming, doc({ tests: [{ name: 'a', cd: invite('1'), expect: { kind: 'reply' } }] }), { budgetMs: -1 }, env);
    expect(r.results[0].message).toMatch(/^not run: the run's time budget/);
  });
});
