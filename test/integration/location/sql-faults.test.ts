/**
 * The SQL location store when PostgreSQL dies and comes back: fast LocationUnavailableError,
 * nothing hangs or rejects unhandled, and after a restart on the same port and data directory
 * the store works again with every committed binding intact. Runs on a private cluster.
 */
import type { Knex } from 'knex';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import { LocationUnavailableError } from '../../../services/location/types';
import type { Binding } from '../../../services/location/types';
import type { PrivateServer } from '../../setup/servers';
import { makeBinding } from './fixtures';
import { useFaultyPostgres, rejection, watchUnhandledRejections, sleep } from './faults';

const FAST_MS = 4500;

let server: PrivateServer;
let knex: Knex;

useFaultyPostgres((pg) => ({ server, knex } = pg));

const byRuid = (a: Binding, b: Binding) => a.ruid.localeCompare(b.ruid);

test.each([
  ['crashes (pg_ctl -m immediate)', true],
  ['shuts down (pg_ctl -m fast)', false],
])('PostgreSQL %s mid-run: fast LocationUnavailableError, then recovery with data intact', async (_how, crash) => {
  const unhandled = watchUnhandledRejections();
  try {
    await knex('location').truncate();
    const store = createSqlLocationStore(knex);
    const before = Array.from({ length: 20 }, (_, i) => makeBinding({ contact: `sip:john@10.3.0.${i}` }));
    await Promise.all(before.map((b) => store.upsert(b))); // fills the pool with live connections

    await server.stop({ crash });

    const find = await rejection(store.find('john', null));
    expect(find.error).toBeInstanceOf(LocationUnavailableError);
    expect(find.ms).toBeLessThan(FAST_MS);
    const upsert = await rejection(store.upsert(makeBinding()));
    expect(upsert.error).toBeInstanceOf(LocationUnavailableError);
    expect(upsert.ms).toBeLessThan(FAST_MS);
    const burst = await Promise.allSettled(Array.from({ length: 10 }, () => store.find('john', null)));
    expect(burst.every((r) => r.status === 'rejected' && r.reason instanceof LocationUnavailableError)).toBe(true);

    await server.start();

    const after = makeBinding({ contact: 'sip:john@10.3.1.1' });
    await store.upsert(after);
    expect((await store.find('john', null)).sort(byRuid)).toEqual([...before, after].sort(byRuid));

    await sleep(100);
    expect(unhandled.seen).toEqual([]);
  } finally {
    unhandled.stop();
  }
});

test('a store whose server is down from the start fails fast (ensureSchema too), and works once it is up', async () => {
  await server.stop();
  const store = createSqlLocationStore(knex);
  const a = await rejection(store.upsert(makeBinding()));
  expect(a.error).toBeInstanceOf(LocationUnavailableError);
  expect(a.ms).toBeLessThan(FAST_MS);
  const s = await rejection(ensureSchema(knex));
  expect(s.error).toBeInstanceOf(LocationUnavailableError);
  await server.start();
  await ensureSchema(knex);
  const b = makeBinding({ username: 'cold' });
  await store.upsert(b);
  expect(await store.find('cold', null)).toEqual([b]);
});
