/**
 * Retransmissions answered before parsing (sip/request-peek.ts, FrontEnd.absorbedUnparsed): the
 * peek gives the same transaction key as the full parse on every message it reads (the RFC 4475
 * corpus, compact and odd forms) or gives up; a front end answers a retransmitted request, a
 * stateful final or a stateless challenge, with the bytes it sent, without calling the parser.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSlidText } from '../../../engine/load';
import { builtinRegistry } from '../../../nodes';
import { FrontEnd } from '../../../sip/front-end';
import * as parser from '../../../sip/parser';
import { peekRequest, startsNewWork } from '../../../sip/request-peek';
import { isRequest, topVia } from '../../../sip/message';
import type { Peer, SipSender } from '../../../sip/transport';
import { testContext } from '../../support/context';

const CORPUS = path.resolve(__dirname, '../../../../shared/conformance/rfc4475');

const REGISTER = (o: { via?: string; extra?: string; cseq?: number; callId?: string; authorization?: string } = {}): Buffer =>
  Buffer.from(
    'REGISTER sip:10.1.10.163 SIP/2.0\r\n' +
      (o.extra ?? '') +
      `${o.via ?? 'Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKPj62qlaect'}\r\n` +
      'Max-Forwards: 70\r\n' +
      'From: "Francesco" <sip:francesco@nl.netaxis.be>;tag=RHuIK7Em8v\r\n' +
      'To: "Francesco" <sip:francesco@nl.netaxis.be>\r\n' +
      `Call-ID: ${o.callId ?? 'X-by3boX112NeNE11ay4K5dF'}\r\n` +
      `CSeq: ${o.cseq ?? 1} REGISTER\r\n` +
      'Contact: <sip:francesco@10.1.10.89:57806;ob>\r\n' +
      'Expires: 300\r\n' +
      (o.authorization ? `Authorization: ${o.authorization}\r\n` : '') +
      'Content-Length: 0\r\n\r\n',
  );

/** The peek's method and top Via against the full parse's. */
function sameAsParse(bytes: Buffer): 'same' | 'gave up' | 'parser refuses' | string {
  const peek = peekRequest(bytes);
  if (peek === null) return 'gave up';
  const r = parser.parseMessage(bytes);
  // a key of a message the parser refuses can only match if a valid request had that key; the
  // answer then goes where that request's went (contract of sip/request-peek.ts)
  if (!r.ok) return 'parser refuses';
  if (!isRequest(r.message)) return 'peeked a response';
  const via = topVia(r.message);
  if (via === null) return 'peeked a Via the parser does not have';
  // the whole Via: the front end's full path works on the peeked one (FrontEnd.handleRequest)
  const mine = [peek.method, peek.via];
  const theirs = [r.message.method, via];
  return JSON.stringify(mine) === JSON.stringify(theirs) ? 'same' : `${JSON.stringify(mine)} ≠ ${JSON.stringify(theirs)}`;
}

describe('peekRequest', () => {
  test('a REGISTER: its method and top Via, as the parser reads them', () => {
    const peek = peekRequest(REGISTER());
    expect(peek).toMatchObject({ method: 'REGISTER', via: { branch: 'z9hG4bKPj62qlaect', host: '10.1.10.89', port: 57806, hasRport: true } });
    expect(sameAsParse(REGISTER())).toBe('same');
  });

  test('compact and odd forms: `v:`, any case, spaces before the colon, the Via after other headers, two values on one line', () => {
    for (const [via, branch] of [
      ['v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKcompact', 'z9hG4bKcompact'],
      ['VIA: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKupper', 'z9hG4bKupper'],
      ['Via  \t: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKspaced', 'z9hG4bKspaced'],
      ['Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKfirst, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKsecond', 'z9hG4bKfirst'],
    ]) {
      const bytes = REGISTER({ via });
      expect(peekRequest(bytes)?.via.branch).toBe(branch);
      expect(sameAsParse(bytes)).toBe('same');
    }
    const later = REGISTER({ extra: 'User-Agent: x\r\nSupported: path\r\n' });
    expect(sameAsParse(later)).toBe('same');
  });

  test('gives up (the full path judges) on a response, no Via, a folded Via, a Via-like name, garbage', () => {
    const cases = [
      Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr\r\n\r\n'),
      Buffer.from('REGISTER sip:a SIP/2.0\r\nFrom: <sip:a@b>\r\n\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKbody\r\n'),
      REGISTER({ via: 'Via: SIP/2.0/UDP 10.0.0.1;\r\n branch=z9hG4bKfolded' }),
      Buffer.from('REGISTER sip:a SIP/2.0\r\nVias: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKname\r\n\r\n'),
      Buffer.from('REGISTER sip:a SIP/2.0\r\nVia: garbage\r\n\r\n'),
      Buffer.from(''),
      Buffer.from('REGISTER'),
      Buffer.from(' REGISTER sip:a SIP/2.0\r\n'),
      Buffer.from('A'.repeat(100) + ' sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlong\r\n\r\n'),
      Buffer.from('REGISTER sip:a SIP/2.0\r\n' + 'X-H: 1\r\n'.repeat(40) + 'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdeep\r\n\r\n'),
      Buffer.from('REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKcut'),
    ];
    for (const bytes of cases) expect([bytes.toString().slice(0, 30), peekRequest(bytes)]).toEqual([bytes.toString().slice(0, 30), null]);
  });

  test('the RFC 4475 corpus: on every message it reads, the same method and top Via as the full parse', () => {
    const files = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.dat'));
    expect(files.length).toBeGreaterThan(40);
    const verdicts = files.map((f) => [f, sameAsParse(fs.readFileSync(path.join(CORPUS, f)))]);
    const wrong = verdicts.filter(([, v]) => v !== 'same' && v !== 'gave up' && v !== 'parser refuses');
    expect(wrong).toEqual([]);
    // and it reads most of them (a peek that always gave up would pass the line above)
    expect(verdicts.filter(([, v]) => v === 'same').length).toBeGreaterThan(20);
  });
});

describe('a front end answers retransmissions without parsing them', () => {
  const sent: Array<{ bytes: Buffer; peer: Peer }> = [];
  const sender: SipSender = { advertised: '10.1.10.163', ports: new Map([['udp', 5060]]), send: (bytes, peer) => void sent.push({ bytes, peer }) };
  const local = { proto: 'udp', address: '10.1.10.163', port: 5060 };
  const phone: Peer = { proto: 'udp', address: '10.1.10.89', port: 57806 };

  function frontEnd(slid: string): FrontEnd {
    const service = loadSlidText(slid, 'test.slid', builtinRegistry()).service!;
    return new FrontEnd(sender, { service, ctx: testContext(), loopGuard: false, routes: [{ method: 'REGISTER', logic: Object.keys(JSON.parse(slid))[0] }] });
  }
  const parses = () => jest.spyOn(parser, 'parseMessage');
  const reply486 = JSON.stringify({
    7: {
      name: 'busy',
      description: '',
      nodes: {
        0: { id: 0, name: 's', type: 'enter.start', description: '', values: { next: 1 }, archived: false, x: 0, y: 0 },
        1: { id: 1, name: 'r', type: 'output.reply', description: '', values: { code: 486 }, archived: false, x: 0, y: 0 },
      },
    },
  });

  afterEach(() => {
    jest.restoreAllMocks();
    sent.length = 0;
  });

  test('a stateful final (486 from the logic): the retransmission gets the same bytes, the parser is not called, a new branch runs the logic', async () => {
    const fe = frontEnd(reply486);
    const spy = parses();
    fe.onMessage(REGISTER(), phone, local);
    await waitFor(() => sent.length === 1);
    expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 486 /);
    expect(spy).toHaveBeenCalledTimes(1);

    fe.onMessage(REGISTER(), phone, local);
    expect(sent).toHaveLength(2);
    expect(sent[1].bytes.equals(sent[0].bytes)).toBe(true);
    expect(sent[1].peer).toEqual(sent[0].peer);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(fe.stats).toMatchObject({ requests: 2, retransmissions: 1, runs: 1 });

    // control: another branch is a new request, parsed and run
    fe.onMessage(REGISTER({ via: 'Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKother', cseq: 2 }), phone, local);
    await waitFor(() => sent.length === 3);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(fe.stats).toMatchObject({ requests: 3, retransmissions: 1, runs: 2 });
    fe.close();
  });

  test('a stateless challenge (the seed registration logic): replayed byte for byte to the source, not parsed, not run again', () => {
    const fe = frontEnd(fs.readFileSync(path.join(__dirname, '../../../flows/registration.slid'), 'utf8'));
    const spy = parses();
    fe.onMessage(REGISTER(), phone, local);
    return waitFor(() => sent.length === 1).then(() => {
      expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 401 /);
      const runs = fe.stats.runs;
      fe.onMessage(REGISTER(), { ...phone, port: 40000 }, local); // rport: the answer follows the source port
      expect(sent).toHaveLength(2);
      expect(sent[1].bytes.equals(sent[0].bytes)).toBe(true);
      expect(sent[1].peer).toMatchObject({ address: '10.1.10.89', port: 40000 });
      expect(spy).toHaveBeenCalledTimes(1);
      expect(fe.stats.runs).toBe(runs);
      expect(fe.stats.retransmissions).toBe(1);
      fe.close();
    });
  });

  test('a new request costs one transaction lookup (the peek’s, taken by the full path); a retransmission while it runs is absorbed, not run', async () => {
    const fe = frontEnd(reply486);
    const lookups = jest.spyOn(fe.servers, 'get');
    fe.onMessage(REGISTER(), phone, local);
    expect(lookups).toHaveBeenCalledTimes(1);
    // the same branch before the logic has answered: the transaction the peek found is in flight
    fe.onMessage(REGISTER(), phone, local);
    expect(lookups).toHaveBeenCalledTimes(2);
    expect(fe.stats).toMatchObject({ requests: 2, retransmissions: 1, runs: 1 });
    await waitFor(() => sent.length === 1);
    expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 486 /);
    // control: a request the peek cannot read (an RFC 2543 branch) is looked up by the full path
    fe.onMessage(REGISTER({ via: 'Via: SIP/2.0/UDP 10.1.10.89:57806;branch=1234' }), phone, local);
    expect(lookups).toHaveBeenCalledTimes(3);
    await waitFor(() => sent.length === 2);
    expect(fe.stats).toMatchObject({ requests: 3, retransmissions: 1, runs: 2 });
    fe.close();
  });

  test('a request with an RFC 2543 branch takes the full path (which absorbs it)', async () => {
    const fe = frontEnd(reply486);
    const spy = parses();
    const old = REGISTER({ via: 'Via: SIP/2.0/UDP 10.1.10.89:57806;branch=1234' });
    fe.onMessage(old, phone, local);
    await waitFor(() => sent.length === 1);
    fe.onMessage(old, phone, local);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(sent).toHaveLength(2);
    expect(sent[1].bytes.equals(sent[0].bytes)).toBe(true); // still absorbed, by the full path
    expect(fe.stats.retransmissions).toBe(1);
    fe.close();
  });
});

describe('an overloaded thread sheds new work first', () => {
  const INVITE = (to: string, extra = ''): Buffer =>
    Buffer.from(
      'INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKinv\r\nFrom: <sip:a@example.test>;tag=1\r\n' +
        `${to}\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n${extra}Content-Length: 0\r\n\r\n`,
    );

  test('startsNewWork: a request outside a dialog without credentials; not one with a To tag, credentials, or of a dialog or transaction under way', () => {
    expect(startsNewWork(INVITE('To: <sip:bob@example.test>'), 'INVITE')).toBe(true);
    expect(startsNewWork(INVITE('t: <sip:bob@example.test>'), 'INVITE')).toBe(true);
    expect(startsNewWork(REGISTER(), 'REGISTER')).toBe(true);
    expect(startsNewWork(INVITE('To: <sip:bob@example.test>;tag=abc'), 'INVITE')).toBe(false);
    expect(startsNewWork(INVITE('TO: <sip:bob@example.test> ; TAG = abc'), 'INVITE')).toBe(false);
    expect(startsNewWork(INVITE('To: <sip:bob@example.test>', 'Proxy-Authorization: Digest username="a"\r\n'), 'INVITE')).toBe(false);
    expect(startsNewWork(REGISTER({ authorization: 'Digest username="francesco"' }), 'REGISTER')).toBe(false);
    for (const m of ['ACK', 'CANCEL', 'BYE', 'PRACK', 'UPDATE', 'INFO', 'NOTIFY', 'REFER'])
      expect([m, startsNewWork(INVITE('To: <sip:b@x>'), m)]).toEqual([m, false]);
    // unsure (no To it can read): kept
    expect(startsNewWork(INVITE('X-To: <sip:bob@example.test>'), 'INVITE')).toBe(false);
  });

  const sent: Array<{ bytes: Buffer; peer: Peer }> = [];
  const sender: SipSender = { advertised: '10.1.10.163', ports: new Map([['udp', 5060]]), send: (bytes, peer) => void sent.push({ bytes, peer }) };
  const local = { proto: 'udp', address: '10.1.10.163', port: 5060 };
  const phone: Peer = { proto: 'udp', address: '10.1.10.89', port: 57806 };
  const seedRegistration = () =>
    loadSlidText(fs.readFileSync(path.join(__dirname, '../../../flows/registration.slid'), 'utf8'), 'registration.slid', builtinRegistry()).service!;
  afterEach(() => {
    jest.restoreAllMocks();
    sent.length = 0;
  });

  test('behind: a new REGISTER is dropped unparsed; its retransmission after a challenge is still answered, credentials and in-dialog requests still run', async () => {
    const service = seedRegistration();
    const fe = new FrontEnd(sender, { service, ctx: testContext(), loopGuard: false, routes: [{ method: 'REGISTER', logic: '24' }] });
    const spy = jest.spyOn(parser, 'parseMessage');

    fe.onMessage(REGISTER({ callId: 'shed-me' }), phone, local, true);
    expect(sent).toHaveLength(0);
    expect(spy).not.toHaveBeenCalled();
    expect(fe.stats).toMatchObject({ requests: 1, shed: 1, shedAnswered: 0, runs: 0 });

    // over TCP nothing is retransmitted: never shed, challenged even when behind
    fe.onMessage(
      REGISTER({ callId: 'over-tcp', via: 'Via: SIP/2.0/TCP 10.1.10.89:57806;branch=z9hG4bKtcp' }),
      { ...phone, proto: 'tcp', connId: 1 },
      { ...local, proto: 'tcp' },
      true,
    );
    await waitFor(() => sent.length === 1);
    expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 401 /);
    expect(fe.stats.shed).toBe(1);
    sent.length = 0;

    // control: not behind, the same request is challenged
    fe.onMessage(REGISTER({ callId: 'shed-me' }), phone, local, false);
    await waitFor(() => sent.length === 1);
    expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 401 /);
    // behind: its retransmission still gets the challenge (answered, not shed)
    fe.onMessage(REGISTER({ callId: 'shed-me' }), phone, local, true);
    expect(sent).toHaveLength(2);
    expect(fe.stats.shed).toBe(1);

    // behind: the REGISTER with credentials runs (a 401 or a 200: an answer, the logic ran)
    const runs = fe.stats.runs;
    fe.onMessage(
      REGISTER({
        callId: 'shed-me',
        cseq: 2,
        via: 'Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKsecond',
        authorization: 'Digest username="francesco", realm="x", nonce="n", uri="sip:10.1.10.163", response="0"',
      }),
      phone,
      local,
      true,
    );
    await waitFor(() => sent.length === 3);
    expect(fe.stats.runs).toBe(runs + 1);
    expect(fe.stats.shed).toBe(1);

    // behind: a request within a dialog (To tag) is not shed either (answered by the default route)
    fe.onMessage(
      Buffer.from(
        'OPTIONS sip:x@10.1.10.163 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.10.89:57806;branch=z9hG4bKopt\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\n' +
          'To: <sip:x@10.1.10.163>;tag=2\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n',
      ),
      phone,
      local,
      true,
    );
    await waitFor(() => sent.length === 4);
    expect(fe.stats.shed).toBe(1);
    fe.close();
  });

  test('with shedRetryAfterSec: new work shed while behind is answered 503 with a Retry-After in [N, 2N], statelessly, no logic run', async () => {
    const service = seedRegistration();
    const ctx = testContext();
    const query = jest.spyOn(ctx.directory, 'query');
    const fe = new FrontEnd(sender, { service, ctx, loopGuard: false, routes: [{ method: 'REGISTER', logic: '24' }], shedRetryAfterSec: 7 });

    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) {
      fe.onMessage(REGISTER({ callId: `refused-${i}`, via: `Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKrefused${i}` }), phone, local, true);
      const answer = sent[sent.length - 1].bytes.toString();
      expect(answer).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
      expect(answer).toContain(`Call-ID: refused-${i}\r\n`);
      expect(answer).toMatch(new RegExp(`\\r\\nVia: SIP/2\\.0/UDP 10\\.1\\.10\\.89:57806;[^\\r]*branch=z9hG4bKrefused${i}[;\\r]`));
      expect(answer).toMatch(/\r\nTo: [^\r]*;tag=/);
      const after = Number(/\r\nRetry-After: (\d+)\r\n/.exec(answer)?.[1]);
      expect(after).toBeGreaterThanOrEqual(7);
      expect(after).toBeLessThanOrEqual(14);
      seen.add(after);
    }
    // spread, not one value for everyone
    expect(seen.size).toBeGreaterThan(1);
    expect(sent).toHaveLength(40);
    expect(sent.every((s) => s.peer.address === phone.address && s.peer.port === phone.port)).toBe(true);
    expect(fe.stats).toMatchObject({ requests: 40, shed: 40, shedAnswered: 40, runs: 0 });
    expect(query).not.toHaveBeenCalled();
    sent.length = 0;

    // behind: what cannot be parsed is dropped, nothing crashes, nothing is sent
    const unparsable = Buffer.from('REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.10.89;branch=z9hG4bKbad\r\nTo: <sip:x@y>\r\nContent-Length: 9999\r\n\r\n');
    expect(startsNewWork(unparsable, 'REGISTER')).toBe(true);
    fe.onMessage(unparsable, phone, local, true);
    expect(sent).toHaveLength(0);
    expect(fe.stats).toMatchObject({ shed: 41, shedAnswered: 40, errors: 0 });

    // not behind: the same kind of request runs its logic (challenged)
    fe.onMessage(REGISTER({ callId: 'refused-0', via: 'Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKagain' }), phone, local, false);
    await waitFor(() => sent.length === 1);
    expect(sent[0].bytes.toString()).toMatch(/^SIP\/2\.0 401 /);
    expect(fe.stats.runs).toBe(1);
    fe.close();
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
