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
 * When to batch: the group-commit policy of the shared batcher (services/location/batcher.ts), one
 * batcher per statement: queries made in the same tick, or while `maxInFlight` executions of the
 * statement are running, go out together; an idle directory sends a query alone, one microtask
 * later. A statement is described (its parameter types looked up) the first time a batch of it
 * forms; one whose types cannot be arrayed is never batched (its batches run query by query).
 * A failed batch (a value that does not fit its column's type, say) is retried query by query, so
 * each query gets its own answer or error, exactly as without coalescing; a connection failure
 * fails the whole batch.
 */
import type { Knex } from 'knex';
import { createBatcher, type Batcher } from '../location/batcher';
import { toDirectoryError } from './errors';
import type { Execute, Statement } from './execute';
import { acquire, pgQuery, release, type PgConnection } from './knex-internals';

export interface CoalesceOptions {
  /** Executions of one statement running at once before queries wait and batch (default 2). */
  maxInFlight?: number;
  /** Queries per batch at most (default 256). */
  maxBatch?: number;
}

/** One query's answer inside a batch: its rows, or its own error. */
type Outcome = { rows: unknown[][]; error?: undefined } | { rows?: undefined; error: unknown };

interface Lane {
  batcher: Batcher<unknown[], Outcome>;
  /** The batch form once known; null = this statement is not batchable (run queries alone); undefined = not described yet. */
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
  const text =
    `SELECT s.o, q.* FROM unnest($1::int4[]${arrays ? `, ${arrays}` : ''}) AS s(o${cols ? `, ${cols}` : ''}) ` +
    `CROSS JOIN LATERAL (${lateralText(st.text, types.length)}) AS q`;
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
    let connection: PgConnection | undefined;
    try {
      connection = await acquire<PgConnection>(knex);
      const c = connection;
      const run = (name: string | undefined, text: string, values: unknown[]) =>
        new Promise<unknown[][]>((resolve, reject) => {
          pgQuery(c, name, text, values, (err, rows) => (err ? reject(err) : resolve(rows!)));
        });
      await run(
        st.name,
        st.text,
        st.sources.map(() => null),
      );
      const rows = await run(undefined, 'SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = $1', [st.name]);
      const types = rows[0]?.[0] as string[] | null | undefined;
      lane.batch =
        Array.isArray(types) && types.length === st.sources.length && types.every((t) => ARRAYABLE.test(t) && t !== 'unknown')
          ? batchStatement(st, types)
          : null;
    } catch (err) {
      // A server-side ERROR: this statement cannot be described (run its queries alone); a
      // connection problem: try again later.
      lane.batch = (err as { severity?: unknown } | null)?.severity === 'ERROR' ? null : undefined;
    } finally {
      if (connection) release(knex, connection);
      lane.describing = null;
    }
  }

  const alone = (st: Statement, values: unknown[]): Promise<Outcome> =>
    single(st, values).then(
      (rows) => ({ rows }),
      (error: unknown) => ({ error }),
    );

  /** One batch of a statement's queries (each an array of bindings): one outcome per query. */
  async function runLane(st: Statement, lane: Lane, group: unknown[][]): Promise<Outcome[]> {
    if (group.length === 1) return [await alone(st, group[0])];
    if (lane.batch === undefined) {
      // Worth batching: learn how (once; a connection problem leaves it to a later batch).
      lane.describing ??= describe(st, lane);
      await lane.describing;
    }
    const batch = lane.batch;
    if (!batch) return Promise.all(group.map((values) => alone(st, values)));
    const columns: unknown[][] = [group.map((_, i) => i + 1)];
    for (let k = 0; k < st.sources.length; k++) columns.push(group.map((values) => values[k]));
    let rows: unknown[][];
    try {
      rows = await single(batch, columns);
    } catch (err) {
      // Connection trouble is everyone's: the batcher rejects every query of the batch.
      const e = toDirectoryError(err) as { kind?: string };
      if (e?.kind === 'unavailable') throw e;
      // The batch form itself does not work here (syntax, unsupported feature): stop batching it.
      if (/^(42|0A)/.test(String((err as { code?: unknown } | null)?.code ?? ''))) lane.batch = null;
      // Data errors belong to one query: answer each on its own.
      return Promise.all(group.map((values) => alone(st, values)));
    }
    const per: unknown[][][] = group.map(() => []);
    for (const r of rows) per[(r[0] as number) - 1]?.push(r.slice(1));
    return per.map((r) => ({ rows: r }));
  }

  function laneOf(st: Statement): Lane {
    let lane = lanes.get(st.name);
    if (lane === undefined) {
      const l: Lane = {
        batch: undefined,
        describing: null,
        batcher: createBatcher<unknown[], Outcome>({ maxInFlight, maxBatch, run: (group) => runLane(st, l, group) }),
      };
      lanes.set(st.name, l);
      lane = l;
    }
    return lane;
  }

  return (st, values) =>
    laneOf(st)
      .batcher.submit(values)
      .then((o) => {
        if (o.rows === undefined) throw o.error;
        return o.rows;
      });
}
