/** /api/v1/registrations: bindings of the location service, listed and searched by AoR, deleted by ruid. */
import type { FastifyInstance } from 'fastify';
import type { Binding } from '../../../services/location/types';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { bindingSchema, errorResponses, pageOf } from '../schemas';

export function bindingJson(b: Binding, now: Date) {
  return {
    ...b,
    aor: b.domain ? `${b.username}@${b.domain}` : b.username,
    expires: b.expires.toISOString(),
    last_modified: b.last_modified.toISOString(),
    expiresIn: Math.max(0, Math.ceil((b.expires.getTime() - now.getTime()) / 1000)),
  };
}

export async function registrationRoutes(app: FastifyInstance, deps: ApiDeps) {
  const T = ['registrations'];
  app.get<{ Querystring: { aor?: string; search?: string; limit?: number; offset?: number; expired?: boolean } }>(
    '/registrations',
    {
      schema: {
        tags: T,
        summary: 'List bindings (live ones unless expired=true), by exact AoR or username substring',
        querystring: {
          type: 'object',
          properties: {
            aor: { type: 'string', minLength: 1, maxLength: 256, description: 'exact AoR: user or user@domain (sip: prefix accepted)' },
            search: { type: 'string', minLength: 1, maxLength: 256, description: 'case-insensitive substring of the username' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0 },
            expired: { type: 'boolean', default: false, description: 'include expired bindings not purged yet' },
          },
          additionalProperties: false,
        },
        response: { 200: pageOf(bindingSchema), ...errorResponses },
      },
    },
    async (req) => {
      const { limit = 100, offset = 0 } = req.query;
      const now = new Date(deps.ctx.clock.now());
      const page = await deps.location.list({ aor: req.query.aor, search: req.query.search, limit, offset, expired: req.query.expired, now });
      return { rows: page.rows.map((b) => bindingJson(b, now)), total: page.total, limit, offset };
    },
  );

  app.delete<{ Params: { ruid: string } }>(
    '/registrations/:ruid',
    {
      schema: {
        tags: T,
        summary: 'Delete one binding by its ruid',
        params: { type: 'object', properties: { ruid: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['ruid'], additionalProperties: false },
        response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!(await deps.location.remove(req.params.ruid))) throw new ApiError(404, `no binding with ruid "${req.params.ruid}"`);
      return reply.code(204).send();
    },
  );
}
