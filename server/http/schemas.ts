/**
 * JSON Schemas of the HTTP API: request validation (ajv, through fastify), response serialization
 * and the OpenAPI document all come from these.
 */
import { FLOW_NAME_PATTERN } from '../flows';

type S = Record<string, unknown>;

export const errorSchema: S = {
  type: 'object',
  description: 'An error. `message` names the field or the location of every problem.',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    problems: { type: 'array', items: { $ref: 'problem#' } },
    errors: { type: 'array', items: { $ref: 'importError#' } },
    failed: { type: 'object', additionalProperties: { type: 'string' } },
    revision: { type: 'string', description: 'a stale save (409): the revision stored now' },
  },
  required: ['statusCode', 'error', 'message'],
};

/** Shared response entries for errors, added to every route. */
export const errorResponses: S = { '4xx': errorSchema, '5xx': errorSchema };

export const problemSchema: S = {
  $id: 'problem',
  type: 'object',
  description: 'A validation problem of a .slid, located down to the node and the field.',
  properties: {
    severity: { type: 'string', enum: ['error', 'warning'] },
    file: { type: 'string' },
    logicId: { type: 'string' },
    logicName: { type: 'string' },
    nodeId: { type: 'string' },
    nodeName: { type: 'string' },
    pointer: { type: 'string', description: 'JSON pointer inside the node (`values/conditions/1/operator`)' },
    message: { type: 'string' },
    text: { type: 'string', description: '`file › logic 24 "registration" › node 3 "check authUsername" › values/…: message`' },
  },
  required: ['severity', 'file', 'message', 'text'],
};

export const importErrorSchema: S = {
  $id: 'importError',
  type: 'object',
  properties: {
    file: { type: 'string', enum: ['customers', 'numbers'] },
    row: { type: 'integer', description: '1-based data row (the header is not counted); 0 = the CSV itself' },
    column: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['file', 'row', 'column', 'message'],
};

export const slidSchema: S = {
  type: 'object',
  description: 'A .slid document: service-logic id → { name, description, nodes }',
  additionalProperties: true,
};

/** Bodies of the routes that take a .slid as raw text (JSON content type), kept byte for byte. */
export const slidTextBody: S = {
  type: 'string',
  minLength: 1,
  description: 'The .slid document, sent as the request body (Content-Type application/json, text/plain or application/octet-stream). Stored exactly as sent.',
};

export const flowNameParam: S = {
  type: 'object',
  properties: { name: { type: 'string', pattern: FLOW_NAME_PATTERN, description: 'flow name' } },
  required: ['name'],
  additionalProperties: false,
};

/** Optional `?force=true` (delete of an active flow; activation despite failing test cases). */
export const forceQuery: S = {
  type: 'object',
  properties: { force: { type: 'boolean', default: false } },
  additionalProperties: false,
};

export const releaseSchema: S = {
  type: 'object',
  properties: { version: { type: 'integer' }, createdAt: { type: 'string', format: 'date-time' }, note: { type: ['string', 'null'] } },
  required: ['version', 'createdAt', 'note'],
};

const logicInfo: S = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } }, required: ['id', 'name'] };

export const flowSummarySchema: S = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    updatedAt: { type: 'string', format: 'date-time' },
    logics: { type: 'array', items: logicInfo },
    latestVersion: { type: ['integer', 'null'] },
    activeVersion: { type: ['integer', 'null'] },
  },
  required: ['name', 'updatedAt', 'logics', 'latestVersion', 'activeVersion'],
};

export const flowDetailSchema: S = {
  type: 'object',
  properties: {
    ...(flowSummarySchema.properties as S),
    development: slidSchema,
    revision: { type: 'string', description: 'revision of the development copy (also the ETag header): send it as If-Match when saving' },
    problems: { type: 'array', items: { $ref: 'problem#' }, description: 'warnings of the development copy' },
    releases: { type: 'array', items: releaseSchema },
    active: {
      type: ['object', 'null'],
      properties: { version: { type: 'integer' }, activatedAt: { type: 'string', format: 'date-time' } },
    },
  },
  required: ['name', 'development', 'revision', 'releases', 'active', 'problems'],
};

export const validationResultSchema: S = {
  type: 'object',
  properties: {
    valid: { type: 'boolean', description: 'true when there is no error (warnings allowed)' },
    errors: { type: 'integer' },
    warnings: { type: 'integer' },
    problems: { type: 'array', items: { $ref: 'problem#' } },
  },
  required: ['valid', 'errors', 'warnings', 'problems'],
};

export const saveResultSchema: S = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    created: { type: 'boolean' },
    revision: { type: 'string', description: 'the revision now stored (also the ETag header)' },
    problems: { type: 'array', items: { $ref: 'problem#' }, description: 'warnings (a .slid with errors is refused)' },
  },
  required: ['name', 'created', 'revision', 'problems'],
};

// ---------------------------------------------------------------- engine

export const cdInputSchema: S = {
  type: 'object',
  description:
    'Call descriptor as the SIP front end fills it: variables (SRE names; aliases such as method/requestUri accepted) plus `headers` (header name → value or list of values, in message order) and optional `body`.',
  properties: {
    headers: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } },
    body: { type: 'string' },
  },
  additionalProperties: {
    anyOf: [
      { type: ['string', 'number', 'boolean', 'null'] },
      { type: 'array', items: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } } },
    ],
  },
};

export const cdOutputSchema: S = {
  type: 'object',
  description: 'The call descriptor after the run: every variable, plus `headers`.',
  additionalProperties: true,
};

export const outcomeSchema: S = {
  type: 'object',
  description: 'What the front end must do: challenge, register, relay, reply, redirect, exit (default route) or error. See docs/api.md.',
  properties: {
    kind: { type: 'string', enum: ['challenge', 'register', 'relay', 'reply', 'redirect', 'exit', 'error'] },
    status: { type: ['integer', 'null'] },
  },
  required: ['kind', 'status'],
  additionalProperties: true,
};

export const traceSchema: S = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      step: { type: 'integer' },
      logic: { type: 'string' },
      nodeId: { type: 'string' },
      nodeName: { type: 'string' },
      type: { type: 'string' },
      exit: { type: 'string' },
      set: { type: 'object', additionalProperties: true },
    },
    required: ['step', 'logic', 'nodeId', 'nodeName', 'type', 'exit'],
  },
};

export const logicRefSchema: S = {
  type: 'object',
  properties: {
    flow: { type: ['string', 'null'] },
    version: { anyOf: [{ type: 'integer' }, { type: 'string' }, { type: 'null' }] },
    id: { type: 'string' },
    name: { type: 'string' },
  },
};

// ---------------------------------------------------------------- directory

export const customerSchema: S = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    username: { type: ['string', 'null'] },
    aor: { type: ['string', 'null'] },
    hasPassword: { type: 'boolean' },
    password: { type: ['string', 'null'], description: 'only with ?includePasswords=true' },
  },
  required: ['id', 'name', 'username', 'aor', 'hasPassword'],
};

export const numberSchema: S = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    number: { type: 'string' },
    is_range: { type: 'boolean' },
    customer_id: { type: 'integer' },
    customer_name: { type: 'string' },
  },
  required: ['id', 'number', 'is_range', 'customer_id', 'customer_name'],
};

export const pageOf = (item: S): S => ({
  type: 'object',
  properties: { rows: { type: 'array', items: item }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
  required: ['rows', 'total', 'limit', 'offset'],
});

export const pagingQuery = (extra: S = {}): S => ({
  type: 'object',
  properties: {
    search: { type: 'string', maxLength: 200, description: 'case-insensitive substring' },
    limit: { type: 'integer', minimum: 0, maximum: 1000, default: 50 },
    offset: { type: 'integer', minimum: 0, default: 0 },
    ...extra,
  },
  additionalProperties: false,
});

export const idParam: S = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1 } },
  required: ['id'],
  additionalProperties: false,
};

const nullableText = { type: ['string', 'null'], maxLength: 1024 };

export const newCustomerBody: S = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, username: nullableText, password: nullableText, aor: nullableText },
  required: ['name'],
  additionalProperties: false,
};
export const customerPatchBody: S = { ...newCustomerBody, required: [], minProperties: 1 };

const customerRef = {
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', minLength: 1 },
  ],
  description: 'customer id or name',
};
export const newNumberBody: S = {
  type: 'object',
  properties: {
    number: { type: 'string', minLength: 1, maxLength: 64, pattern: '^\\S+$' },
    is_range: { type: 'boolean', default: false },
    customer: customerRef,
  },
  required: ['number', 'customer'],
  additionalProperties: false,
};
export const numberPatchBody: S = {
  type: 'object',
  properties: { number: { type: 'string', minLength: 1, maxLength: 64, pattern: '^\\S+$' }, is_range: { type: 'boolean' }, customer: customerRef },
  minProperties: 1,
  additionalProperties: false,
};

// ---------------------------------------------------------------- location

export const bindingSchema: S = {
  type: 'object',
  description: 'A binding, field for field Kamailio usrloc schema v9, plus `aor` and `expiresIn` (seconds left).',
  properties: {
    ruid: { type: 'string' },
    aor: { type: 'string' },
    username: { type: 'string' },
    domain: { type: ['string', 'null'] },
    contact: { type: 'string' },
    received: { type: ['string', 'null'] },
    path: { type: ['string', 'null'] },
    expires: { type: 'string', format: 'date-time' },
    expiresIn: { type: 'integer' },
    q: { type: 'number' },
    callid: { type: 'string' },
    cseq: { type: 'integer' },
    last_modified: { type: 'string', format: 'date-time' },
    flags: { type: 'integer' },
    cflags: { type: 'integer' },
    user_agent: { type: 'string' },
    socket: { type: ['string', 'null'] },
    methods: { type: ['integer', 'null'] },
    instance: { type: ['string', 'null'] },
    reg_id: { type: 'integer' },
    server_id: { type: 'integer' },
    connection_id: { type: 'integer' },
    keepalive: { type: 'integer' },
    partition: { type: 'integer' },
  },
  required: ['ruid', 'aor', 'username', 'contact', 'expires', 'expiresIn'],
};
