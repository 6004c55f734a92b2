/** /api/v1/flows: list, read, validate, save development (If-Match), import, release, activate, export, rename, delete. */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps';
import { ApiError, problemJson } from '../errors';
import {
  errorResponses,
  flowDetailSchema,
  flowNameParam,
  flowSummarySchema,
  forceQuery,
  releaseSchema,
  saveResultSchema,
  slidSchema,
  slidTextBody,
  validationResultSchema,
} from '../schemas';
import { FLOW_NAME_PATTERN, FlowStaleError } from '../../flows';
import { activationGate, activationRefusedSchema } from './flow-tests';

/** The entity tag of a revision (strong). */
const etag = (revision: string) => `"${revision}"`;

/**
 * `If-Match` as the save expects it: undefined (absent or `*`: no check), else the revision quoted in
 * it (strong comparison: a weak tag never matches, so it is refused as stale).
 */
function ifMatchRevision(header: string | string[] | undefined): string | undefined {
  const v = (Array.isArray(header) ? header.join(',') : header)?.trim();
  if (!v || v === '*') return undefined;
  const m = /^"([^"]*)"$/.exec(v);
  return m ? m[1] : v;
}

const TAG = ['flows'];

/** The routes that take a .slid as raw text: their own content-type parsers keep the body byte for byte. */
async function rawSlidRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain', 'application/octet-stream'],
    { parseAs: 'string', bodyLimit: 16 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );
  const consumes = ['application/json', 'text/plain', 'application/octet-stream'];

  app.post<{ Body: string; Querystring: { file?: string } }>(
    '/flows/validate',
    {
      schema: {
        tags: TAG,
        summary: 'Validate a .slid (nothing is stored): every problem, located',
        consumes,
        querystring: {
          type: 'object',
          properties: { file: { type: 'string', maxLength: 200, description: 'file name shown in problems' } },
          additionalProperties: false,
        },
        body: slidTextBody,
        response: { 200: validationResultSchema, ...errorResponses },
      },
    },
    async (req) => {
      const problems = deps.flows.validate(req.body, req.query.file ?? 'flow.slid');
      const errors = problems.filter((p) => p.severity === 'error').length;
      return { valid: errors === 0, errors, warnings: problems.length - errors, problems: problems.map(problemJson) };
    },
  );

  app.put<{ Body: string; Params: { name: string } }>(
    '/flows/:name',
    {
      schema: {
        tags: TAG,
        summary:
          'Save the development copy of a flow (created when new). Errors → 400 listing every problem; warnings are returned. ' +
          'If-Match: "<revision>" (the ETag of GET /flows/:name) → 409 with the current revision when the flow changed since; ' +
          'If-None-Match: * → 409 when the flow exists. Without either header the save overwrites (scripts).',
        consumes,
        params: flowNameParam,
        headers: {
          type: 'object',
          properties: {
            'if-match': { type: 'string', description: 'the revision the edit was made from, quoted (ETag)' },
            'if-none-match': { type: 'string', enum: ['*'], description: '"*": only create, never overwrite' },
          },
        },
        body: slidTextBody,
        response: { 200: saveResultSchema, 201: saveResultSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const ifRevision = ifMatchRevision(req.headers['if-match']);
      const ifAbsent = req.headers['if-none-match'] === '*';
      const create = !ifRevision && req.headers['if-match'] === undefined;
      try {
        const r = await deps.flows.saveDevelopment(req.params.name, req.body, { create, ifRevision, ifAbsent });
        return reply
          .code(r.created ? 201 : 200)
          .header('ETag', etag(r.revision))
          .send({ name: req.params.name, created: r.created, revision: r.revision, problems: r.problems.map(problemJson) });
      } catch (e) {
        if (e instanceof FlowStaleError) throw new ApiError(409, e.message, { revision: e.revision });
        throw e;
      }
    },
  );

  app.post<{ Body: string; Querystring: { name: string; replace?: boolean } }>(
    '/flows/import',
    {
      schema: {
        tags: TAG,
        summary: 'Import a .slid as the development copy of a new flow (409 when it exists, unless replace=true)',
        consumes,
        querystring: {
          type: 'object',
          properties: { name: { type: 'string', pattern: FLOW_NAME_PATTERN }, replace: { type: 'boolean', default: false } },
          required: ['name'],
          additionalProperties: false,
        },
        body: slidTextBody,
        response: { 200: saveResultSchema, 201: saveResultSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { name, replace } = req.query;
      if (!replace) {
        if (await deps.flows.exists(name))
          throw new ApiError(409, `flow "${name}" already exists (PUT /api/v1/flows/${name} or ?replace=true to overwrite its development copy)`);
      }
      // Without replace, "does not exist" is checked again under the row lock (two imports at once: one 409).
      const r = await deps.flows.saveDevelopment(name, req.body, { create: true, ifAbsent: !replace });
      return reply
        .code(r.created ? 201 : 200)
        .header('ETag', etag(r.revision))
        .send({ name, created: r.created, revision: r.revision, problems: r.problems.map(problemJson) });
    },
  );
}

export async function flowRoutes(app: FastifyInstance, deps: ApiDeps) {
  await app.register(async (child) => rawSlidRoutes(child, deps));

  app.get(
    '/flows',
    {
      schema: {
        tags: TAG,
        summary: 'List flows with their latest and active versions',
        response: { 200: { type: 'object', properties: { flows: { type: 'array', items: flowSummarySchema } }, required: ['flows'] }, ...errorResponses },
      },
    },
    async () => ({ flows: await deps.flows.list() }),
  );

  app.get<{ Params: { name: string } }>(
    '/flows/:name',
    {
      schema: {
        tags: TAG,
        summary: 'A flow: development copy and its revision (also the ETag header), releases, active version',
        params: flowNameParam,
        response: { 200: flowDetailSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const d = await deps.flows.get(req.params.name);
      reply.header('ETag', etag(d.revision));
      return { ...d, problems: d.problems.map(problemJson) };
    },
  );

  app.post<{ Params: { name: string }; Body: { note?: string } | undefined }>(
    '/flows/:name/releases',
    {
      schema: {
        tags: TAG,
        summary:
          'Release: freeze the current development copy as version N+1. If-Match: "<revision>" → 409 with the current revision when the development copy changed since',
        params: flowNameParam,
        body: { type: 'object', properties: { note: { type: 'string', maxLength: 2000 } }, additionalProperties: false },
        response: { 201: releaseSchema, ...errorResponses },
      },
      // The body is optional: no body means no note.
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
    },
    async (req, reply) => {
      try {
        const ifRevision = ifMatchRevision(req.headers['if-match']);
        return reply.code(201).send(await deps.flows.release(req.params.name, req.body?.note ?? null, { ifRevision }));
      } catch (e) {
        if (e instanceof FlowStaleError) throw new ApiError(409, e.message, { revision: e.revision });
        throw e;
      }
    },
  );

  app.post<{ Params: { name: string; version: number }; Querystring: { force?: boolean } }>(
    '/flows/:name/releases/:version/activate',
    {
      schema: {
        tags: TAG,
        summary: 'Activate a release: compiled first, then swapped in atomically (in-flight requests finish on the old one)',
        description:
          "The release's test cases run first (routes/flow-tests.ts): on any failure the answer is 422 with the results and nothing is activated, unless `force=true` (the failures are logged).",
        querystring: forceQuery,
        params: {
          type: 'object',
          properties: { ...(flowNameParam.properties as object), version: { type: 'integer', minimum: 1 } },
          required: ['name', 'version'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              flow: { type: 'string' },
              version: { type: 'integer' },
              activatedAt: { type: 'string', format: 'date-time' },
              generation: { type: 'integer' },
            },
            required: ['flow', 'version', 'activatedAt', 'generation'],
          },
          422: activationRefusedSchema,
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      // the gate: the release's test cases first (422 and nothing activated on a failure, unless ?force=true)
      if (await activationGate(deps, req, reply, req.params.name, req.params.version, req.query.force === true)) return reply;
      const r = await deps.flows.activate(req.params.name, req.params.version);
      deps.metrics.activations.inc({ flow: req.params.name });
      return { flow: req.params.name, version: r.version, activatedAt: r.activatedAt, generation: deps.flows.generation() };
    },
  );

  app.get<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/flows/:name/export',
    {
      schema: {
        tags: TAG,
        summary: 'Download the .slid exactly as stored (a release, "development", or by default the active release)',
        params: flowNameParam,
        querystring: {
          type: 'object',
          properties: {
            version: {
              type: 'string',
              pattern: '^([1-9][0-9]*|development)$',
              description: 'release number or "development"; default: the active release, else development',
            },
          },
          additionalProperties: false,
        },
        produces: ['application/json'],
        response: { 200: { ...slidSchema, description: 'the .slid file (Content-Disposition: attachment)' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const v = req.query.version;
      const r = await deps.flows.exportText(req.params.name, v === undefined ? undefined : v === 'development' ? 'development' : Number(v));
      const { text, version } = r;
      const suffix = version === 'development' ? '-development' : `-v${version}`;
      return reply
        .header('Content-Type', 'application/json; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="${req.params.name}${suffix}.slid"`)
        .header('X-Sipflow-Version', String(version))
        .header('X-Sipflow-Revision', r.revision)
        .send(text);
    },
  );

  app.post<{ Params: { name: string }; Body: { to: string } }>(
    '/flows/:name/rename',
    {
      schema: {
        tags: TAG,
        summary:
          'Rename a flow with its releases and activation (409 when the new name exists; the primary flow is refused). ' +
          'An active flow keeps running under its new name',
        params: flowNameParam,
        body: {
          type: 'object',
          properties: { to: { type: 'string', pattern: FLOW_NAME_PATTERN, description: 'the new name' } },
          required: ['to'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { from: { type: 'string' }, to: { type: 'string' }, active: { type: 'boolean' }, generation: { type: 'integer' } },
            required: ['from', 'to', 'active', 'generation'],
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const r = await deps.flows.rename(req.params.name, req.body.to);
      return { from: req.params.name, to: req.body.to, active: r.active, generation: deps.flows.generation() };
    },
  );

  app.delete<{ Params: { name: string }; Querystring: { force?: boolean } }>(
    '/flows/:name',
    {
      schema: {
        tags: TAG,
        summary: 'Delete a flow with its releases. An active flow: 409 unless force=true (then it is taken out of service). ' + 'The primary flow is refused',
        params: flowNameParam,
        querystring: forceQuery,
        response: {
          200: {
            type: 'object',
            properties: { name: { type: 'string' }, wasActive: { type: 'boolean' }, generation: { type: 'integer' } },
            required: ['name', 'wasActive', 'generation'],
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const r = await deps.flows.remove(req.params.name, { force: req.query.force === true });
      return { name: req.params.name, wasActive: r.active, generation: deps.flows.generation() };
    },
  );
}
