/**
 * /api/v1/calls: the call history (services/history) the SIP threads record — the list with its
 * filters (Call-ID, number, AoR, start time, outcome; newest first), one call with every SIP
 * message in and out and every logic run with its path (the designer's Calls view draws the
 * ladder from it), and the debug filter that records the calls of some numbers or AoRs whatever
 * history.mode says, switched at run time on every SIP thread (until a restart).
 * Everything here is redacted already (the recorder does it before a record leaves its thread).
 */
import type { FastifyInstance } from 'fastify';
import { CALL_OUTCOMES, LIST_MAX, type CallFilter, type CallOutcome } from '../../../services/history';
import { hasControlChar } from '../../../engine/values';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { errorResponses, traceSchema } from '../schemas';

interface ListQuery {
  callId?: string;
  number?: string;
  aor?: string;
  from?: string;
  to?: string;
  outcome?: CallOutcome;
  limit?: number;
}

/** The debug filter's bounds. */
export const DEBUG_NUMBERS_MAX = 100;
export const DEBUG_NUMBER_MAX_CHARS = 128;

const text = (description: string) => ({ type: 'string', minLength: 1, maxLength: 256, description });
const nullable = (type: string, description?: string) => ({ type, nullable: true, ...(description ? { description } : {}) });

const listQuery = {
  type: 'object',
  properties: {
    callId: text('Call-ID, exactly'),
    number: text('calling or called number, exactly'),
    aor: text('address of record user@domain (a REGISTER’s To, else the From), exactly'),
    from: { type: 'string', format: 'date-time', description: 'calls started at or after this instant (ISO 8601 with offset)' },
    to: { type: 'string', format: 'date-time', description: 'calls started before this instant' },
    outcome: { type: 'string', enum: [...CALL_OUTCOMES], description: 'how the call ended' },
    limit: { type: 'integer', minimum: 1, maximum: LIST_MAX, default: 100 },
  },
  additionalProperties: false,
};

const summaryProperties = {
  callId: { type: 'string' },
  startedAt: { type: 'string', format: 'date-time', description: 'first message' },
  endedAt: { type: 'string', format: 'date-time', description: 'last message' },
  method: { type: 'string', description: "the first request's method" },
  calling: nullable('string', 'CD `calling` of the first run'),
  called: nullable('string', 'CD `called` of the first run'),
  aor: nullable('string', "user@domain of a REGISTER's To, else of the From"),
  source: { type: 'string', description: "address:port of the first request's sender" },
  outcome: { type: 'string', enum: [...CALL_OUTCOMES], description: 'success (2xx), redirect (3xx), challenged (stopped at a 401/407), failed (any other)' },
  status: nullable('integer', "final status of the last transaction of the first request's method"),
  logic: nullable('string', 'the logic of the first run'),
  messageCount: { type: 'integer' },
  runCount: { type: 'integer' },
};
const summaryRequired = Object.keys(summaryProperties);
const callSummarySchema = { type: 'object', properties: summaryProperties, required: summaryRequired };

const messageSchema = {
  type: 'object',
  properties: {
    at: { type: 'number', description: 'ms since the epoch' },
    direction: { type: 'string', enum: ['in', 'out'] },
    transport: { type: 'string' },
    src: { type: 'string', description: 'address:port of the sender' },
    dst: { type: 'string', description: 'address:port of the receiver' },
    method: { type: 'string', description: "the request's method, or a response's CSeq method" },
    status: nullable('integer'),
    firstLine: { type: 'string' },
    text: { type: 'string', description: 'the whole message, digest responses redacted, cut at history.maxMessageBytes' },
    truncated: { type: 'boolean' },
  },
  required: ['at', 'direction', 'transport', 'src', 'dst', 'method', 'status', 'firstLine', 'text'],
};

const runSchema = {
  type: 'object',
  properties: {
    at: { type: 'number' },
    durationMs: { type: 'number' },
    method: { type: 'string' },
    logicId: { type: 'string' },
    logic: { type: 'string' },
    flow: nullable('string', 'the flow the logic came from'),
    input: { type: 'object', additionalProperties: true, description: 'the call descriptor’s variables before the run (secrets redacted)' },
    path: traceSchema,
    outcome: { type: 'string' },
    status: nullable('integer'),
    where: nullable('string'),
  },
  required: ['at', 'durationMs', 'method', 'logicId', 'logic', 'flow', 'input', 'path', 'outcome', 'status', 'where'],
};

const callDetailSchema = {
  type: 'object',
  properties: {
    ...summaryProperties,
    messages: { type: 'array', items: messageSchema },
    runs: { type: 'array', items: runSchema },
    droppedMessages: { type: 'integer', description: 'messages seen but not kept (history.maxMessagesPerCall)' },
  },
  required: [...summaryRequired, 'messages', 'runs', 'droppedMessages'],
};

const debugFilterSchema = {
  type: 'object',
  properties: {
    numbers: {
      type: 'array',
      maxItems: DEBUG_NUMBERS_MAX,
      items: { type: 'string', minLength: 1, maxLength: DEBUG_NUMBER_MAX_CHARS },
      description: 'numbers (calling, called, From / To / Request-URI user) or AoRs user@domain whose calls are recorded whatever history.mode; [] = off',
    },
  },
  required: ['numbers'],
  additionalProperties: false,
};

function filterOf(q: ListQuery): CallFilter {
  const time = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const ms = Date.parse(v);
    if (!Number.isFinite(ms)) throw new ApiError(400, `querystring/${name}: must be an ISO 8601 instant`);
    return ms;
  };
  return { callId: q.callId, number: q.number, aor: q.aor, from: time(q.from, 'from'), to: time(q.to, 'to'), outcome: q.outcome, limit: q.limit ?? 100 };
}

export async function callRoutes(app: FastifyInstance, deps: ApiDeps) {
  const T = ['history'];
  const { store, debug } = deps.history;

  app.get<{ Querystring: ListQuery }>(
    '/calls',
    {
      schema: {
        tags: T,
        summary: 'Recorded calls, newest first (history.mode, or the debug filter, says which are recorded)',
        querystring: listQuery,
        response: { 200: { type: 'object', properties: { calls: { type: 'array', items: callSummarySchema } }, required: ['calls'] }, ...errorResponses },
      },
    },
    async (req) => ({ calls: await store.list(filterOf(req.query)) }),
  );

  app.get(
    '/calls/debug-filter',
    {
      schema: {
        tags: T,
        summary: 'The debug filter: numbers and AoRs recorded whatever history.mode',
        response: { 200: debugFilterSchema, ...errorResponses },
      },
    },
    async () => ({ numbers: [...debug.numbers] }),
  );

  app.put<{ Body: { numbers: string[] } }>(
    '/calls/debug-filter',
    {
      schema: {
        tags: T,
        summary: 'Replace the debug filter on every SIP thread (until a restart; history.debugNumbers is the start value)',
        body: debugFilterSchema,
        response: { 200: debugFilterSchema, ...errorResponses },
      },
    },
    async (req) => {
      req.body.numbers.forEach((n, i) => {
        if (hasControlChar(n) || n.trim() !== n) throw new ApiError(400, `body/numbers/${i}: must have no control character and no surrounding space`);
      });
      debug.set(req.body.numbers);
      req.log.info({ numbers: debug.numbers }, 'call history debug filter set');
      return { numbers: [...debug.numbers] };
    },
  );

  app.get<{ Params: { callId: string } }>(
    '/calls/:callId',
    {
      schema: {
        tags: T,
        summary: 'One call: every SIP message in and out and every logic run with its path, in time order',
        params: {
          type: 'object',
          properties: { callId: { type: 'string', minLength: 1, maxLength: 1024, description: 'the Call-ID, URL-encoded' } },
          required: ['callId'],
        },
        response: { 200: callDetailSchema, ...errorResponses },
      },
    },
    async (req) => {
      const call = await store.get(req.params.callId);
      if (call === null) throw new ApiError(404, `no recorded call with Call-ID ${JSON.stringify(req.params.callId)}`);
      return call;
    },
  );
}
