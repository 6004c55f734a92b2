/** flows/incoming-call.slid (note §4.2.2): called number → PBX AoR → location service → relay. */
import { runLogic } from '../../../engine/run';
import { cdOf, context, loadFlow, provisionedDirectory, registerBinding, request, type TestDirectory } from './support';

const { service } = loadFlow('incoming-call.slid');
let dir: TestDirectory;
beforeAll(async () => { dir = await provisionedDirectory(); });
afterAll(async () => { await dir.close(); });

/** An INVITE from the PSTN side (no credentials) to a number of ours. */
const fromPstn = (number: string) => cdOf(request({
  requestURI: `sip:${number}@nl.netaxis.be`, from: '<sip:0612345678@pstn.example.net>;tag=p1', sourceAddress: '192.0.2.10',
}));

async function registeredContext() {
  const ctx = context(dir);
  await registerBinding(ctx, 'francesco', 'sip:francesco@10.1.10.89:57806;ob');
  await registerBinding(ctx, 'acme', 'sip:acme@10.2.0.5:5060', '10.2.0.5:5060');
  await registerBinding(ctx, 'beta', 'sip:beta@10.3.0.7:5080', '10.3.0.7:5080');
  return ctx;
}

describe('incoming call', () => {
  test('000112233 (the note\'s number) is relayed to the contact francesco registered', async () => {
    const ctx = await registeredContext();
    const r = await runLogic(service, 'incoming call', fromPstn('000112233'), ctx, { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:francesco@10.1.10.89:57806;ob' }] });
    expect(r.cd.vars).toMatchObject({ aor: 'francesco@nl.netaxis.be', customer_name: 'Netaxis NL', matched_number: '000112233' });
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:ifRecordFound', '3:relay']);
  });

  test('a binding registered through the registration logic is found the same way', async () => {
    const { service: reg } = loadFlow('registration.slid');
    const ctx = context(dir);
    const { sampleRegister, answerChallenge } = await import('../../support/sip');
    const first = await runLogic(reg, 'registration', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    expect((await runLogic(reg, 'registration', cdOf(sampleRegister({ Authorization: authorization, CSeq: '62651 REGISTER' })), ctx)).outcome)
      .toMatchObject({ kind: 'register', status: 200 });
    const r = await runLogic(service, '31', fromPstn('000112233'), ctx);
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:francesco@10.1.10.89:57806;ob' }] });
  });

  test('a number inside a range goes to the PBX owning the longest matching range', async () => {
    const ctx = await registeredContext();
    const r = await runLogic(service, '31', fromPstn('0031201777'), ctx, { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:acme@10.2.0.5:5060' }] });
    expect(r.cd.vars).toMatchObject({ aor: 'acme@nl.netaxis.be', matched_number: '0031201' }); // not Idle's shorter 003120
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:ifnoRecordFound', '2:ifRecordFound', '3:relay']);
  });

  test('a single number wins over the range it lies in', async () => {
    const ctx = await registeredContext();
    const r = await runLogic(service, '31', fromPstn('00312015555'), ctx);
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:beta@10.3.0.7:5080' }] });
  });

  test('a single number is not a prefix: 0001122334 is not francesco\'s', async () => {
    const ctx = await registeredContext();
    expect((await runLogic(service, '31', fromPstn('0001122334'), ctx)).outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  test('an unknown number is rejected with 404', async () => {
    const ctx = await registeredContext();
    const r = await runLogic(service, '31', fromPstn('0099123456'), ctx, { trace: true });
    expect(r.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
    expect(r.trace!.at(-1)).toMatchObject({ nodeId: '5', exit: 'reply' });
  });

  test('a known number whose PBX has no binding gets 480 Temporarily Unavailable', async () => {
    const ctx = await registeredContext();
    for (const number of ['000999888', '0031209999']) { // Idle's number, then Idle's range
      const r = await runLogic(service, '31', fromPstn(number), ctx, { trace: true });
      expect(r.outcome).toEqual({ kind: 'reply', status: 480, reason: 'Temporarily Unavailable' });
      expect(r.trace!.map((t) => t.nodeId).slice(-2)).toEqual(['3', '4']);
    }
  });

  test('a registered number whose binding expired is 480 too', async () => {
    const ctx = await registeredContext();
    ctx.clockMs.value += 3601_000;
    expect((await runLogic(service, '31', fromPstn('000112233'), ctx)).outcome).toMatchObject({ kind: 'reply', status: 480 });
  });
});
