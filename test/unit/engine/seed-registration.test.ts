import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor } from '../../../engine/cd';
import { loadSlidText } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import { testContext } from '../../support/context';
import { answerChallenge, sampleRegister } from '../../support/sip';

const file = path.join(__dirname, '../../../flows/registration.slid');
const text = readFileSync(file, 'utf8');
const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });

describe('the seed registration logic, unchanged', () => {
  const loaded = loadSlidText(text, 'registration.slid', builtinRegistry());
  const service = loaded.service!;

  test('is the seed file byte for byte and loads without problems', () => {
    expect(text).toBe(readFileSync(path.join(__dirname, '../../../../shared/seed/registration.slid'), 'utf8'));
    expect(loaded.problems).toEqual([]);
    expect(service.find('registration')?.id).toBe('24');
  });

  test('REGISTER without credentials is challenged with 401 in the From host realm', async () => {
    const ctx = testContext();
    const r = await runLogic(service, '24', cdOf(sampleRegister()), ctx, { trace: true });
    expect(r.outcome).toMatchObject({
      kind: 'challenge',
      status: 401,
      header: 'WWW-Authenticate',
      realm: 'nl.netaxis.be',
      qop: 'auth',
      algorithm: 'MD5',
      stale: false,
    });
    expect(r.trace!.map((t) => t.nodeId)).toEqual(['0', '1', '3', '5', '4']);
    expect(r.cd.vars.authStatus).toBe(0);
  });

  test('three passes: challenge, authenticate (authStatus 1, restart), save → 200 with the binding', async () => {
    const ctx = testContext();
    const first = await runLogic(service, '24', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    const second = cdOf(sampleRegister({ Authorization: authorization, CSeq: '62651 REGISTER' }));
    expect(second.vars.authUsername).toBe('francesco');
    const r = await runLogic(service, '24', second, ctx, { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200, aor: 'francesco' });
    if (r.outcome.kind !== 'register') throw new Error('unreachable');
    expect(r.outcome.bindings).toEqual([{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300, q: -1 }]);
    expect(r.restarts).toBe(1);
    expect(r.cd.vars).toMatchObject({ authStatus: 1, password: '123456', customer_name: 'Netaxis NL' });
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual([
      '0:next',
      '1:fallback',
      '3:ifTrue',
      '5:ifRecordFound',
      '4:restart',
      '0:next',
      '1:conditions/0/ifTrue',
      '2:register',
    ]);
    const bindings = await ctx.location.lookup('francesco', null, new Date(ctx.clock.now()));
    expect(bindings.map((b) => b.contact)).toEqual(['sip:francesco@10.1.10.89:57806;ob']);
  });

  test('a wrong password is challenged again and stores nothing', async () => {
    const ctx = testContext();
    const first = await runLogic(service, '24', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], {
      username: 'francesco',
      password: 'wrong',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    const r = await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization })), ctx);
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    expect(r.cd.vars.authStatus).toBe(0);
    expect(await ctx.location.lookup('francesco', null, new Date(ctx.clock.now()))).toEqual([]);
  });

  test('an unknown user is challenged again', async () => {
    const ctx = testContext();
    const first = await runLogic(service, '24', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], { username: 'mallory', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    const r = await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization })), ctx, { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    expect(r.trace!.find((t) => t.nodeId === '5')?.exit).toBe('ifnoRecordFound');
  });

  test('a replayed Authorization (same nonce and nc) is challenged', async () => {
    const ctx = testContext();
    const first = await runLogic(service, '24', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    expect((await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization })), ctx)).outcome.kind).toBe('register');
    expect((await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization })), ctx)).outcome.kind).toBe('challenge');
  });

  test('an expired nonce with the right response is challenged with stale=true', async () => {
    const ctx = testContext();
    const first = await runLogic(service, '24', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(first.outcome.challenges[0], {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    ctx.clockMs.value += 3600_000;
    const r = await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization })), ctx);
    expect(r.outcome).toMatchObject({ kind: 'challenge', stale: true });
    if (r.outcome.kind === 'challenge') expect(r.outcome.challenges[0]).toContain('stale=true');
  });
});
