/**
 * The instance cache across SIP worker threads: `sipflow serve --workers 2` (built CLI) with a
 * flow that stores a header's value under `user:[fromUsername]` (action.cacheSet) or answers it
 * back (query.cacheGet). A value set through one worker thread is read through the other: the
 * table lives in the dispatching thread, reached with the 'cache.get' / 'cache.set' store calls.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callIdHash } from '../../../sip/dispatch';
import { startServe, type ServeProcess } from '../../support/serve';
import { UdpUa, rand, sipRequest, type Ua } from '../sip/ua';
import { slidNode as node } from '../../support/slid';

/** Logic `pbx` (the default logic): X-Cache-Set: <value> → stored (200) or 413; else the value back in X-Cached, or 404. */
const FLOW = {
  1: {
    name: 'pbx',
    description: 'cache probe',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'analysis.extractSipHeader', { extractions: [{ header: 'X-Cache-Set', part: 'value', storeInto: 'newValue' }], next: 2, ifNotFound: 4 }),
      2: node(2, 'action.cacheSet', { key: 'user:[fromUsername]', value: 'newValue', ttlSec: 300, next: 3, ifNotStored: 7 }),
      3: node(3, 'output.reply', { code: 200, reason: 'stored' }),
      4: node(4, 'query.cacheGet', { key: 'user:[fromUsername]', storeInto: 'cached', ifFound: 5, ifNotFound: 6 }),
      5: node(5, 'output.reply', { code: 200, reason: 'found', headers: { 'X-Cached': '[cached]' } }),
      6: node(6, 'output.reply', { code: 404, reason: 'not cached' }),
      7: node(7, 'output.reply', { code: 413, reason: 'not stored' }),
    },
  },
};

let flows = '';
let serve: ServeProcess;
let ua: Ua;

beforeAll(async () => {
  flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cache-'));
  writeFileSync(path.join(flows, 'pbx.slid'), JSON.stringify(FLOW));
  serve = await startServe({ flows, workers: 2, logLevel: 'warn', config: { nodes: { cache: { maxValueBytes: 100 } } } });
  ua = await UdpUa.open(serve.sipPort);
}, 90_000);

afterAll(async () => {
  await ua?.close();
  if (serve) expect((await serve.stop()).code).toBe(0);
  rmSync(flows, { recursive: true, force: true });
});

/** A Call-ID the dispatcher gives to worker `w` of 2. */
function callIdFor(w: number): string {
  for (;;) {
    const id = `${rand()}@cache`;
    if (callIdHash(Buffer.from(`X sip:x SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`)) % 2 === w) return id;
  }
}

async function options(worker: number, user: string, set?: string) {
  ua.send(
    sipRequest({
      method: 'OPTIONS',
      uri: 'sip:probe@127.0.0.1',
      ua,
      callId: callIdFor(worker),
      from: `<sip:${user}@example.test>`,
      contact: null,
      headers: set === undefined ? {} : { 'X-Cache-Set': set },
    }),
  );
  return ua.response();
}

test('a value set through one SIP worker thread is read through the other', async () => {
  expect(await options(0, 'alice', 'sip:alice@10.0.0.7')).toMatchObject({ status: 200, reason: 'stored' });
  const read = await options(1, 'alice');
  expect(read).toMatchObject({ status: 200, reason: 'found' });
  expect(read.headers['x-cached']).toEqual(['sip:alice@10.0.0.7']);
  // and the other way round, overwriting
  expect((await options(1, 'alice', 'sip:alice@10.0.0.8')).status).toBe(200);
  expect((await options(0, 'alice')).headers['x-cached']).toEqual(['sip:alice@10.0.0.8']);
}, 30_000);

test('another sender finds nothing; a value over nodes.cache.maxValueBytes is not stored and the old one is gone', async () => {
  expect((await options(0, 'bob')).status).toBe(404);
  expect((await options(1, 'carol', 'old')).status).toBe(200);
  expect(await options(0, 'carol', 'x'.repeat(101))).toMatchObject({ status: 413 });
  expect((await options(1, 'carol')).status).toBe(404);
}, 30_000);
