/**
 * The MongoDB location store when its server dies and comes back: operations fail fast with
 * LocationUnavailableError (the registrar answers 503), nothing hangs or rejects unhandled, and
 * after a restart on the same port and data the store works again with every binding intact.
 * Runs on a private FerretDB this suite alone stops (the shared one serves other suites).
 */
import { createMongoLocationStore } from '../../../services/location/mongo';
import { LocationUnavailableError } from '../../../services/location/types';
import type { Binding, LocationStore } from '../../../services/location/types';
import { privateFerretDb } from '../../setup/servers';
import type { PrivateServer } from '../../setup/servers';
import { makeBinding } from './fixtures';
import { rejection, watchUnhandledRejections, sleep } from './faults';

/** Generous bound for "fails fast": serverSelectionTimeoutMS is 2 s, one retry included. */
const FAST_MS = 4500;

let server: PrivateServer;
let store: LocationStore;

beforeAll(async () => {
  server = await privateFerretDb();
});
afterAll(async () => {
  await store?.close();
  await server?.destroy();
});

const byRuid = (a: Binding, b: Binding) => a.ruid.localeCompare(b.ruid);

test.each([
  ['killed (SIGKILL)', true],
  ['shut down cleanly (SIGTERM)', false],
])('server %s mid-run: fast LocationUnavailableError, then recovery with data intact', async (_how, crash) => {
  const unhandled = watchUnhandledRejections();
  try {
    store = createMongoLocationStore({ url: server.url, database: `faults_${crash ? 'kill' : 'term'}` });
    const before = Array.from({ length: 20 }, (_, i) => makeBinding({ contact: `sip:john@10.2.0.${i}` }));
    for (const b of before) await store.upsert(b);

    await server.stop({ crash });

    const find = await rejection(store.find('john', null));
    expect(find.error).toBeInstanceOf(LocationUnavailableError);
    expect(find.ms).toBeLessThan(FAST_MS);
    const upsert = await rejection(store.upsert(makeBinding()));
    expect(upsert.error).toBeInstanceOf(LocationUnavailableError);
    expect(upsert.ms).toBeLessThan(FAST_MS);
    const purge = await rejection(store.purgeExpired(new Date()));
    expect(purge.error).toBeInstanceOf(LocationUnavailableError);
    // Several callers at once (a burst of REGISTERs) all get their answer.
    const burst = await Promise.allSettled(Array.from({ length: 10 }, () => store.find('john', null)));
    expect(burst.every((r) => r.status === 'rejected' && r.reason instanceof LocationUnavailableError)).toBe(true);

    await server.start();

    const after = makeBinding({ contact: 'sip:john@10.2.1.1' });
    await store.upsert(after);
    expect((await store.find('john', null)).sort(byRuid)).toEqual([...before, after].sort(byRuid));

    await sleep(100); // let any stray rejection surface before we look
    expect(unhandled.seen).toEqual([]);
  } finally {
    unhandled.stop();
    await store.close();
  }
});

test('a store whose server is down from the start fails fast, and works once it is up', async () => {
  await server.stop();
  store = createMongoLocationStore({ url: server.url, database: 'faults_cold' });
  const { error, ms } = await rejection(store.upsert(makeBinding()));
  expect(error).toBeInstanceOf(LocationUnavailableError);
  expect(ms).toBeLessThan(FAST_MS);
  await server.start();
  const b = makeBinding();
  await store.upsert(b); // the failed first-use setup (indexes, version docs) is retried
  expect(await store.find('john', null)).toEqual([b]);
  await store.close();
});
