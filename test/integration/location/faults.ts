/** Helpers for the fault suites: a PostgreSQL to stop, timing a rejection, catching unhandled rejections. */
import knexFactory, { type Knex } from 'knex';
import { ensureSchema } from '../../../services/location/sql';
import { privatePostgres, type PrivateServer } from '../../setup/servers';

/**
 * A PostgreSQL of the suite's own (it may be stopped and restarted) with Kamailio's location tables,
 * and a knex that gives up fast when it is down: a connect fails in 2 s, not the OS's TCP timeout.
 */
export async function faultyPostgres(): Promise<{ server: PrivateServer; knex: Knex; close(): Promise<void> }> {
  const server = await privatePostgres();
  const knex = knexFactory({
    client: 'pg',
    connection: { connectionString: server.url, connectionTimeoutMillis: 2000 } as Knex.PgConnectionConfig,
    pool: { min: 0, max: 4 },
    acquireConnectionTimeout: 2000,
    // knex prints each failed connect attempt; these suites cause them on purpose.
    log: { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} },
  });
  await ensureSchema(knex);
  return {
    server,
    knex,
    close: async () => {
      await knex.destroy();
      await server.destroy();
    },
  };
}

/**
 * `faultyPostgres()` for a describe block (or a file): started before its first test, destroyed
 * after its last; `use` receives the server and knex once started.
 */
export function useFaultyPostgres(use: (pg: { server: PrivateServer; knex: Knex }) => void): void {
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const pg = await faultyPostgres();
    close = pg.close;
    use(pg);
  }, 60_000);
  afterAll(async () => {
    await close?.();
  });
}

/** Awaits `p`, which must reject; returns the error and how long it took. */
export async function rejection(p: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
  throw new Error('expected a rejection, the operation succeeded');
}

/** Collects unhandled rejections while installed (a store must never leave one behind). */
export function watchUnhandledRejections(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => {
    seen.push(reason);
  };
  process.on('unhandledRejection', onRejection);
  return {
    seen,
    stop: () => {
      process.off('unhandledRejection', onRejection);
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
