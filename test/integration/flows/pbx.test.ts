/**
 * flows/pbx.slid, the top-level logic: dispatch by dialog state and method, REGISTER through the
 * seed registration logic, INVITE from the PSTN trunk → incoming call, INVITE from a PBX →
 * authentication + call screening + relay.
 */
import { runLogic } from '../../../engine/run';
import { answerChallenge, sampleRegister } from '../../support/sip';
import type { TestContext } from '../../support/context';
import { FRANCESCO, cdOf, context, loadFlow, provisionedDirectory, request, withCredentials, type TestDirectory } from './support';

const { service } = loadFlow('pbx.slid');
let dir: TestDirectory;
beforeAll(async () => { dir = await provisionedDirectory(); });
afterAll(async () => { await dir.close(); });

const run = (input: Record<string, unknown>, ctx: TestContext) => runLogic(service, 'pbx', cdOf(input), ctx, { trace: true });
const TRUNK = '192.0.2.10';

/** The note's §6.3 REGISTER, three passes through pbx → registration. */
async function registerFrancesco(ctx: TestContext) {
  const first = await run(sampleRegister(), ctx);
  expect(first.outcome).toMatchObject({ kind: 'challenge', status: 401, header: 'WWW-Authenticate', realm: 'nl.netaxis.be' });
  if (first.outcome.kind !== 'challenge') throw new Error('unreachable');
  const authorization = answerChallenge(first.outcome.challenges[0], { ...FRANCESCO, method: 'REGISTER', uri: 'sip:10.1.10.163' });
  return run(sampleRegister({ Authorization: authorization, CSeq: '62651 REGISTER' }), ctx);
}

describe('pbx: REGISTER', () => {
  test('three passes: 401, authenticate + restart of pbx, save → 200 with the binding', async () => {
    const ctx = context(dir);
    const r = await registerFrancesco(ctx);
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200, aor: 'francesco', bindings: [{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300 }] });
    expect(r.restarts).toBe(1);
    // the restart runs pbx again from its start, which dispatches to registration once more
    expect(r.trace!.filter((t) => t.type === 'enter.start').map((t) => t.logic)).toEqual(['1', '24', '1', '24']);
    expect(r.trace!.at(-1)).toMatchObject({ logic: '24', nodeId: '2', exit: 'register' });
  });
});

describe('pbx: INVITE', () => {
  test('from the PSTN trunk to a registered DID: relayed to the PBX binding, no authentication', async () => {
    const ctx = context(dir);
    await registerFrancesco(ctx);
    const r = await run(request({ requestURI: 'sip:000112233@nl.netaxis.be', from: '<sip:0612345678@pstn.example.net>;tag=p', sourceAddress: TRUNK }), ctx);
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:francesco@10.1.10.89:57806;ob' }] });
    expect(r.restarts).toBe(0);
    expect(r.trace!.find((t) => t.nodeId === '8' && t.logic === '1')).toBeUndefined();
  });

  test('from the PSTN trunk: unknown number 404, unregistered PBX 480', async () => {
    const ctx = context(dir);
    const pstn = (number: string) => request({ requestURI: `sip:${number}@nl.netaxis.be`, sourceAddress: '192.0.2.11' });
    expect((await run(pstn('0099123'), ctx)).outcome).toMatchObject({ kind: 'reply', status: 404 });
    expect((await run(pstn('000112233'), ctx)).outcome).toMatchObject({ kind: 'reply', status: 480 }); // nobody registered here
  });

  test('from a PBX: 407 first, then screening passes and the call is relayed to the Request-URI', async () => {
    const ctx = context(dir);
    const req = request({ from: '<sip:000112233@nl.netaxis.be>;tag=o1' });
    const { challenge, result: r } = await withCredentials(service, 'pbx', ctx, req, FRANCESCO);
    expect(challenge.outcome).toMatchObject({ kind: 'challenge', status: 407, header: 'Proxy-Authenticate' });
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:6756757@nl.netaxis.be' }] });
    expect(r.cd.vars).toMatchObject({ authStatus: 1, cli: '000112233', cli_number: '000112233' });
    expect([...new Set(r.trace!.map((t) => t.logic))]).toEqual(['1', '2', '3']);
  });

  test('from a PBX with a CLI that is not its own: 403 after authentication', async () => {
    const ctx = context(dir);
    const req = request({ from: '<sip:000112233@nl.netaxis.be>;tag=o2', headers: { 'P-Asserted-Identity': '<sip:0031201555@nl.netaxis.be>' } });
    const { result: r } = await withCredentials(service, 'pbx', ctx, req, FRANCESCO);
    expect(r.outcome).toEqual({ kind: 'reply', status: 403, reason: 'Forbidden' });
  });

  test('from a PBX that pretends to be the PSTN (a tgrp, a PSTN From) still has to authenticate', async () => {
    const ctx = context(dir);
    const req = request({ requestURI: 'sip:000112233@nl.netaxis.be', from: '<sip:0612345678@pstn.example.net>;tag=x', headers: { Contact: '<sip:gw@10.9.9.9;tgrp=pstn>' } });
    expect((await run(req, ctx)).outcome).toMatchObject({ kind: 'challenge', status: 407 });
  });
});

describe('pbx: other requests', () => {
  test('OPTIONS → 200 with Allow', async () => {
    const r = await run(request({ method: 'OPTIONS', requestURI: 'sip:nl.netaxis.be' }), context(dir));
    expect(r.outcome).toEqual({ kind: 'reply', status: 200, reason: 'OK', headers: { Allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER' } });
  });

  test.each(['SUBSCRIBE', 'MESSAGE', 'REFER', 'PUBLISH', 'NOTIFY'])('%s outside a dialog → 405 with Allow', async (method) => {
    const r = await run(request({ method }), context(dir));
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 405, reason: 'Method Not Allowed', headers: { Allow: expect.stringContaining('INVITE') } });
  });

  test('an unknown method → 501', async () => {
    expect((await run(request({ method: 'FROBNICATE' }), context(dir))).outcome).toEqual({ kind: 'reply', status: 501, reason: 'Not Implemented' });
  });

  test.each(['BYE', 'INFO'])('%s without a To tag (no dialog) → 481', async (method) => {
    expect((await run(request({ method }), context(dir))).outcome).toMatchObject({ kind: 'reply', status: 481 });
  });

  test.each(['ACK', 'BYE', 'CANCEL', 'INVITE', 'UPDATE'])('%s with a To tag is relayed by Request-URI without authentication', async (method) => {
    const r = await run(request({ method, requestURI: 'sip:francesco@10.1.10.89:57806;ob', to: '<sip:000112233@nl.netaxis.be>;tag=8cf84964' }), context(dir));
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:francesco@10.1.10.89:57806;ob' }] });
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:next', '2:next', '3:conditions/0/ifTrue', '10:relay']);
  });

  test.each(['ACK', 'CANCEL'])('%s without a To tag is handed back to the front end (exit)', async (method) => {
    expect((await run(request({ method }), context(dir))).outcome).toEqual({ kind: 'exit', status: null });
  });
});
