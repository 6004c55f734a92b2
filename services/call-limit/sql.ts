/**
 * Call limits shared by every instance on one PostgreSQL database (`callLimit.store: database`
 * with a PostgreSQL location or directory; PGlite works the same for one process).
 *
 * Layout: `sipflow_call_slots (key, holder, expires)`, one row per slot held (expires: ms since
 * the epoch, of the acquiring instance's clock), and `sipflow_call_rates (key, starts)`, the start
 * times in the key's rate window (services/call-limit/window.ts). Same contract as the memory
 * limiter (services/call-limit/memory.ts): a holder takes at most one slot per key.
 *
 * Atomicity per key: an acquire is one transaction that first takes the transaction-scoped
 * advisory lock of the key (pg_advisory_xact_lock(namespace, hashtext(key))), then reads the
 * key's live slots, the holder's own slot and the window, then writes; so racing acquires of one
 * key — from any instance — are serialised and never admit past the limit. Keys whose hashes
 * collide only share the lock, never a count. Release is one DELETE of the holder's rows.
 *
 * Trade-off: five round trips per initial INVITE under the limit (BEGIN, lock, read, write,
 * COMMIT) and calls of one key serialised on the database; against the per-instance table, the
 * limit holds whichever instance takes the call. Database down or slower than `timeoutMs`: the
 * acquire rejects with a ServiceUnavailableError and the node takes `ifRejected` with status
 * `unavailable` (fail closed: a logic answers 503, or admits the call on that status if it
 * prefers availability). Instances' clocks must agree (NTP): expiries and windows are compared
 * across them. Rows of slots that expire are deleted by the next acquire of their key; a key's
 * row of `sipflow_call_rates` stays (one small row per key ever rated).
 */
import knexFactory, { type Knex } from 'knex';
import { ServiceUnavailableError, type CallLimitPort, type CallLimitRule, type CallLimitVerdict } from '../../engine/ports';
import type { CallLimiterOptions } from './memory';
import { inWindow, rateWindow } from './window';

/** First half of the advisory lock id: call limits' own namespace (ASCII "CL"). */
const LOCK_NAMESPACE = 0x434c;

export const SLOTS_TABLE = 'sipflow_call_slots';
export const RATES_TABLE = 'sipflow_call_rates';

/** A knex of its own on a PostgreSQL URL: a short pool wait and statement timeout bound what an INVITE waits. */
export function openCallLimitDatabase(url: string, timeoutMs = 2000, poolMax = 10): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, statement_timeout: timeoutMs, query_timeout: timeoutMs + 500 } as Knex.PgConnectionConfig,
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: timeoutMs,
  });
}

/** Creates the tables when absent; instances starting together take turns (CREATE TABLE IF NOT EXISTS can still collide in the catalog). */
export async function ensureCallLimitSchema(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?, 0)', [LOCK_NAMESPACE]);
    await trx.raw(
      `create table if not exists ${SLOTS_TABLE} (key text not null, holder text not null, expires double precision not null, primary key (key, holder))`,
    );
    await trx.raw(`create table if not exists ${RATES_TABLE} (key text primary key, starts double precision[] not null)`);
  });
}

export function createSqlCallLimiter(knex: Knex, o: CallLimiterOptions = {}): CallLimitPort {
  const slotMs = (o.slotTimeoutSec ?? 10_800) * 1000;
  const unavailable = (e: unknown): never => {
    throw e instanceof ServiceUnavailableError ? e : new ServiceUnavailableError(`call limit database: ${(e as Error)?.message ?? String(e)}`);
  };
  return {
    async acquire(holder: string, key: string, rule: CallLimitRule, nowMs: number): Promise<CallLimitVerdict> {
      return knex
        .transaction(async (trx) => {
          await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [LOCK_NAMESPACE, key]);
          const read = await trx.raw(
            `select (select count(*)::int from ${SLOTS_TABLE} where key = ? and expires > ? and holder <> ?) as n,
                    (select expires > ? from ${SLOTS_TABLE} where key = ? and holder = ?) as mine,
                    (select starts from ${RATES_TABLE} where key = ?) as starts`,
            [key, nowMs, holder, nowMs, key, holder, key],
          );
          const row = read.rows[0] as { n: number; mine: boolean | null; starts: number[] | null };
          if (row.mine === true) return 'allowed';
          if (rule.maxConcurrent !== undefined && row.n >= rule.maxConcurrent) return 'concurrent';
          let starts: number[] | null = null;
          if (rule.maxPerSecond !== undefined) {
            const w = rateWindow(rule.maxPerSecond);
            starts = inWindow(row.starts ?? [], w, nowMs);
            if (starts.length >= w.count) return 'rate';
            starts = [...starts, nowMs];
          }
          // one statement: expired slots of the key dropped (the holder's own expired row is
          // replaced), the slot taken, the window stored when the rule has a rate
          await trx.raw(
            `with gone as (delete from ${SLOTS_TABLE} where key = ? and expires <= ? and holder <> ?),
                  rated as (insert into ${RATES_TABLE} (key, starts) select ?, ?::double precision[] where ?
                            on conflict (key) do update set starts = excluded.starts)
             insert into ${SLOTS_TABLE} (key, holder, expires) values (?, ?, ?)
             on conflict (key, holder) do update set expires = excluded.expires`,
            [key, nowMs, holder, key, starts ?? [], starts !== null, key, holder, nowMs + slotMs],
          );
          return 'allowed' as const;
        })
        .catch(unavailable);
    },
    async release(holder, keys) {
      if (keys.length === 0) return;
      await knex.raw(`delete from ${SLOTS_TABLE} where holder = ? and key = any(?)`, [holder, [...keys]]).catch(unavailable);
    },
  };
}
