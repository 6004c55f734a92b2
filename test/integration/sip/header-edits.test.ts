/**
 * action.sipHeaders over real UDP sockets: the relayed INVITE carries the added and replaced
 * headers and lacks the removed one (protected ones untouched); a reply carries an added header;
 * a From user whose escaped CR LF would inject a header line is refused, nothing relayed.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import type { RunContext } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { startSipServer, type SipServer } from '../../../server/sip-server';
import { header, headerList, isRequest, type SipRequest } from '../../../sip/message';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, type Received } from './ua';

const FLOWS = {
  1: {
    name: 'relay-headers',
    description: '',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'action.sipHeaders', {
        operations: [
          { op: 'remove', header: 'X-Remove' },
          { op: 'replace', header: 'Subject', value: 'routed for [calling]' },
          { op: 'add', header: 'X-Caller', value: 'user [fromUsername]' },
          { op: 'add', header: 'X-Multi', value: 'second' },
        ],
        next: 2,
        ifRefused: 3,
      }),
      // the Request-URI names the UAS socket: relay there
      2: node(2, 'output.relay', { destination: 'requestURI' }),
      3: node(3, 'output.reply', { code: 403, reason: 'Forbidden (header refused)' }),
    },
  },
  2: {
    name: 'reply-headers',
    description: '',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'action.sipHeaders', { operations: [{ op: 'add', header: 'X-Busy-For', value: '[calling]' }], next: 2 }),
      2: node(2, 'output.reply', { code: 486, headers: { 'X-Reply': 'r' } }),
    },
  },
  3: {
    name: 'relay-to-from-user',
    description: 'relays to a URI built from a value the sender chose',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'output.relay', { destination: 'sip:[fromUsername]' }),
    },
  },
};

function memoryCtx(): RunContext {
  return {
    directory: createMemoryDirectory({}),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'sipflow-header-edits-test-0123456789' }),
    clock: { now: Date.now },
  };
}

let server: SipServer;
let caller: UdpUa;
let uas: UdpUa;
beforeAll(async () => {
  const loaded = loadSlid(FLOWS, 'header-edits.slid', builtinRegistry());
  expect(loaded.problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([]);
  server = await startSipServer({
    service: loaded.service!,
    ctx: memoryCtx(),
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'relay-headers',
    timers: { t1: 50 },
    routes: [
      { method: 'MESSAGE', logic: 'reply-headers' },
      { method: 'SUBSCRIBE', logic: 'relay-to-from-user' },
    ],
  });
  caller = await UdpUa.open(server.udpPort);
  uas = await UdpUa.open(server.udpPort);
});
afterAll(async () => {
  await caller?.close();
  await uas?.close();
  await server?.close(100);
});

/**
 * The next INVITE of a call from `user` the UAS receives: the UAS never answers, so the INVITEs of
 * earlier tests keep being retransmitted until their transaction times out.
 */
const inviteFrom = (user: string) =>
  uas.next((r) => isRequest(r.msg) && r.msg.method === 'INVITE' && (header(r.msg, 'from') ?? '').startsWith(`<sip:${user}@`)) as Promise<
    Received & { msg: SipRequest }
  >;

test('the relayed INVITE carries the added and replaced headers, lacks the removed one; Via, Call-ID, CSeq, From, To, Max-Forwards as a relay makes them', async () => {
  const callId = rand();
  caller.send(
    sipRequest({
      method: 'INVITE',
      uri: `sip:bob@127.0.0.1:${uas.port}`,
      ua: caller,
      callId,
      from: '<sip:alice@example.test>',
      fromTag: 'a1',
      headers: { 'X-Remove': 'secret-route-hint', Subject: 'original', 'X-Multi': 'first' },
    }),
  );
  const { msg: inv } = await inviteFrom('alice');
  expect(inv.headers['x-remove']).toBeUndefined();
  expect(inv.headers.subject).toEqual(['routed for alice']);
  expect(inv.headers['x-caller']).toEqual(['user alice']);
  expect(inv.headers['x-multi']).toEqual(['first', 'second']);
  expect(header(inv, 'call-id')).toBe(callId);
  expect(header(inv, 'cseq')).toBe('1 INVITE');
  expect(header(inv, 'from')).toBe('<sip:alice@example.test>;tag=a1');
  expect(header(inv, 'max-forwards')).toBe('69');
  expect(headerList(inv, 'via')).toHaveLength(2);
  expect((await caller.response(100)).status).toBe(100);
});

test("a From user with an escaped CR LF (a sender's injection) is refused: 403, nothing relayed, no injected line anywhere", async () => {
  caller.send(
    sipRequest({
      method: 'INVITE',
      uri: `sip:bob@127.0.0.1:${uas.port}`,
      ua: caller,
      from: '<sip:evil%0D%0AVia:%20SIP/2.0/UDP%20attacker.example;branch=z9hG4bKx@example.test>',
    }),
  );
  const res = await caller.response(403);
  expect(res.reason).toBe('Forbidden (header refused)');
  expect(res.headers['x-caller']).toBeUndefined();
  expect(headerList(res, 'via')).toHaveLength(1);
  // the UAS gets nothing: the next thing it sees is the INVITE of a clean call sent after
  caller.send(sipRequest({ method: 'INVITE', uri: `sip:bob@127.0.0.1:${uas.port}`, ua: caller, from: '<sip:carol@example.test>' }));
  const { msg: next, raw } = await inviteFrom('carol');
  expect(next.headers['x-caller']).toEqual(['user carol']);
  expect(raw).not.toContain('attacker');
});

test('a reply carries the added header after its own', async () => {
  caller.send(sipRequest({ method: 'MESSAGE', uri: 'sip:bob@example.test', ua: caller, from: '<sip:dave@example.test>' }));
  const res = await caller.response(486);
  expect(res.headers['x-reply']).toEqual(['r']);
  expect(res.headers['x-busy-for']).toEqual(['dave']);
});

test("a relay target built from a sender's value holding CR LF is not relayed (416): the request line cannot be split", async () => {
  // the From user decodes to `b@127.0.0.1:<uas>;x=1\r\n`: a URI that parses once trimmed, with a line break after it
  const user = encodeURIComponent(`b@127.0.0.1:${uas.port};x=1\r\nVia: SIP/2.0/UDP attacker.example;branch=z9hG4bKx`);
  caller.send(sipRequest({ method: 'SUBSCRIBE', uri: 'sip:bob@example.test', ua: caller, from: `<sip:${user}@example.test>` }));
  expect((await caller.response(416)).status).toBe(416);
  // control: the UAS got nothing from it; the next thing it sees is a clean relayed INVITE
  caller.send(sipRequest({ method: 'INVITE', uri: `sip:bob@127.0.0.1:${uas.port}`, ua: caller, from: '<sip:erin@example.test>' }));
  const { msg, raw } = await inviteFrom('erin');
  expect(msg.headers['x-caller']).toEqual(['user erin']);
  expect(raw).not.toContain('attacker');
});
