/** flows/outgoing-call.slid (note §4.2.1) on a real PGlite directory and the memory registrar. */
import { runLogic } from '../../../engine/run';
import { FRANCESCO, cdOf, context, loadFlow, provisionedDirectory, request, withCredentials, type TestDirectory } from './support';

const { service } = loadFlow('outgoing-call.slid');
let dir: TestDirectory;
beforeAll(async () => { dir = await provisionedDirectory(); });
afterAll(async () => { await dir.close(); });

describe('outgoing call', () => {
  test('an INVITE without credentials is challenged: 407 + Proxy-Authenticate in the From host realm', async () => {
    const r = await runLogic(service, 'outgoing call', cdOf(request()), context(dir), { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 407, header: 'Proxy-Authenticate', realm: 'nl.netaxis.be', stale: false });
    if (r.outcome.kind === 'challenge') expect(r.outcome.challenges[0]).toMatch(/^Digest realm="nl.netaxis.be", nonce="[^"]+"/);
    // no Proxy-Authorization: straight to the challenge, no database lookup
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:fallback', '2:ifFalse', '4:challenge']);
  });

  test('three passes: 407, authenticate (restart with authStatus 1), relay to the Request-URI', async () => {
    const ctx = context(dir);
    const { result: r } = await withCredentials(service, '30', ctx, request(), FRANCESCO);
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:6756757@nl.netaxis.be' }] });
    expect(r.restarts).toBe(1);
    expect(r.cd.vars).toMatchObject({ authStatus: 1, authUsername: 'francesco', customer_name: 'Netaxis NL', destination: 'sip:6756757@nl.netaxis.be' });
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual([
      '0:next', '1:fallback', '2:ifTrue', '3:ifRecordFound', '4:restart', '0:next', '1:conditions/0/ifTrue', '5:next', '6:relay',
    ]);
  });

  test('the destination follows the Request-URI (tel-style numbers, other hosts)', async () => {
    const req = request({ requestURI: 'sip:0031201777@gw.example.net:5070;user=phone' });
    const { result: r } = await withCredentials(service, '30', context(dir), req, FRANCESCO);
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:0031201777@gw.example.net:5070;user=phone' }] });
  });

  test('a wrong password is challenged again and nothing is relayed', async () => {
    const { result: r } = await withCredentials(service, '30', context(dir), request(), { username: 'francesco', password: 'nope' });
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 407 });
    expect(r.cd.vars.authStatus).toBe(0);
  });

  test('an unknown authentication username is challenged again', async () => {
    const { result: r } = await withCredentials(service, '30', context(dir), request(), { username: 'mallory', password: '123456' });
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 407 });
    expect(r.trace!.find((t) => t.nodeId === '3')?.exit).toBe('ifnoRecordFound');
  });

  test('another customer authenticates with its own credentials', async () => {
    const { result: r } = await withCredentials(service, '30', context(dir), request({ from: '<sip:0031201555@nl.netaxis.be>;tag=1' }), { username: 'acme', password: 'acme-pw' });
    expect(r.outcome.kind).toBe('relay');
    expect(r.cd.vars.customer_name).toBe('Acme PBX');
  });
});
