/**
 * A stopping SIP server (SIGTERM → SipServer.close(grace), docs/operations.md "Stopping"), over
 * real sockets: new dialogs and registrations get 503 + Retry-After, while a call it relayed
 * before still ends through it — its ACK (no transaction of its own, arriving after the last
 * transaction ended) and its BYE, with and without Record-Route. Found by the rolling-restart
 * bench (bench/rolling-restart): the BYE got 503 and, without the linger, the ACK met a closed
 * socket; the call then never ended (404 from the restarted instance, which knows no dialog).
 * And a real `sipflow serve`: /health/ready says 503 "stopping" from SIGTERM on, so the next
 * instance of a rolling restart is not stopped before this one is back.
 */
import path from 'path';
import type { RunContext } from '../../../engine/types';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { header } from '../../../sip/message';
import { DRAIN_LINGER_MS } from '../../../sip/front-end';
import { loadFlows, startSipServer } from '../../../server/sip-server';
import { startServe } from '../../support/serve';
import { UdpUa, rand, sipRequest, sipResponse } from './ua';

const FLOWS = path.join(__dirname, 'fixtures', 'test-flows.slid');

function memoryCtx(): RunContext {
  return {
    directory: createMemoryDirectory({}),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'sipflow-draining-test-secret-0123456789' }),
    clock: { now: Date.now },
  };
}

describe.each([
  ['with Record-Route', true],
  ['without Record-Route (dialog table)', false],
])('a stopping server %s', (_name, recordRoute) => {
  test('answers a new INVITE and a REGISTER 503 + Retry-After, and still relays the ACK (300 ms after the 200) and the BYE of a call it set up', async () => {
    const server = await startSipServer({
      service: loadFlows(FLOWS).service,
      ctx: memoryCtx(),
      host: '127.0.0.1',
      port: 0,
      defaultLogic: 'proxy-test',
      recordRoute,
    });
    const caller = await UdpUa.open(server.udpPort);
    const uas = await UdpUa.open(server.udpPort);
    const late = await UdpUa.open(server.udpPort);
    let closing: Promise<void> | null = null;
    try {
      const user = 'drain' + rand();
      uas.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua: uas,
          from: `<sip:${user}@example.test>`,
          to: `<sip:${user}@example.test>`,
          contact: `<sip:${user}@127.0.0.1:${uas.port}>`,
          headers: { Expires: '300' },
        }),
      );
      expect((await uas.response()).status).toBe(200);

      const callId = rand();
      caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, callId, to: `<sip:${user}@example.test>`, fromTag: 'c1' }));
      const { msg: inv } = await uas.request('INVITE');
      const rr = header(inv, 'record-route');
      expect(rr === undefined).toBe(!recordRoute);
      uas.send(
        sipResponse(inv, 200, 'OK', {
          toTag: 'u1',
          headers: { Contact: `<sip:${user}@127.0.0.1:${uas.port}>`, ...(rr !== undefined ? { 'Record-Route': rr } : {}) },
        }),
      );
      await caller.response(200);

      // SIGTERM: the server drains (grace 3 s); nothing is in progress any more
      const t0 = Date.now();
      closing = server.close(3000);

      // a new dialog and a registration are refused, the sender told to retry elsewhere
      late.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: late, to: `<sip:${user}@example.test>` }));
      const refused = await late.response(503);
      expect(header(refused, 'retry-after')).toBe('5');
      late.send(sipRequest({ method: 'REGISTER', uri: 'sip:example.test', ua: late, from: `<sip:${user}@example.test>`, to: `<sip:${user}@example.test>` }));
      expect(header(await late.response(503), 'retry-after')).toBe('5');

      // the ACK of the 2xx comes late (a loaded caller): still relayed within the linger
      await new Promise((r) => setTimeout(r, 300));
      const inDialog = (method: string, cseq: number) =>
        sipRequest({
          method,
          uri: `sip:${user}@127.0.0.1:${recordRoute ? uas.port : server.udpPort}`,
          ua: caller,
          callId,
          cseq,
          fromTag: 'c1',
          to: `<sip:${user}@example.test>;tag=u1`,
          ...(rr !== undefined ? { headers: { Route: rr } } : {}),
        });
      caller.send(inDialog('ACK', 1));
      await uas.request('ACK');
      // the BYE of the call: relayed, not refused
      caller.send(inDialog('BYE', 2));
      const { msg: bye } = await uas.request('BYE');
      uas.send(sipResponse(bye, 200, 'OK'));
      expect(header(await caller.response(200), 'cseq')).toBe('2 BYE');

      await closing;
      const took = Date.now() - t0;
      // it lingered after the BYE's transaction, and stopped well within the grace
      expect(took).toBeGreaterThanOrEqual(300 + DRAIN_LINGER_MS);
      expect(took).toBeLessThan(3000);
    } finally {
      await caller.close();
      await uas.close();
      await late.close();
      await (closing ?? server.close(100));
    }
  });
});

test('new requests refused while stopping do not hold the instance up: it exits after the linger, not at the end of the grace', async () => {
  const server = await startSipServer({ service: loadFlows(FLOWS).service, ctx: memoryCtx(), host: '127.0.0.1', port: 0, defaultLogic: 'proxy-test' });
  const ua = await UdpUa.open(server.udpPort);
  try {
    const t0 = Date.now();
    let done = 0;
    const closing = server.close(3000).then(() => {
      done = Date.now() - t0;
    });
    // a PBX not yet told: a new INVITE every 100 ms for 1.5 s (15 in all), each answered 503 while it listens
    let refused = 0;
    for (let i = 0; i < 15 && done === 0; i++) {
      const callId = rand();
      ua.send(sipRequest({ method: 'INVITE', uri: 'sip:someone@example.test', ua, callId, to: '<sip:someone@example.test>' }));
      let to = `<sip:someone@example.test>;tag=gone${i}`;
      if (i < 3) {
        to = header(await ua.response(503), 'to')!;
        refused++;
      }
      // …and acknowledges each 503, as a UA must: an ACK that matches nothing here
      ua.send(sipRequest({ method: 'ACK', uri: 'sip:someone@example.test', ua, callId, to }));
      await new Promise((r) => setTimeout(r, 100));
    }
    await closing;
    expect(refused).toBe(3);
    expect(done).toBeGreaterThanOrEqual(DRAIN_LINGER_MS);
    expect(done).toBeLessThan(1200);
  } finally {
    await ua.close();
  }
});

describe('sipflow serve, SIGTERM', () => {
  test('/health/ready answers 200 with checks.sip "ok" once SIP listens, 503 "stopping" from SIGTERM on while it drains; exit 0', async () => {
    const s = await startServe({ workers: 2 });
    try {
      const ready = async () => {
        const r = await fetch(`http://127.0.0.1:${s.httpPort}/health/ready`);
        return { status: r.status, body: (await r.json()) as { status: string; checks: Record<string, string> } };
      };
      expect(await ready()).toEqual({ status: 200, body: { status: 'ok', checks: { directory: 'ok', location: 'ok', sip: 'ok' } } });
      const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
      s.child.kill('SIGTERM');
      // the drain lasts at least the linger: a load balancer polling readiness sees the instance leave
      let seen: Awaited<ReturnType<typeof ready>> | null = null;
      for (let i = 0; i < 50 && seen === null; i++) {
        const r = await ready().catch(() => null);
        if (r !== null && r.body.checks.sip === 'stopping') seen = r;
        else await new Promise((res) => setTimeout(res, 10));
      }
      expect(seen).toEqual({ status: 503, body: { status: 'unavailable', checks: { directory: 'ok', location: 'ok', sip: 'stopping' } } });
      expect(await exited).toBe(0);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
