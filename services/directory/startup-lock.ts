/**
 * The start-up lock: one instance at a time through the schema work of a start (directory
 * migrations, the sample subscriber, the flows schema and the first import of the shipped flows),
 * so that instances started together on an empty database all come up, migrations run once and
 * the shipped flows are imported once (docs/operations.md, "Several instances").
 *
 * Why not knex's own lock: knex marks `knex_migrations_lock` and makes a second migrator FAIL at
 * once ("Migration table is already locked") instead of waiting; and it covers migrations only,
 * not the "is the flows store empty? then import" decision that follows them.
 *
 * Layout: a PostgreSQL session-level advisory lock (`pg_try_advisory_lock(STARTUP_LOCK)`) held on
 * one pooled connection for the duration of `fn`, which runs on the pool's other connections
 * (the pool has at least 2 on PostgreSQL). Tried every POLL_MS; the holder is named in the log
 * (pg_stat_activity: its application_name, pid, client address, since when), after WAIT_LOG_MS of
 * waiting and every WAIT_LOG_EVERY_MS after. A holder that dies releases the lock with its
 * connection, so a crashed start never blocks the next one. Inside the lock, a knex migration
 * lock left set by a start killed mid-migration is freed (nobody else can be migrating then).
 *
 * Limits: after `waitMs` without the lock, StartupLockTimeoutError names the holder (the CLI logs
 * it and exits with code 1). PGlite (the embedded directory) is one process's own database: no
 * lock is taken there.
 */
import type { Knex } from 'knex';
import type { LogPort } from '../../engine/ports';
import { isPgClient } from './knex-internals';

/** Arbitrary constant naming the advisory lock (distinct from the location schema's and the activations'). */
export const STARTUP_LOCK = 0x5f1057a7;
const POLL_MS = 100;
const WAIT_LOG_MS = 2000;
const WAIT_LOG_EVERY_MS = 15_000;

export class StartupLockTimeoutError extends Error {}

export interface StartupLockOptions {
  /** Give up after this long without the lock (ms). */
  waitMs: number;
  log?: LogPort;
}

/** Who holds the start-up lock, as pg_stat_activity knows it ("sipflow-1234-ab12cd (pid 77, 10.0.0.5) since …"). */
async function holderOf(conn: Knex.Transaction | Knex): Promise<string> {
  try {
    const res = await conn.raw<{ rows: Array<{ pid: number; application_name: string | null; client_addr: string | null; since: unknown }> }>(
      `SELECT a.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start AS since
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = ? LIMIT 1`,
      [STARTUP_LOCK],
    );
    const h = res.rows[0];
    if (!h) return 'nobody now';
    const since = h.since instanceof Date ? h.since.toISOString() : String(h.since);
    return `${h.application_name || 'a session'} (pid ${h.pid}${h.client_addr ? `, ${h.client_addr}` : ''}, connected since ${since})`;
  } catch {
    return 'a session this role cannot see';
  }
}

/**
 * Runs `fn` while holding the start-up lock of the PostgreSQL database behind `knex`; on PGlite
 * runs it at once. `what` names the work in the log lines.
 */
export async function withStartupLock<T>(knex: Knex, what: string, fn: () => Promise<T>, o: StartupLockOptions): Promise<T> {
  if (!isPgClient(knex)) return fn();
  // a transaction is the public way to keep one pooled connection; the lock itself is session-level
  // (pg_try_advisory_lock), released explicitly below or by the connection's end
  const trx = await knex.transaction();
  try {
    const started = Date.now();
    let nextLog = started + WAIT_LOG_MS;
    for (;;) {
      const res = await trx.raw<{ rows: Array<{ ok: boolean }> }>('SELECT pg_try_advisory_lock(?) AS ok', [STARTUP_LOCK]);
      if (res.rows[0].ok) break;
      const now = Date.now();
      if (now - started >= o.waitMs) {
        throw new StartupLockTimeoutError(
          `gave up waiting ${Math.round(o.waitMs / 1000)} s for the start-up lock (${what}), held by ${await holderOf(trx)}: ` +
            'another instance is migrating or hangs; stop it, or raise directory.startupLockWaitSec',
        );
      }
      if (now >= nextLog) {
        o.log?.log('warn', `waiting for the start-up lock (${what}) held by ${await holderOf(trx)}: another instance is starting`);
        nextLog = now + WAIT_LOG_EVERY_MS;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    try {
      await freeStaleMigrationLocks(knex, o.log);
      return await fn();
    } finally {
      await trx.raw('SELECT pg_advisory_unlock(?)', [STARTUP_LOCK]).catch(() => undefined);
    }
  } finally {
    await trx.rollback().catch(() => undefined);
  }
}

/**
 * knex's migration locks (`knex_migrations_lock`, and the flows store's in schema `sipflow`) left
 * set by a start killed mid-migration: freed, since under the start-up lock nobody else migrates.
 */
async function freeStaleMigrationLocks(knex: Knex, log?: LogPort): Promise<void> {
  const tables = await knex.raw<{ rows: Array<{ name: string }> }>(
    `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name FROM information_schema.tables
      WHERE table_name LIKE '%migrations_lock' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  for (const { name } of tables.rows) {
    const res = await knex.raw<{ rows: unknown[] }>(`UPDATE ${name} SET is_locked = 0 WHERE is_locked = 1 RETURNING 1`);
    if (res.rows.length > 0) log?.log('warn', `freed the migration lock ${name} left set by a start that was interrupted`);
  }
}
