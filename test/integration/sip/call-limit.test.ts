/**
 * Call admission control end to end: `sipflow serve --workers 2` (built CLI) running a logic with
 * analysis.callLimit (one call at a time per From user) in front of a relay to a test gateway.
 * Calls of one key reach both SIP worker threads (their Call-IDs chosen per worker), so the limit
 * holds across threads: the per-instance table in the dispatcher, or the state in the MongoDB
 * location database (`callLimit.store: database`). Slots are freed by what the call events report:
 * BYE, a gateway's reject, CANCEL's 487.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { header, isRequest, type SipRequest, type SipResponse } from '../../../sip/message';
import { callIdHash } from '../../../sip/dispatch';
import { mongoUrl } from '../../setup/servers';
import { startServe, type ServeProcess } from '../../support/serve';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, sipResponse, type Received } from './ua';

/** Logic `pbx`: one call per From user → relay to the gateway; rejected → 486, or 503 when the limiter is unavailable. */
const flow = (gwPort: number) => ({
  1: {
    name: 'pbx',
    description: 'call limit probe',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'analysis.callLimit', { key: 'user:[fromUsername]', maxConcurrent: 1, ifAllowed: 2, ifRejected: 3 }),
      2: node(2, 'output.relay', { destination: `sip:[called]@127.0.0.1:${gwPort}` }),
      3: node(3, 'analysis.sequentialConditions', {
        conditions: [{ variable: 'callLimitStatus', operator: 'is', value: 'unavailable', ifTrue: 4 }],
        fallback: 5,
      }),
      4: node(4, 'output.reply', { code: 503, reason: 'Call Limit Unavailable' }),
      5: node(5, 'output.reply', { code: 486, reason: 'Call Limit [callLimitStatus]' }),
    },
  },
});

/** A Call-ID the dispatcher gives to worker `w` of 2. */
function callIdFor(w: number): string {
  for (;;) {
    const id = `${rand()}@limit`;
    if (callIdHash(Buffer.from(`X sip:x SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`)) % 2 === w) return id;
  }
}

describe.each([['instance'], ['database']] as const)('analysis.callLimit across SIP worker threads, store %s', (store) => {
  let flows = '';
  let serve: ServeProcess;
  let caller: UdpUa;
  let gw: UdpUa;
  const database = `sipflow_cl_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    gw = await UdpUa.open(0);
    flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-limit-'));
    writeFileSync(path.join(flows, 'pbx.slid'), JSON.stringify(flow(gw.port)));
    serve = await startServe({
      flows,
      workers: 2,
      logLevel: 'warn',
      ...(store === 'database' ? { locationUrl: mongoUrl() } : {}),
      config: { callLimit: { store }, ...(store === 'database' ? { location: { database } } : {}) },
    });
    caller = await UdpUa.open(serve.sipPort);
  }, 90_000);

  afterAll(async () => {
    await caller?.close();
    await gw?.close();
    if (serve) expect((await serve.stop()).code).toBe(0);
    rmSync(flows, { recursive: true, force: true });
    if (store === 'database') {
      const c = new MongoClient(mongoUrl());
      await c.db(database).dropDatabase();
      await c.close();
    }
  });

  const proxyUri = () => `sip:bob@127.0.0.1:${serve.sipPort}`;
  const ofCall = (callId: string) => (r: Received) => header(r.msg, 'call-id') === callId;
  const responseTo = (callId: string, status: number) =>
    caller.next((r) => ofCall(callId)(r) && !isRequest(r.msg) && (r.msg as SipResponse).status === status, 5000).then((r) => r.msg as SipResponse);
  const gwRequest = (method: string, callId: string) =>
    gw.next((r) => ofCall(callId)(r) && isRequest(r.msg) && r.msg.method === method, 5000) as Promise<Received & { msg: SipRequest }>;

  function invite(worker: number, user: string): string {
    const callId = callIdFor(worker);
    caller.send(
      sipRequest({
        method: 'INVITE',
        uri: proxyUri(),
        ua: caller,
        callId,
        fromTag: 'ft',
        from: `<sip:${user}@example.test>`,
        branch: `z9hG4bK${callId.split('@')[0]}`,
      }),
    );
    return callId;
  }
  /** ACK of a non-2xx final (same branch as the INVITE). */
  function ack(callId: string, user: string, toTag: string | undefined): void {
    const to = `<sip:bob@example.test>${toTag ? `;tag=${toTag}` : ''}`;
    caller.send(
      sipRequest({
        method: 'ACK',
        uri: proxyUri(),
        ua: caller,
        callId,
        fromTag: 'ft',
        from: `<sip:${user}@example.test>`,
        to,
        branch: `z9hG4bK${callId.split('@')[0]}`,
      }),
    );
  }
  const toTagOf = (r: SipResponse) => /;tag=([^;]+)/.exec(header(r, 'to') ?? '')?.[1];

  async function rejected(callId: string, user: string): Promise<SipResponse> {
    const r = await responseTo(callId, 486);
    ack(callId, user, toTagOf(r));
    return r;
  }

  /** An admitted call answered 200 by the gateway. */
  async function connected(callId: string): Promise<void> {
    const { msg } = await gwRequest('INVITE', callId);
    gw.sendTo(sipResponse(msg, 200, 'OK', { toTag: 'g', headers: { Contact: `<sip:bob@127.0.0.1:${gw.port}>` } }), serve.sipPort);
    await responseTo(callId, 200);
  }

  async function bye(callId: string, user: string): Promise<void> {
    caller.send(
      sipRequest({
        method: 'BYE',
        uri: proxyUri(),
        ua: caller,
        callId,
        cseq: 2,
        fromTag: 'ft',
        from: `<sip:${user}@example.test>`,
        to: '<sip:bob@example.test>;tag=g',
      }),
    );
    const { msg } = await gwRequest('BYE', callId);
    gw.sendTo(sipResponse(msg, 200, 'OK'), serve.sipPort);
    await caller.next((r) => ofCall(callId)(r) && !isRequest(r.msg) && header(r.msg, 'cseq') === '2 BYE', 5000);
  }

  test('one call per user across both threads; the BYE frees the slot', async () => {
    const a = invite(0, 'alice');
    await connected(a);
    // alice again, through the other thread: the limit is the instance's
    const b = invite(1, 'alice');
    expect((await rejected(b, 'alice')).reason).toBe('Call Limit concurrent');
    const b2 = invite(0, 'alice');
    expect((await rejected(b2, 'alice')).reason).toBe('Call Limit concurrent');
    // another user is another key
    const c = invite(1, 'carol');
    await connected(c);
    await bye(a, 'alice');
    const d = invite(1, 'alice');
    await connected(d);
    await bye(d, 'alice');
    await bye(c, 'carol');
  });

  test("a gateway's reject frees the slot; so does a CANCEL (487)", async () => {
    const a = invite(0, 'dave');
    const first = await gwRequest('INVITE', a);
    gw.sendTo(sipResponse(first.msg, 486, 'Busy Here', { toTag: 'g' }), serve.sipPort);
    const busy = await responseTo(a, 486);
    expect(busy.reason).toBe('Busy Here');
    ack(a, 'dave', toTagOf(busy));

    const b = invite(1, 'dave');
    const ringing = await gwRequest('INVITE', b);
    gw.sendTo(sipResponse(ringing.msg, 180, 'Ringing', { toTag: 'g' }), serve.sipPort);
    await responseTo(b, 180);
    caller.send(
      sipRequest({
        method: 'CANCEL',
        uri: proxyUri(),
        ua: caller,
        callId: b,
        fromTag: 'ft',
        from: '<sip:dave@example.test>',
        branch: `z9hG4bK${b.split('@')[0]}`,
      }),
    );
    const cancel = await gwRequest('CANCEL', b);
    gw.sendTo(sipResponse(cancel.msg, 200, 'OK', { toTag: 'g' }), serve.sipPort);
    gw.sendTo(sipResponse(ringing.msg, 487, 'Request Terminated', { toTag: 'g' }), serve.sipPort);
    const terminated = await responseTo(b, 487);
    ack(b, 'dave', toTagOf(terminated));

    const c = invite(0, 'dave');
    await connected(c);
    await bye(c, 'dave');
  });

  test('a From user that leaves no usable key (over 256 bytes) is refused, fail closed', async () => {
    const user = 'x'.repeat(300);
    const a = invite(0, user);
    expect((await rejected(a, user)).reason).toBe('Call Limit no key');
  });
});
