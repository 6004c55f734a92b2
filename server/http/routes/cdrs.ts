/**
 * /api/v1/cdrs: call detail records of the `cdrs` table (services/accounting), searched by setup
 * time, number (calling or called), customer (the CD variable `customer` recorded through
 * accounting.variables), outcome or final status, record kind and Call-ID; newest first, paged.
 * /api/v1/cdrs.csv: the same search as CSV (formula cells guarded, services/accounting/csv.ts).
 */
import type { FastifyInstance } from 'fastify';
import { CDR_KINDS, CDR_OUTCOMES, SEARCH_MAX, cdrsCsv, searchCdrs, type CdrKind, type CdrOutcome, type CdrSearch } from '../../../services/accounting';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { errorResponses, pageOf } from '../schemas';

interface Query {
  from?: string;
  to?: string;
  number?: string;
  customer?: string;
  outcome?: string;
  kind?: CdrKind;
  callId?: string;
  limit?: number;
  offset?: number;
}

const text = (description: string) => ({ type: 'string', minLength: 1, maxLength: 256, description });
const searchQuery = (maxLimit: number, defaultLimit: number) => ({
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time', description: 'calls set up at or after this instant (ISO 8601 with offset)' },
    to: { type: 'string', format: 'date-time', description: 'calls set up before this instant' },
    number: text('calling or called number, exactly'),
    customer: text('the recorded CD variable `customer` (listed in accounting.variables), exactly'),
    outcome: {
      type: 'string',
      pattern: `^(${CDR_OUTCOMES.join('|')}|[1-6][0-9][0-9])$`,
      description: `${CDR_OUTCOMES.join(', ')}, or a final status code (e.g. 486)`,
    },
    kind: { type: 'string', enum: [...CDR_KINDS], description: 'record kind' },
    callId: text('Call-ID, exactly'),
    limit: { type: 'integer', minimum: 1, maximum: maxLimit, default: defaultLimit },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
  additionalProperties: false,
});

const scalar = { type: ['string', 'number', 'boolean', 'null'] };
const cdrSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    kind: { type: 'string', enum: [...CDR_KINDS] },
    callId: { type: 'string' },
    at: { type: 'string', format: 'date-time', description: 'when the record was made' },
    setupAt: { type: 'string', format: 'date-time' },
    connectAt: { type: 'string', format: 'date-time', nullable: true },
    endAt: { type: 'string', format: 'date-time', nullable: true },
    duration: { type: 'number', nullable: true, description: 'seconds from connect to end' },
    calling: { type: 'string', nullable: true },
    called: { type: 'string', nullable: true },
    source: { type: 'string', nullable: true, description: 'address:port the INVITE came from' },
    destination: { type: 'string', nullable: true, description: 'the URI that answered, or the last tried' },
    status: { type: 'integer', nullable: true },
    reason: { type: 'string', nullable: true },
    logic: { type: 'string' },
    variables: { type: 'object', additionalProperties: scalar },
    fields: { type: 'object', additionalProperties: scalar },
  },
  required: ['id', 'kind', 'callId', 'at', 'setupAt', 'logic', 'variables', 'fields'],
};

function search(q: Query, limit: number): CdrSearch {
  const time = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const ms = Date.parse(v);
    if (!Number.isFinite(ms)) throw new ApiError(400, `querystring/${name}: must be an ISO 8601 instant`);
    return ms;
  };
  const outcome = q.outcome === undefined ? undefined : /^\d+$/.test(q.outcome) ? Number(q.outcome) : (q.outcome as CdrOutcome);
  return {
    from: time(q.from, 'from'),
    to: time(q.to, 'to'),
    number: q.number,
    variables: q.customer === undefined ? undefined : { customer: q.customer },
    outcome,
    kind: q.kind,
    callId: q.callId,
    limit,
    offset: q.offset ?? 0,
  };
}

export async function cdrRoutes(app: FastifyInstance, deps: ApiDeps) {
  const T = ['accounting'];
  app.get<{ Querystring: Query }>(
    '/cdrs',
    {
      schema: {
        tags: T,
        summary: 'Search call detail records (newest setup first)',
        querystring: searchQuery(1000, 100),
        response: { 200: pageOf(cdrSchema), ...errorResponses },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const page = await searchCdrs(deps.runtime.knex, search(req.query, limit));
      return { rows: page.rows, total: page.total, limit, offset: req.query.offset ?? 0 };
    },
  );

  app.get<{ Querystring: Query }>(
    '/cdrs.csv',
    {
      schema: {
        tags: T,
        summary: "Export call detail records as CSV (same search; cells starting with = + - @ are prefixed with ')",
        querystring: searchQuery(SEARCH_MAX, 1000),
        produces: ['text/csv'],
        response: { 200: { type: 'string', description: 'CSV' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const page = await searchCdrs(deps.runtime.knex, search(req.query, req.query.limit ?? 1000));
      return reply
        .header('Content-Type', 'text/csv; charset=utf-8')
        .header('Content-Disposition', 'attachment; filename="cdrs.csv"')
        .send(cdrsCsv(page.rows, deps.config.accounting.variables));
    },
  );
}
