/**
 * Coalesced directory reads on PostgreSQL: queries of the same prepared statement that wait
 * together are sent as ONE statement, each query's values an element of an array:
 *
 *   SELECT s.o, q.* FROM unnest($1::int4[], $2::<type of $1>[], …) AS s(o, p1, …)
 *     CROSS JOIN LATERAL (<the statement, $k replaced by s.pk>) AS q
 *
 * so under load one round trip (one socket write, one PostgreSQL wake-up, one executor start)
 * serves many REGISTERs' authentication lookups — the way batched location writes serve many
 * bindings. The LATERAL subquery is the statement itself, run once per element with that element's
 * values (ordering, LIMIT and OFFSET apply per query), and its rows are handed back by `o`.
 *
 * When to batch (no timers): while fewer than `maxInFlight` executions of a statement are running,
 * a query goes out at once, alone; otherwise it waits, and the queue goes out as one batch when a
 * running one finishes. An idle directory therefore answers as before; batches form under load.
 * A failed batch (a value that does not fit its column's type, say) is retried query by query, so
 * each query gets its own answer or error, exactly as without coalescing.
 */
import type { Knex } from 'knex';
import { toDirectoryError } from './errors';
import type { Execute, Statement } from './statement';

export interface CoalesceOptions {
  /** Executions of one statement running at once before queries wait and batch (default 2). */
  maxInFlight?: number;
  /** Queries per batch at most (default 256). */
  maxBatch?: number;
}

interface PgConnection {
  query(config: { name?: string; text: string; values: unknown[]; rowMode: 'array' }, callback: (err: Error | null, res: { rows: unknown[][] }) => void): void;
}

interface Waiting { values: unknown[]; resolve(rows: unknown[][]): void; reject(e: unknown): void }

interface Lane {
  running: number;
  queue: Waiting[];
  /** The batch form once known; null = this statement is not batchable (run queries alone). */
  batch: Statement | null | undefined;
  /** Types being looked up. */
  describing: Promise<void> | null;
}

/** Statement text with every `$k` outside quoted identifiers replaced by `s.pk`. */
export function lateralText(text: string, params: number): string {
  return text.replace(/"(?:[^"]|"")*"|\$(\d+)/g, (m, k: string | undefined) => {
    if (k === undefined) return m;
    const i = Number(k);
    return i >= 1 && i <= params ? `s.p${i}` : m;
  });
}

/** The batch statement of a single-query statement whose parameter types are `types`. */
export function batchStatement(st: Statement, types: readonly string[]): Statement {
  const cols = types.map((_, i) => `p${i + 1}`).join(', ');
  const arrays = types.map((t, i) => `$${i + 2}::${t}[]`).join(', ');
  const text = `SELECT s.o, q.* FROM unnest($1::int4[]${arrays ? `, ${arrays}` : ''}) AS s(o${cols ? `, ${cols}` : ''}) `
    + `CROSS JOIN LATERAL (${lateralText(st.text, types.length)}) AS q`;
  return { name: `${st.name}_b`, text, sources: [], constants: [] };
}

/** Parameter types PostgreSQL can take as array element types (a name, optional precision). */
const ARRAYABLE = /^[a-z][a-z0-9 _]*(\([0-9, ]+\))?$/;

export function coalescing(knex: Knex, single: Execute, o: CoalesceOptions = {}): Execute {
  const maxInFlight = Math.max(1, o.maxInFlight ?? 2);
  const maxBatch = Math.max(2, o.maxBatch ?? 256);
  const lanes = new Map<string, Lane>();

  /**
   * Parameter types of a statement, as PostgreSQL inferred them when preparing it: prepared and
   * looked up in `pg_prepared_statements` on one connection (with every value NULL a comparison
   * matches nothing, so preparing by executing it is harmless).
   */
  async function describe(st: Statement, lane: Lane): Promise<void> {
    const client = knex.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: unknown): Promise<void> };
    let connection: PgConnection | undefined;
    try {
      connection = await client.acquireConnection();
      const c = connection;
      const run = (config: { name?: string; text: string; values: unknown[] }) => new Promise<unknown[][]>((resolve, reject) => {
        c.query({ ...config, rowMode: 'array' }, (err, res) => (err ? reject(err) : resolve(res.rows)));
      });
      await run({ name: st.name, text: st.text, values: st.sources.map(() => null) });
      const rows = await run({ text: 'SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = $1', values: [st.name] });
      const types = rows[0]?.[0] as string[] | null | undefined;
      lane.batch = Array.isArray(types) && types.length === st.sources.length && types.every((t) => ARRAYABLE.test(t) && t !== 'unknown')
        ? batchStatement(st, types)
        : null;
    } catch (err) {
      // A server-side ERROR: this statement cannot be described (run its queries alone); a
      // connection problem: try again later.
      lane.batch = (err as { severity?: unknown } | null)?.severity === 'ERROR' ? null : undefined;
    } finally {
      if (connection) void client.releaseConnection(connection).catch(() => undefined);
      lane.describing = null;
    }
  }

  function runAlone(st: Statement, lane: Lane, w: Waiting): void {
    lane.running++;
    single(st, w.values).then(w.resolve, w.reject).finally(() => done(st, lane));
  }

  function runBatch(st: Statement, lane: Lane, batch: Statement, group: Waiting[]): void {
    lane.running++;
    const columns: unknown[][] = [group.map((_, i) => i + 1)];
    for (let k = 0; k < st.sources.length; k++) columns.push(group.map((w) => w.values[k]));
    single(batch, columns).then(
      (rows) => {
        const per: unknown[][][] = group.map(() => []);
        for (const r of rows) per[(r[0] as number) - 1]?.push(r.slice(1));
        group.forEach((w, i) => w.resolve(per[i]));
      },
      (err) => {
        // Data errors belong to one query: answer each on its own. Connection trouble is everyone's.
        const e = toDirectoryError(err) as { kind?: string };
        if (e?.kind === 'unavailable') { for (const w of group) w.reject(e); return; }
        // The batch form itself does not work here (syntax, unsupported feature): stop batching it.
        if (/^(42|0A)/.test(String((err as { code?: unknown } | null)?.code ?? ''))) lane.batch = null;
        for (const w of group) single(st, w.values).then(w.resolve, w.reject);
      },
    ).finally(() => done(st, lane));
  }

  function pump(st: Statement, lane: Lane): void {
    while (lane.queue.length > 0 && lane.running < maxInFlight) {
      if (lane.queue.length === 1 || !lane.batch) {
        runAlone(st, lane, lane.queue.shift()!);
        continue;
      }
      runBatch(st, lane, lane.batch, lane.queue.splice(0, maxBatch));
    }
  }

  function done(st: Statement, lane: Lane): void {
    lane.running--;
    pump(st, lane);
  }

  return (st, values) => new Promise<unknown[][]>((resolve, reject) => {
    let lane = lanes.get(st.name);
    if (!lane) { lane = { running: 0, queue: [], batch: undefined, describing: null }; lanes.set(st.name, lane); }
    lane.queue.push({ values, resolve, reject });
    if (lane.batch === undefined && lane.describing === null && lane.running >= maxInFlight) {
      // Worth batching: learn how, while the queue builds up.
      const l = lane;
      l.describing = describe(st, l).then(() => pump(st, l));
    }
    pump(st, lane);
  });
}
