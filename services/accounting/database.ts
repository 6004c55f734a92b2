/**
 * The `cdrs` table of the directory database (PGlite or PostgreSQL; created by the directory
 * migration directory_002_cdrs): batched inserts (the writer's database sink) and the search of
 * GET /api/v1/cdrs.
 *
 * Columns: id, kind, call_id, at, setup_at, connect_at, end_at (timestamptz), duration (seconds,
 * double), calling, called, source, destination, status, reason, logic (text), variables and
 * fields (jsonb). Indexes: setup_at (time searches), call_id, calling, called.
 * Limits: a search returns at most SEARCH_MAX rows per page; filters are bound parameters.
 */
import type { Knex } from 'knex';
import type { Scalar } from '../../engine/types';
import type { CdrKind, CdrRecord } from './record';
import type { CdrSink } from './writer';

export const CDR_TABLE = 'cdrs';
/** Rows per page at most. */
export const SEARCH_MAX = 10000;

const toDate = (ms: number | null) => (ms === null ? null : new Date(ms));

export function cdrRow(r: CdrRecord) {
  return {
    kind: r.kind,
    call_id: r.callId,
    at: new Date(r.at),
    setup_at: new Date(r.setupAt),
    connect_at: toDate(r.connectAt),
    end_at: toDate(r.endAt),
    duration: r.duration,
    calling: r.calling,
    called: r.called,
    source: r.source,
    destination: r.destination,
    status: r.status,
    reason: r.reason,
    logic: r.logic,
    variables: JSON.stringify(r.variables),
    fields: JSON.stringify(r.fields),
  };
}

/** The writer's database sink: one multi-row INSERT per batch. */
export function databaseSink(knex: Knex): CdrSink {
  return {
    name: 'database',
    async write(batch) {
      await knex(CDR_TABLE).insert(batch.map(cdrRow));
    },
  };
}

/** How a search names the calls it wants. */
export type CdrOutcome = 'answered' | 'rejected' | 'cancelled' | 'redirected' | 'timeout' | 'failed-attempt';
export const CDR_OUTCOMES: readonly CdrOutcome[] = ['answered', 'rejected', 'cancelled', 'redirected', 'timeout', 'failed-attempt'];

export interface CdrSearch {
  /** setup_at ≥ from (ms). */
  from?: number;
  /** setup_at < to (ms). */
  to?: number;
  /** calling or called equals it. */
  number?: string;
  /** Configured CD variables that must equal these values (variables->>name). */
  variables?: Record<string, string>;
  /** An outcome name or a final status code. */
  outcome?: CdrOutcome | number;
  kind?: CdrKind;
  callId?: string;
  limit: number;
  offset: number;
}

export interface CdrJson {
  id: number;
  kind: CdrKind;
  callId: string;
  at: string;
  setupAt: string;
  connectAt: string | null;
  endAt: string | null;
  duration: number | null;
  calling: string | null;
  called: string | null;
  source: string | null;
  destination: string | null;
  status: number | null;
  reason: string | null;
  logic: string;
  variables: Record<string, Scalar>;
  fields: Record<string, Scalar>;
}

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string | Date).toISOString());
const json = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as Record<string, Scalar>) : ((v ?? {}) as Record<string, Scalar>));

function rowJson(r: Record<string, unknown>): CdrJson {
  return {
    id: Number(r.id),
    kind: r.kind as CdrKind,
    callId: r.call_id as string,
    at: iso(r.at)!,
    setupAt: iso(r.setup_at)!,
    connectAt: iso(r.connect_at),
    endAt: iso(r.end_at),
    duration: r.duration === null ? null : Number(r.duration),
    calling: (r.calling as string | null) ?? null,
    called: (r.called as string | null) ?? null,
    source: (r.source as string | null) ?? null,
    destination: (r.destination as string | null) ?? null,
    status: r.status === null ? null : Number(r.status),
    reason: (r.reason as string | null) ?? null,
    logic: r.logic as string,
    variables: json(r.variables),
    fields: json(r.fields),
  };
}

function filtered(knex: Knex, q: CdrSearch): Knex.QueryBuilder {
  const b = knex(CDR_TABLE);
  if (q.from !== undefined) b.where('setup_at', '>=', new Date(q.from));
  if (q.to !== undefined) b.where('setup_at', '<', new Date(q.to));
  if (q.number !== undefined) {
    const n = q.number;
    b.where((w) => w.where('calling', n).orWhere('called', n));
  }
  for (const [name, value] of Object.entries(q.variables ?? {})) b.whereRaw('variables->>? = ?', [name, value]);
  if (q.callId !== undefined) b.where('call_id', q.callId);
  if (q.kind !== undefined) b.where('kind', q.kind);
  const o = q.outcome;
  if (typeof o === 'number') b.where('status', o).whereNot('kind', 'recurse');
  else if (o === 'answered') b.whereNotNull('connect_at');
  else if (o === 'rejected') b.where('kind', 'reject').whereNot('status', 487);
  else if (o === 'cancelled') b.where('kind', 'reject').where('status', 487);
  else if (o === 'redirected') b.where('kind', 'redirect');
  else if (o === 'timeout') b.where('kind', 'timeout');
  else if (o === 'failed-attempt') b.where('kind', 'recurse');
  return b;
}

/** A page of records, newest setup first, and how many match. */
export async function searchCdrs(knex: Knex, q: CdrSearch): Promise<{ rows: CdrJson[]; total: number }> {
  const [rows, count] = await Promise.all([
    filtered(knex, q)
      .select('*')
      .orderBy([
        { column: 'setup_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(Math.min(q.limit, SEARCH_MAX))
      .offset(q.offset),
    filtered(knex, q).count<Array<{ n: string | number }>>({ n: '*' }),
  ]);
  return { rows: (rows as Array<Record<string, unknown>>).map(rowJson), total: Number(count[0]?.n ?? 0) };
}
