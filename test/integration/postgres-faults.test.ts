/**
 * The seed's REGISTER with the directory AND the location service on a PostgreSQL that dies and
 * comes back: while it is down the logic ends in `error` 503 + Retry-After (never a false 200),
 * nothing crashes; after the restart the next REGISTER succeeds and the binding acknowledged
 * before the outage is still there.
 */
import { mkdtempSync, readFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { buildCallDescriptor } from '../../engine/cd';
import { loadSlidText } from '../../engine/load';
import { runLogic } from '../../engine/run';
import { builtinRegistry } from '../../nodes';
import { parseDigestCredentials } from '../../services/auth';
import { openRuntime, type Runtime } from '../../server/runtime';
import { privatePostgres, type PrivateServer } from '../setup/servers';
import { answerChallenge, sampleRegister } from '../support/sip';

let server: PrivateServer;
let rt: Runtime;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => {
  unhandled.push(e);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = await privatePostgres();
  rt = await openRuntime({
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'sipflow-pgfaults-')),
    directoryUrl: server.url,
    locationUrl: server.url,
    nonceSecret: 'postgres-faults-secret-0123456789',
    provision: true,
  });
}, 90_000);
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await rt?.close();
  await server?.destroy();
});

const service = loadSlidText(readFileSync(path.join(__dirname, '../../flows/registration.slid'), 'utf8'), 'registration.slid', builtinRegistry()).service!;
const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });

/** Challenge, then the authenticated REGISTER; returns the second outcome. */
async function register(callId: string, contact: string, cseq: number) {
  const first = await runLogic(service, '24', cdOf(sampleRegister({ 'Call-ID': callId, Contact: contact, CSeq: `${cseq} REGISTER` })), rt.ctx);
  if (first.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(first.outcome)}`);
  const authorization = answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
  return (
    await runLogic(
      service,
      '24',
      cdOf(sampleRegister({ 'Call-ID': callId, Contact: contact, CSeq: `${cseq + 1} REGISTER`, Authorization: authorization })),
      rt.ctx,
    )
  ).outcome;
}

test('PostgreSQL down → 503 + Retry-After, back → 200, acknowledged bindings kept', async () => {
  expect(await register('before', '<sip:francesco@10.0.0.1:5060>', 1)).toMatchObject({ kind: 'register', status: 200 });

  await server.stop({ crash: true });
  const started = Date.now();
  const down = await register('during', '<sip:francesco@10.0.0.2:5060>', 1);
  expect(down).toMatchObject({ kind: 'error', status: 503 });
  if (down.kind === 'error') expect(down.retryAfter).toBeGreaterThan(0);
  expect(Date.now() - started).toBeLessThan(15_000);

  await server.start();
  const back = await register('after', '<sip:francesco@10.0.0.3:5060>', 1);
  expect(back).toMatchObject({ kind: 'register', status: 200 });
  if (back.kind !== 'register') throw new Error('unreachable');
  expect(back.bindings.map((b) => b.contact).sort()).toEqual(['sip:francesco@10.0.0.1:5060', 'sip:francesco@10.0.0.3:5060']);
  expect(unhandled).toEqual([]);
}, 90_000);
