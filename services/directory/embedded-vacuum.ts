/**
 * Autovacuum for the embedded database (PGlite), which has none of its own.
 *
 * Why: PGlite runs PostgreSQL in one process with no background workers (`max_worker_processes` 0),
 * so the autovacuum launcher never runs although `autovacuum` reads `on`. Every UPDATE or DELETE
 * leaves a dead row version that only VACUUM removes, and every write takes a transaction id that
 * only VACUUM freezes. On the embedded default every REGISTER refresh rewrites its binding
 * (services/location/sql.ts): 1,000 bindings refreshed 40 times left 38,289 dead rows and the
 * table and its indexes at 3.0 MB, growing linearly, against 0.5 MB alive (2026-12-05). Left
 * alone, the data dir and PGlite's memory grow with every refresh, index scans wade through dead
 * entries, and after 2^31 transactions PostgreSQL stops taking writes.
 *
 * What: a pass (every `intervalMs`, default 60 s) reads `pg_stat_user_tables` and applies
 * autovacuum's own rules, with PostgreSQL's default settings, to every table:
 *   - VACUUM when its dead rows exceed 50 + 20 % of its live ones (autovacuum_vacuum_threshold,
 *     _scale_factor), or when its oldest unfrozen transaction id is older than
 *     `vacuum_freeze_table_age` (VACUUM is then aggressive and freezes);
 *   - ANALYZE when rows changed since the last one exceed 50 + 10 % (autovacuum_analyze_*): the
 *     planner's statistics, which autovacuum also keeps;
 *   - a database-wide VACUUM when the database's own oldest transaction id is older than
 *     `autovacuum_freeze_max_age`, the catalogs included, so `datfrozenxid` advances.
 * It warns when the oldest database of the cluster (template0 and template1 too, which a single
 * connection cannot vacuum) nears the stop: see `WRAP_WARN_AGE`.
 *
 * Concurrency: PGlite has one connection, so a VACUUM holds every other statement (directory reads
 * the cache misses, location writes) for its duration: for 10,000 bindings 57 ms with 80,000 dead
 * rows, 101 ms with 470,000 (a minute of 8,000 refreshes a second); 260 ms for 100,000 bindings with
 * 200,000 dead (PGlite on disk, this machine, docs/operations.md). Tables
 * are vacuumed one at a time, each statement queued like any other, and a pass never overlaps the
 * next. A failing statement is logged and the pass goes on; the next pass retries.
 *
 * Limits: at a million rows a VACUUM takes seconds, during which SIP requests that need the
 * database wait (UAs retransmit); an operator at that size runs PostgreSQL (docs/operations.md).
 */
import type { Knex } from 'knex';
import type { LogPort } from '../../engine/ports';

/** PostgreSQL's autovacuum defaults (postgresql.conf): thresholds in rows, scale factors of the live rows. */
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE = 0.2;
const ANALYZE_THRESHOLD = 50;
const ANALYZE_SCALE = 0.1;
/**
 * Oldest transaction id age at which every pass warns: PostgreSQL stops assigning ids 3 million
 * before 2^31 (and warns from 40 million before); template0 and template1 age with every write
 * although nothing in them changes.
 */
const WRAP_WARN_AGE = 1_500_000_000;

export interface VacuumAction {
  table: string;
  /** `vacuum` (dead rows or freezing), `analyze` (statistics), or both in one statement. */
  what: 'vacuum' | 'analyze' | 'vacuum analyze';
  deadRows: number;
  ms: number;
}

export interface VacuumPass {
  actions: VacuumAction[];
  /** A database-wide VACUUM ran (the database's transaction ids were older than autovacuum_freeze_max_age). */
  database: boolean;
  /** Age of the cluster's oldest `datfrozenxid`, in transactions. */
  oldestXidAge: number;
}

export interface EmbeddedVacuum {
  /** One pass now (after the one running, if any). */
  runOnce(): Promise<VacuumPass>;
  /** Stops the timer and waits for a running pass. */
  stop(): Promise<void>;
}

interface TableStats {
  schemaname: string;
  relname: string;
  n_live_tup: string | number;
  n_dead_tup: string | number;
  n_mod_since_analyze: string | number;
  xid_age: string | number | null;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

export function startEmbeddedVacuum(knex: Knex, o: { intervalMs: number; log?: LogPort }): EmbeddedVacuum {
  let running: Promise<VacuumPass> | null = null;

  async function pass(): Promise<VacuumPass> {
    // The connection's row counts reach pg_stat_user_tables at most once a second, when idle:
    // flushed now, so the pass judges the writes made until now.
    await knex.raw('SELECT pg_stat_force_next_flush()');
    const settings = (
      await knex.raw<{ rows: { freeze_table: string; freeze_max: string; db_age: string; oldest_age: string }[] }>(
        `SELECT current_setting('vacuum_freeze_table_age') AS freeze_table, current_setting('autovacuum_freeze_max_age') AS freeze_max,
                (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()) AS db_age,
                (SELECT max(age(datfrozenxid)) FROM pg_database) AS oldest_age`,
      )
    ).rows[0];
    const freezeTableAge = Number(settings.freeze_table);
    const tables = (
      await knex.raw<{ rows: TableStats[] }>(
        `SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, age(c.relfrozenxid) AS xid_age
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid ORDER BY s.n_dead_tup DESC`,
      )
    ).rows;
    const actions: VacuumAction[] = [];
    for (const t of tables) {
      const live = Number(t.n_live_tup);
      const dead = Number(t.n_dead_tup);
      const vacuum = dead > VACUUM_THRESHOLD + VACUUM_SCALE * live || Number(t.xid_age ?? 0) > freezeTableAge;
      const analyze = Number(t.n_mod_since_analyze) > ANALYZE_THRESHOLD + ANALYZE_SCALE * live;
      if (!vacuum && !analyze) continue;
      const what: VacuumAction['what'] = vacuum && analyze ? 'vacuum analyze' : vacuum ? 'vacuum' : 'analyze';
      const table = `${quoteIdent(t.schemaname)}.${quoteIdent(t.relname)}`;
      const started = Date.now();
      try {
        await knex.raw(what === 'vacuum analyze' ? `VACUUM (ANALYZE) ${table}` : `${what.toUpperCase()} ${table}`);
      } catch (e) {
        o.log?.log('warn', `embedded database: ${what} of ${t.schemaname}.${t.relname} failed: ${(e as Error).message}`);
        continue;
      }
      const ms = Date.now() - started;
      actions.push({ table: `${t.schemaname}.${t.relname}`, what, deadRows: dead, ms });
      o.log?.log('debug', `embedded database: ${what} ${t.schemaname}.${t.relname}`, { deadRows: dead, liveRows: live, ms });
    }
    let database = false;
    if (Number(settings.db_age) > Number(settings.freeze_max)) {
      const started = Date.now();
      await knex.raw('VACUUM');
      database = true;
      o.log?.log('info', 'embedded database: database-wide VACUUM (transaction ids older than autovacuum_freeze_max_age)', { ms: Date.now() - started });
    }
    const oldestXidAge = Number(settings.oldest_age);
    if (oldestXidAge > WRAP_WARN_AGE) {
      o.log?.log(
        'warn',
        `embedded database: its oldest transaction id is ${oldestXidAge} transactions old; PostgreSQL stops writing at about 2,144 million. Move the directory and the location to PostgreSQL (docs/operations.md)`,
      );
    }
    return { actions, database, oldestXidAge };
  }

  function runOnce(): Promise<VacuumPass> {
    const next = (running ?? Promise.resolve()).catch(() => undefined).then(pass);
    running = next;
    void next
      .catch(() => undefined)
      .finally(() => {
        if (running === next) running = null;
      });
    return next;
  }

  const timer = setInterval(() => {
    if (running) return; // a slow pass must not pile up behind itself
    runOnce().catch((e) => o.log?.log('warn', `embedded database: vacuum pass failed: ${(e as Error).message}`));
  }, o.intervalMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
