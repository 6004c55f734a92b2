/**
 * SQL LocationStore on Kamailio's usrloc `location` table (schema version 9, as in Kamailio's
 * postgres/usrloc-create.sql), so Kamailio and sipflow can share it. Works through knex on
 * PostgreSQL (`pg`) and on PGlite (`knex-pglite`, the embedded default).
 *
 * Timestamps are `timestamp without time zone` as in Kamailio's schema: both sides write and read
 * them in the server's local time zone, so Kamailio and sipflow must run with the same TZ.
 */
import { createHash } from 'crypto';
import type { Knex } from 'knex';
import { pgExecute, pgliteExecute, type Execute, type Statement } from '../directory/execute';
import { isPgClient, isPgliteClient } from '../directory/knex-internals';
import { DirectoryInvalidError, DirectoryUnavailableError } from '../directory/types';
import { createBatcher } from './batcher';
import { MAX_BINDINGS_CONSIDERED } from './dedupe';
import { limitNotes, readBindings } from './tolerant';
import { LocationUnavailableError } from './types';
import { splitAor, type Binding, type LocationStore } from './types';

export interface SqlLocationOptions {
  /** Per-query timeout, so a hung server cannot hang a REGISTER (default 5000 ms). */
  queryTimeoutMs?: number;
  /**
   * Write batches (group commit) running at once, per kind (upsert, remove); default 4. While
   * that many are running, further writes queue and go out together as the next batch.
   */
  maxInFlight?: number;
  /** Rows per batched upsert at most (default 500). */
  maxBatchRows?: number;
  /** How long the first write of a quiet spell waits for others to share its statement (default 0; services/location/batcher.ts `lingerMs`). */
  commitDelayMs?: number;
  /** Receives notes about rows read: "skipped location row …: no contact" (services/location/tolerant.ts); at most 20 a minute. */
  onNote?: (message: string) => void;
}

export const LOCATION_TABLE_VERSION = 9;
export const LOCATION_ATTRS_TABLE_VERSION = 1;

const COLUMNS = [
  'ruid',
  'username',
  'domain',
  'contact',
  'received',
  'path',
  'expires',
  'q',
  'callid',
  'cseq',
  'last_modified',
  'flags',
  'cflags',
  'user_agent',
  'socket',
  'methods',
  'instance',
  'reg_id',
  'server_id',
  'connection_id',
  'keepalive',
  'partition',
] as const satisfies readonly (keyof Binding)[];

/**
 * Kamailio's DDL (version, location, location_attrs), verbatim but for IF NOT EXISTS. Raw SQL
 * rather than the knex schema builder so the result is exactly Kamailio's types, defaults and
 * index names.
 */
const DDL = [
  `CREATE TABLE IF NOT EXISTS version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name))`,
  `CREATE TABLE IF NOT EXISTS location (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid))`,
  `CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact)`,
  `CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires)`,
  `CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id)`,
  `CREATE TABLE IF NOT EXISTS location_attrs (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS location_attrs_account_record_idx ON location_attrs (username, domain, ruid)`,
  `CREATE INDEX IF NOT EXISTS location_attrs_last_modified_idx ON location_attrs (last_modified)`,
  `INSERT INTO version (table_name, table_version) VALUES ('location', ${LOCATION_TABLE_VERSION}), ('location_attrs', ${LOCATION_ATTRS_TABLE_VERSION})
    ON CONFLICT (table_name) DO NOTHING`,
];

/** Arbitrary constant naming the advisory lock that serialises concurrent first starts. */
const SCHEMA_LOCK = 0x5f10c;

/** Creates Kamailio's location tables and version rows when absent (idempotent, concurrency-safe). */
export async function ensureSchema(knex: Knex): Promise<void> {
  try {
    await knex.transaction(async (trx) => {
      // Two instances racing on CREATE TABLE IF NOT EXISTS can still collide in the catalog.
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [SCHEMA_LOCK]);
      for (const sql of DDL) await trx.raw(sql);
    });
  } catch (e) {
    unavailable('ensureSchema', e);
  }
}

// ------------------------------------------------------------------ rows

type Row = Record<string, unknown>;

/**
 * Date → `YYYY-MM-DD HH:MM:SS.mmm` in local time: what Kamailio writes into its `timestamp without
 * time zone` columns and what `pg` sends for a Date. Formatted here so every driver (pg, PGlite)
 * gets the same text, whatever its own Date handling.
 */
function sqlTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

/**
 * Rows → bindings through the tolerant reader (services/location/tolerant.ts): rows written by
 * Kamailio's db_postgres or by hand (nulls, a schema with looser columns) are read, an unreadable
 * one is skipped with a note instead of failing the AoR.
 */
function fromRows(rows: Row[], note: (message: string) => void): Binding[] {
  return readBindings(rows, 'row', note);
}

function toRow(b: Binding): Row {
  const row: Row = {};
  for (const c of COLUMNS) row[c] = b[c];
  row.expires = sqlTimestamp(b.expires);
  row.last_modified = sqlTimestamp(b.last_modified);
  return row;
}

// ------------------------------------------------------------------ errors

/**
 * Connection-level failures: the server is down, restarting or unreachable, or the query timed
 * out. Anything else (a constraint violation, bad SQL) is a bug and is rethrown as is.
 */
function isUnavailable(e: unknown): boolean {
  const err = e as { code?: string; name?: string; message?: string };
  if (e instanceof DirectoryUnavailableError) return true; // the batched upsert (pgExecute / pgliteExecute)
  if (err?.name === 'KnexTimeoutError') return true; // pool acquire or .timeout()
  const code = String(err?.code ?? '');
  // 08xxx connection exception, 57P0x admin/crash shutdown or cannot connect now, 53300 too many connections.
  if (/^(08|57P0)/.test(code) || code === '53300') return true;
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND)$/.test(code)) return true;
  return /Connection terminated|connection (was )?closed|Client was closed|not queryable|timeout/i.test(String(err?.message ?? ''));
}

function unavailable(op: string, e: unknown): never {
  if (isUnavailable(e)) {
    throw new LocationUnavailableError(`SQL location store unavailable (${op}): ${(e as Error).message}`);
  }
  throw e;
}

// ------------------------------------------------------------------ store

/**
 * A LocationStore on `knex`. Call `ensureSchema(knex)` first (or let Kamailio's own DDL create the
 * tables). Configure the knex instance with a short `acquireConnectionTimeout` (e.g. 2000 ms):
 * knex's default of 60 s is how long a REGISTER would wait when the server is down.
 */
/**
 * The registrar's statements per REGISTER, written once (the batched INSERT once per row count):
 * the location table's columns are Kamailio's fixed schema (above), only values are bound.
 * Building them with the query builder on every REGISTER cost more CPU than the rest of the save.
 */
const QUOTED = COLUMNS.map((c) => `"${c}"`).join(', ');
/**
 * An AoR's rows, the newest MAX_BINDINGS_CONSIDERED (services/location/dedupe.ts): what the
 * registrar considers of an AoR another writer filled with copies, read without the rest.
 */
const FIND_LIMIT = `ORDER BY last_modified DESC LIMIT ${MAX_BINDINGS_CONSIDERED}`;
const FIND_SQL = `SELECT ${QUOTED} FROM location WHERE username = ? AND domain IS NULL ${FIND_LIMIT}`;
const FIND_IN_DOMAIN_SQL = `SELECT ${QUOTED} FROM location WHERE username = ? AND domain = ? ${FIND_LIMIT}`;
/** Each column's type in the location table (DDL above), for its array in the batched upsert. */
const COLUMN_TYPES: Record<(typeof COLUMNS)[number], string> = {
  ruid: 'varchar',
  username: 'varchar',
  domain: 'varchar',
  contact: 'varchar',
  received: 'varchar',
  path: 'varchar',
  expires: 'timestamp',
  q: 'real',
  callid: 'varchar',
  cseq: 'integer',
  last_modified: 'timestamp',
  flags: 'integer',
  cflags: 'integer',
  user_agent: 'varchar',
  socket: 'varchar',
  methods: 'integer',
  instance: 'varchar',
  reg_id: 'integer',
  server_id: 'integer',
  connection_id: 'integer',
  keepalive: 'integer',
  partition: 'integer',
};
/**
 * The batched upsert, one text for any number of rows: each column's values bound as one array and
 * unnested. Why: the multi-row `VALUES (…), (…)` form bound 22 values a row and had a text per row
 * count, so PostgreSQL parsed and planned every batch afresh and both drivers serialised every value
 * alone. On `pg` the one text is a named statement, prepared once per connection
 * (services/directory/execute.ts): 32 → 16 µs of the client's CPU a binding in batches of 8, and a
 * third less of the server's time. PGlite plans every statement (no named statements there), and
 * planning the unnest costs more than the VALUES form's for a few rows: 560 against 370 µs for one
 * row, about even at 8 rows, 48 against 85 µs a binding at 64. So PGlite takes the VALUES form
 * (`upsertValues`) below UNNEST_FROM_ROWS rows.
 */
const ON_CONFLICT = `ON CONFLICT (ruid) DO UPDATE SET ${COLUMNS.filter((c) => c !== 'ruid')
  .map((c) => `"${c}" = EXCLUDED."${c}"`)
  .join(', ')}`;
const UPSERT_SQL = `INSERT INTO location (${QUOTED}) SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${COLUMN_TYPES[c]}[]`).join(', ')}) ${ON_CONFLICT}`;
const UPSERT: Statement = {
  name: `sipflow_loc_${createHash('sha1').update(UPSERT_SQL).digest('hex').slice(0, 24)}`,
  text: UPSERT_SQL,
  sources: COLUMNS.map((_, i) => i),
  constants: [],
};
/** PGlite: batches from this many rows take the unnest form, smaller ones the VALUES form. */
const UNNEST_FROM_ROWS = 8;
const ROW_PLACEHOLDERS = (row: number) => `(${COLUMNS.map((_, i) => `$${row * COLUMNS.length + i + 1}`).join(', ')})`;
/** Index n - 1: `INSERT … VALUES ($1, …), (…) ON CONFLICT …` for n rows (1 … UNNEST_FROM_ROWS - 1), bound row by row. */
const upsertValues: Statement[] = Array.from({ length: UNNEST_FROM_ROWS - 1 }, (_, i) => ({
  name: '',
  text: `INSERT INTO location (${QUOTED}) VALUES ${Array.from({ length: i + 1 }, (_, r) => ROW_PLACEHOLDERS(r)).join(', ')} ${ON_CONFLICT}`,
  sources: [],
  constants: [],
}));
/** Batched remove: every caller's ruids at once; RETURNING tells each caller how many of ITS ruids existed. */
const REMOVE_SQL = 'DELETE FROM location WHERE ruid = ANY(?) RETURNING ruid';
const ALL_SQL = `SELECT ${QUOTED} FROM location`;

export function createSqlLocationStore(knex: Knex, opts: SqlLocationOptions = {}): LocationStore {
  const timeout = opts.queryTimeoutMs ?? 5000;
  const onPg = isPgClient(knex);
  if (!onPg && !isPgliteClient(knex)) throw new Error('the SQL location store runs on PostgreSQL (pg) or PGlite (knex-pglite)');
  const upsertRows: Execute = onPg ? pgExecute(knex, timeout, 'location upsert') : pgliteExecute(knex, 'location upsert');
  const maxInFlight = opts.maxInFlight ?? 4;
  const maxBatchRows = Math.max(1, opts.maxBatchRows ?? 500);
  const note = limitNotes(opts.onNote);

  /** One batch's rows in one statement: the unnest form, or on PGlite the VALUES form for a few rows (UNNEST_FROM_ROWS). */
  async function upsertBatch(rows: Binding[]): Promise<void> {
    const values = rows.map((b) => {
      const row = toRow(b);
      return COLUMNS.map((c) => row[c] ?? null);
    });
    if (!onPg && rows.length < UNNEST_FROM_ROWS) await upsertRows(upsertValues[rows.length - 1], values.flat());
    else
      await upsertRows(
        UPSERT,
        COLUMNS.map((_, i) => values.map((v) => v[i])),
      );
  }

  /**
   * Group commit of upserts: one INSERT … ON CONFLICT of the batch's rows (UPSERT), in autocommit, so the
   * batch's callers resolve together after its COMMIT (durable, with synchronous_commit). Keyed by
   * ruid: the same ruid is never in two running batches, and within a batch the last call wins
   * (PostgreSQL refuses to update a row twice in one statement). Rows go in ruid order, so
   * concurrent batches lock rows in the same order.
   *
   * A batch the server cannot take rejects every caller (LocationUnavailableError). A batch it
   * refuses for a row's data (SQLSTATE 22xxx or 42xxx: a value too long for its column, a byte
   * PostgreSQL's text cannot hold) is written again row by row, so only the caller whose binding
   * was refused gets the error, not the REGISTERs that happened to share its statement. The
   * registrar measures bindings against the columns first (services/location/widths.ts); this is
   * the store's own guarantee, whoever calls it.
   */
  const upserts = createBatcher<Binding, unknown>({
    maxInFlight,
    maxBatch: maxBatchRows,
    lingerMs: opts.commitDelayMs,
    key: (b) => b.ruid,
    run: async (bindings) => {
      const last = new Map<string, Binding>();
      for (const b of bindings) last.set(b.ruid, b);
      const rows = [...last.values()].sort((a, b) => (a.ruid < b.ruid ? -1 : a.ruid > b.ruid ? 1 : 0));
      try {
        await upsertBatch(rows);
        return bindings.map(() => undefined);
      } catch (e) {
        if (!(e instanceof DirectoryInvalidError) || rows.length === 1) throw e;
      }
      const refused = new Map<string, unknown>();
      for (const row of rows) {
        try {
          await upsertBatch([row]);
        } catch (e) {
          refused.set(row.ruid, e);
        }
      }
      return bindings.map((b) => refused.get(b.ruid));
    },
  });

  /**
   * Group commit of removes: one DELETE … WHERE ruid = ANY(?) RETURNING ruid per batch. Each
   * caller counts its own ruids among those returned; a ruid named by several callers of a batch
   * counts for the first (as if their statements had run in order).
   */
  const removes = createBatcher<string[], number>({
    maxInFlight,
    maxBatch: maxBatchRows,
    lingerMs: opts.commitDelayMs,
    run: async (calls) => {
      const wanted = new Set<string>();
      for (const ruids of calls) for (const r of ruids) wanted.add(r);
      const res = await knex.raw<{ rows: { ruid: string }[] }>(REMOVE_SQL, [[...wanted]]).timeout(timeout);
      const gone = new Set(res.rows.map((r) => String(r.ruid)));
      return calls.map((ruids) => {
        let n = 0;
        for (const r of new Set(ruids)) if (gone.delete(r)) n++;
        return n;
      });
    },
  });

  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      return unavailable(op, e);
    }
  }

  return {
    find: (username, domain) =>
      run('find', async () => {
        const res = await (
          domain === null ? knex.raw<{ rows: Row[] }>(FIND_SQL, [username]) : knex.raw<{ rows: Row[] }>(FIND_IN_DOMAIN_SQL, [username, domain])
        ).timeout(timeout);
        return fromRows(res.rows, note);
      }),

    // Resolves after the COMMIT of the batch holding it, i.e. once PostgreSQL has the row durably
    // (synchronous_commit); never before, never skipped.
    upsert: (binding) =>
      run('upsert', async () => {
        const refused = await upserts.submit(binding);
        if (refused !== undefined) throw refused;
      }),

    // Counted from RETURNING: knex-pglite does not report a DELETE's row count.
    remove: (ruids) =>
      run('remove', async () => {
        if (!ruids.length) return 0;
        return removes.submit(ruids);
      }),

    list: (q) =>
      run('list', async () => {
        const filtered = () => {
          const b = knex('location');
          if (q.aor) {
            const { username, domain } = splitAor(q.aor);
            b.where({ username });
            if (domain !== null) b.andWhere((w) => w.where({ domain }).orWhereNull('domain'));
          }
          if (q.search) b.andWhereILike('username', `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
          if (!q.expired) b.andWhere('expires', '>', sqlTimestamp(q.now));
          return b;
        };
        const [{ total }] = (await filtered().count({ total: '*' }).timeout(timeout)) as Array<{ total: string | number }>;
        const rows = (await filtered()
          .select(COLUMNS)
          .orderBy([{ column: 'username' }, { column: 'ruid' }])
          .limit(q.limit)
          .offset(q.offset)
          .timeout(timeout)) as Row[];
        return { rows: fromRows(rows, note), total: Number(total) };
      }),

    count: (now) =>
      run('count', async () => {
        const [{ n }] = (await knex('location').where('expires', '>', sqlTimestamp(now)).count({ n: '*' }).timeout(timeout)) as Array<{ n: string | number }>;
        return Number(n);
      }),

    // Live means expires > now. Kamailio's permanent contacts carry the epoch and are kept, as
    // Kamailio's own timer cleanup does.
    // Counted in SQL: knex-pglite does not report a DELETE's row count.
    purgeExpired: (now) =>
      run('purgeExpired', async () => {
        const res = await knex
          .raw<{ rows: { n: string | number }[] }>(
            'WITH gone AS (DELETE FROM location WHERE expires <= ? AND expires > ? RETURNING 1) SELECT count(*) AS n FROM gone',
            [sqlTimestamp(now), sqlTimestamp(new Date(0))],
          )
          .timeout(timeout);
        return Number(res.rows[0].n);
      }),

    removeByConnection: (serverId, connectionId) =>
      run('removeByConnection', async () => {
        const res = await knex
          .raw<{ rows: { n: string | number }[] }>(
            connectionId === null
              ? 'WITH gone AS (DELETE FROM location WHERE server_id = ? AND connection_id >= 0 RETURNING 1) SELECT count(*) AS n FROM gone'
              : 'WITH gone AS (DELETE FROM location WHERE server_id = ? AND connection_id = ? RETURNING 1) SELECT count(*) AS n FROM gone',
            connectionId === null ? [serverId] : [serverId, connectionId],
          )
          .timeout(timeout);
        return Number(res.rows[0].n);
      }),

    keepalive: (serverId, now, after, limit) =>
      run('keepalive', async () => {
        const res = await knex
          .raw<{ rows: Row[] }>(`SELECT ${QUOTED} FROM location WHERE server_id = ? AND keepalive = 1 AND expires > ? AND ruid > ? ORDER BY ruid LIMIT ?`, [
            serverId,
            sqlTimestamp(now),
            after,
            limit,
          ])
          .timeout(timeout);
        return fromRows(res.rows, note);
      }),

    // A write-through cache's load: one statement, no timeout short enough to cut a large table.
    all: () =>
      run('all', async () => {
        const res = await knex.raw<{ rows: Row[] }>(ALL_SQL).timeout(Math.max(timeout, 60_000));
        return fromRows(res.rows, note);
      }),

    // The knex instance belongs to the caller (it may serve the directory too).
    close: async () => {},
  };
}
