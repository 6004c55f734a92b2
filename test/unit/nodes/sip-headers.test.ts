/**
 * Issue 15, header manipulation: action.sipHeaders — validation (located problems for protected
 * headers, names that are not tokens, values with control characters), edits recorded in order on
 * the call descriptor, placeholders, a sender's CR/LF refused at run time, the limits; and how the
 * SIP stack applies the edits (sip/header-edits.ts, sip/response-for.ts).
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import type { HeaderEdit } from '../../../engine/types';
import { editRequestHeaders } from '../../../sip/header-edits';
import { createHeaders } from '../../../sip/message';
import { responseFor, type ResponseHeader } from '../../../sip/response-for';
import { acceptingAuth, testContext } from '../../support/context';
import { sampleRegister } from '../../support/sip';
import { docOf, registry, reply, runNodes, setVars, start, type NodeSpec } from '../engine/helpers';

/** start → extract X-Src into `src` → node 1 (sipHeaders) → 2 (relay) or 3 (reply 403, the refusal exit). */
function graph(values: Record<string, unknown>, exits: Record<string, unknown> = { next: 2, ifRefused: 3 }): NodeSpec[] {
  return [
    start(8),
    [8, 'analysis.extractSipHeader', { extractions: [{ header: 'X-Src', part: 'value', storeInto: 'src' }], next: 1 }],
    [1, 'action.sipHeaders', { ...values, ...exits }],
    [2, 'output.relay', { destination: 'sip:gw.example.com' }],
    reply(3, 403),
  ];
}

const problems = (values: Record<string, unknown>): string[] =>
  loadSlid(docOf(graph(values)), 'test.slid', registry)
    .problems.filter((p) => p.severity === 'error')
    .map(formatProblem);

async function run(values: Record<string, unknown>, src = 'customer-7', exits?: Record<string, unknown>) {
  const r = await runNodes(graph(values, exits), { calling: '+3225551234', headers: { 'X-Src': src } }, undefined, { trace: true });
  return { outcome: r.outcome, edits: r.cd.headerEdits, vars: r.cd.vars, trace: r.trace ?? [] };
}

describe('action.sipHeaders: validation', () => {
  test.each([
    ['Via'],
    ['v'],
    ['Call-ID'],
    ['i'],
    ['CSeq'],
    ['From'],
    ['f'],
    ['TO'],
    ['Content-Length'],
    ['l'],
    ['Content-Type'],
    ['Max-Forwards'],
    ['Route'],
    ['Record-Route'],
    ['Contact'],
    ['m'],
    ['Proxy-Authorization'],
    ['WWW-Authenticate'],
  ])('%s is protected, located at its operation', (header) => {
    const p = problems({
      operations: [
        { op: 'add', header: 'X-Ok', value: '1' },
        { op: 'replace', header, value: 'x' },
      ],
    });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/operations\/1\/header/);
    expect(p[0]).toMatch(/protected/);
  });

  test('a header name must be a token; a literal value one line; a removal takes no value; at most 32 operations', () => {
    expect(problems({ operations: [{ op: 'add', header: 'X Bad', value: '1' }] }).join('\n')).toMatch(/operations\/0\/header/);
    expect(problems({ operations: [{ op: 'add', header: 'X-Bad:', value: '1' }] }).join('\n')).toMatch(/operations\/0\/header/);
    expect(problems({ operations: [{ op: 'add', header: 'X-A', value: 'a\r\nVia: evil' }] }).join('\n')).toMatch(/operations\/0\/value.*control character/);
    expect(problems({ operations: [{ op: 'remove', header: 'X-A', value: 'a' }] }).join('\n')).toMatch(/operations\/0\/value/);
    expect(problems({ operations: [{ op: 'add', header: 'X-A', value: 'x'.repeat(1025) }] }).join('\n')).toMatch(/operations\/0\/value/);
    const many = Array.from({ length: 33 }, (_, i) => ({ op: 'add', header: `X-${i}`, value: '1' }));
    expect(problems({ operations: many }).join('\n')).toMatch(/operations/);
    expect(problems({ operations: many.slice(0, 32) })).toEqual([]);
    expect(problems({ operations: [] }).join('\n')).toMatch(/operations/);
  });
});

describe('action.sipHeaders: run', () => {
  test('records the edits in order, placeholders filled, names as lower-case full names; the relay carries on', async () => {
    const r = await run({
      operations: [
        { op: 'remove', header: 'P-Preferred-Identity' },
        { op: 'add', header: 'P-Asserted-Identity', value: '<sip:[calling]@example.com>' },
        { op: 'replace', header: 'X-Customer', value: ' [src] ' },
        { op: 'add', header: 'k', value: 'x' },
      ],
    });
    expect(r.outcome).toMatchObject({ kind: 'relay' });
    expect(r.edits).toEqual([
      { op: 'remove', name: 'p-preferred-identity' },
      { op: 'add', name: 'p-asserted-identity', value: '<sip:+3225551234@example.com>' },
      { op: 'replace', name: 'x-customer', value: 'customer-7' },
      { op: 'add', name: 'supported', value: 'x' },
    ]);
    expect(r.vars.sipHeadersStatus).toBe('ok');
    expect(r.trace.find((t) => t.nodeId === '1')).toMatchObject({ exit: 'next', set: { sipHeadersStatus: 'ok' } });
  });

  test('two nodes add up, in the order they ran', async () => {
    const r = await runNodes(
      [
        start(1),
        [1, 'action.sipHeaders', { operations: [{ op: 'add', header: 'X-A', value: '1' }], next: 4 }],
        [4, 'action.sipHeaders', { operations: [{ op: 'remove', header: 'X-A' }], statusVariable: 'h2', next: 2 }],
        reply(2, 486),
      ],
      {},
    );
    expect(r.cd.headerEdits).toEqual([
      { op: 'add', name: 'x-a', value: '1' },
      { op: 'remove', name: 'x-a' },
    ]);
    expect(r.cd.vars.h2).toBe('ok');
  });

  test.each([
    ['CR LF', 'a\r\nVia: SIP/2.0/UDP evil.example.com'],
    ['LF', 'a\nX: 1'],
    ['CR', 'a\rb'],
    ['NUL', 'a\u0000b'],
    ['DEL', 'a\u007fb'],
    ['C1', 'a\u0085b'],
  ])("a sender's %s in a placeholder is refused: ifRefused, no edit of the node kept", async (_, src) => {
    const r = await run(
      {
        operations: [
          { op: 'add', header: 'X-Before', value: 'fine' },
          { op: 'add', header: 'X-Src', value: 'from [src]' },
        ],
      },
      src,
    );
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(r.edits).toBeUndefined();
    expect(r.vars.sipHeadersStatus).toMatch(/^refused: the value of X-Src holds a control character/);
    expect(r.trace.find((t) => t.nodeId === '1')).toMatchObject({ exit: 'ifRefused' });
  });

  test('HTAB and UTF-8 are text; a value over 1024 characters is refused', async () => {
    expect((await run({ operations: [{ op: 'add', header: 'X-Src', value: '[src]' }] }, 'a\tb é')).edits).toEqual([
      { op: 'add', name: 'x-src', value: 'a\tb é' },
    ]);
    const long = await run({ operations: [{ op: 'add', header: 'X-Src', value: '[src]' }] }, 'x'.repeat(1025));
    expect(long.outcome).toMatchObject({ status: 403 });
    expect(long.vars.sipHeadersStatus).toMatch(/longer than 1024/);
  });

  test('without ifRefused a refusal ends the run with 500, where it happened', async () => {
    const r = await run({ operations: [{ op: 'add', header: 'X-Src', value: '[src]' }] }, 'a\r\nb', { next: 2 });
    expect(r.outcome).toMatchObject({ kind: 'error', status: 500, where: expect.stringContaining('node 1') });
    expect(r.edits).toBeUndefined();
  });

  test('at most 64 edits per message: a loop adding headers is refused', async () => {
    const r = await runNodes(
      [
        start(1),
        [1, 'action.sipHeaders', { operations: Array.from({ length: 30 }, () => ({ op: 'add', header: 'X-Loop', value: 'x' })), next: 1, ifRefused: 3 }],
        reply(3, 500),
      ],
      {},
      undefined,
      {},
    );
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 500 });
    expect(r.cd.headerEdits).toHaveLength(60);
    expect(r.cd.vars.sipHeadersStatus).toMatch(/more than 64/);
  });
});

test('a restart after authentication drops the edits made so far: the logic makes them again, an add is not made twice', async () => {
  const nodes: NodeSpec[] = [
    start(1),
    [1, 'action.sipHeaders', { operations: [{ op: 'add', header: 'X-A', value: '1' }], next: 4 }],
    setVars(4, [{ variable: 'pw', value: 'secret' }], 2),
    [2, 'output.nit.registrar.authenticate', { password: 'pw' }],
  ];
  const r = await runNodes(
    nodes,
    sampleRegister({ Authorization: 'Digest username="u"' }),
    { ...testContext(), auth: acceptingAuth },
    { trace: true, limits: { maxRestarts: 1 } },
  );
  expect(r.trace!.filter((t) => t.exit === 'restart').length).toBeGreaterThanOrEqual(1);
  expect(r.cd.headerEdits).toEqual([{ op: 'add', name: 'x-a', value: '1' }]);
});

describe('applying header edits', () => {
  const edits: HeaderEdit[] = [
    { op: 'remove', name: 'p-preferred-identity' },
    { op: 'add', name: 'x-tag', value: 'one' },
    { op: 'add', name: 'x-tag', value: 'two' },
    { op: 'replace', name: 'subject', value: 'routed' },
    { op: 'replace', name: 'x-new', value: 'n' },
  ];

  test('on a request: in order, the shared value arrays untouched', () => {
    const subject = ['hello', 'again'];
    const headers = createHeaders();
    headers.subject = subject;
    headers['p-preferred-identity'] = ['<sip:a@b>'];
    headers['x-tag'] = ['zero'];
    editRequestHeaders(headers, edits);
    expect({ ...headers }).toEqual({ subject: ['routed'], 'x-tag': ['zero', 'one', 'two'], 'x-new': ['n'] });
    expect(subject).toEqual(['hello', 'again']);
  });

  test('an edit of a protected header or with a control character is skipped, even if handed over', () => {
    const headers = createHeaders();
    headers.via = ['SIP/2.0/UDP a;branch=z9hG4bK1'];
    editRequestHeaders(headers, [
      { op: 'remove', name: 'via' },
      { op: 'add', name: 'x-a', value: 'a\r\nVia: evil' },
      { op: 'add', name: 'x-b', value: 'ok' },
    ]);
    expect({ ...headers }).toEqual({ via: ['SIP/2.0/UDP a;branch=z9hG4bK1'], 'x-b': ['ok'] });
  });

  test("on a reply: after the logic's headers; on a redirect; never on a challenge, an error or the default route", () => {
    const opts = { now: 0, headerEdits: edits };
    const r = responseFor({ kind: 'reply', status: 486, reason: 'Busy Here', headers: { 'X-Tag': 'zero', Subject: 's' } }, {}, opts);
    expect(r).toMatchObject({ kind: 'response', status: 486 });
    expect((r as { headers: ResponseHeader[] }).headers).toEqual([
      ['X-Tag', ['zero', 'one', 'two']],
      ['Subject', ['routed']],
      ['X-New', ['n']],
    ]);
    const redirect = responseFor({ kind: 'redirect', status: 302, reason: 'Moved', contacts: ['sip:a@b'] }, {}, opts);
    expect((redirect as { headers: ResponseHeader[] }).headers.map(([n]) => n)).toEqual(['Contact', 'X-Tag', 'Subject', 'X-New']);
    expect((responseFor({ kind: 'error', status: 500, reason: 'x' }, {}, opts) as { headers: ResponseHeader[] }).headers).toEqual([]);
    expect((responseFor({ kind: 'exit', status: null }, {}, opts) as { headers: ResponseHeader[] }).headers).toEqual([]);
    expect(responseFor({ kind: 'relay', status: null, targets: [{ uri: 'sip:gw' }] }, {}, opts)).toEqual({
      kind: 'relay',
      targets: [{ uri: 'sip:gw' }],
      headerEdits: edits,
    });
  });
});
