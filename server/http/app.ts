/**
 * The HTTP API (fastify). JSON Schema on every route validates requests, serializes responses and
 * makes the OpenAPI document (`GET /api/openapi.json`). Everything but `/health/*` needs
 * `Authorization: Bearer <token>` (see auth.ts); `/metrics` too unless `metricsPublic`.
 *
 *   /health/live, /health/ready                        liveness; readiness (directory + location)
 *   /metrics                                           Prometheus text
 *   /api/openapi.json                                  OpenAPI 3 document
 *   /api/v1/flows…, /simulate, /execute                flows and the engine
 *   /api/v1/flows/:name/tests…                          a flow's test cases (stored, run, exported)
 *   /api/v1/customers…, /numbers…, /import             directory
 *   /api/v1/registrations…                             location service
 *   /api/v1/security/bans…                             banned sources and locked usernames (list, lift)
 *   /api/v1/cdrs, /api/v1/cdrs.csv                     call detail records (search, CSV export)
 *   /api/v1/calls…, /api/v1/calls/debug-filter          call history (list, one call's messages and runs; debug filter)
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { RunContext } from '../../engine/types';
import type { Subscribers } from '../../services/directory';
import type { Guard } from '../../services/guard';
import { openHistory, type History } from '../../services/history';
import type { Config } from '../config';
import type { FlowsStore } from '../flows';
import { createLogger, logPort, type Logger } from '../logger';
import { instrumentContext, processMetrics, type Metrics } from '../metrics';
import { runtimeOptionsFromConfig, type Runtime } from '../runtime';
import { resolveApiToken, tokenChecker } from './auth';
import type { ApiDeps } from './deps';
import { errorHandler } from './errors';
import { createLocationAdmin, type LocationAdmin } from './location-admin';
import { callRoutes } from './routes/calls';
import { cdrRoutes } from './routes/cdrs';
import { designerPlugin } from './routes/designer';
import { introspectForeignKeys } from '../../services/directory/schema';
import { directoryRoutes } from './routes/directory';
import { engineRoutes } from './routes/engine';
import { flowTestRoutes } from './routes/flow-tests';
import { flowRoutes } from './routes/flows';
import { registrationRoutes } from './routes/registrations';
import { securityRoutes } from './routes/security';
import { errorResponses, importErrorSchema, problemSchema } from './schemas';
import { createSubscribersAdmin } from './subscribers-admin';

export interface ApiOptions {
  config: Config;
  runtime: Runtime;
  flows: FlowsStore;
  subscribers?: Subscribers;
  /** Bindings administration; default: the runtime's location store. */
  location?: LocationAdmin;
  metrics?: Metrics;
  logger?: Logger;
  /** Bearer token; default: `config.http.token`, else `<dataDir>/api-token` (generated once, mode 0600). */
  token?: string;
  /** Serve /metrics without the token (for a scraper on a trusted network). Default false. */
  metricsPublic?: boolean;
  /** Run context for /execute and /simulate; default: the runtime's, with instrumented ports. */
  ctx?: RunContext;
  /** URL prefixes served without the token besides /health/ (e.g. ['/designer/'] for the web app's static files). */
  publicPrefixes?: string[];
  /** Readiness checks give up after this long (default 2000 ms). */
  readyTimeoutMs?: number;
  /**
   * The SIP side's state for /health/ready (server/serve.ts): 'ok' once its listeners are up,
   * 'starting' before (the API listens first), 'stopping' after SIGTERM; none: not checked.
   */
  sipState?: () => 'starting' | 'ok' | 'stopping';
  /** The SIP threads' guard (services/guard) whose bans /api/v1/security/bans lists and lifts; none: an empty list. */
  security?: Guard;
  /** The call history the SIP threads record into (services/history); default: one over the runtime's directory database, closed with the app. */
  history?: History;
}

export const API_PREFIX = '/api/v1';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  const metrics = o.metrics ?? processMetrics();
  const logger = o.logger ?? createLogger({ level: o.config.log.level });
  // the runtime's subscribers tell the directory's caches about every write (services/directory/changes.ts)
  const subscribers = o.subscribers ?? o.runtime.subscribers;
  const location = o.location ?? createLocationAdmin(o.runtime.store);
  const checkToken = tokenChecker(o.token ?? resolveApiToken({ token: o.config.http.token, dataDir: o.config.dataDir }));
  const deps: ApiDeps = {
    config: o.config,
    runtime: o.runtime,
    flows: o.flows,
    subscribers,
    subscribersAdmin: createSubscribersAdmin(o.runtime.knex, subscribers, () => o.runtime.directoryChanges.changed()),
    location,
    metrics,
    logger,
    ctx: o.ctx ?? instrumentContext(o.runtime.ctx, metrics),
    limits: o.runtime.limits,
    registrarOptions: runtimeOptionsFromConfig(o.config).registrar ?? {},
    security: o.security ?? null,
    history: o.history ?? openHistory(o.config.history, { knex: o.runtime.knex, log: logPort(logger) }),
  };
  metrics.setBindingsSource(() => location.count(new Date()));

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: 16 * 1024 * 1024,
    ajv: { customOptions: { allErrors: true, allowUnionTypes: true, removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  });
  app.setErrorHandler(errorHandler);
  if (o.history === undefined) app.addHook('onClose', () => deps.history.close());
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.addSchema(problemSchema);
  app.addSchema(importErrorSchema);

  await app.register(swagger, {
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'sipflow API',
        version: '1',
        description: 'Flows, simulation and execution, directory, registrations. Authenticate with `Authorization: Bearer <token>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // ---------------------------------------------------------------- auth
  // the designer's files are the web app only: every API call it makes needs the token
  const publicPrefixes = ['/health/', '/designer', ...(o.publicPrefixes ?? [])];
  const under = (url: string, p: string) => (p.endsWith('/') ? url.startsWith(p) : url === p || url.startsWith(`${p}/`) || url.startsWith(`${p}?`));
  const isPublic = (url: string) =>
    publicPrefixes.some((p) => under(url, p)) || (o.metricsPublic === true && (url === '/metrics' || url.startsWith('/metrics?')));
  app.addHook('onRequest', async (req, reply) => {
    if (isPublic(req.url)) return;
    const verdict = checkToken(req.headers.authorization);
    if (verdict === 'ok') return;
    metrics.authFailures.inc({ kind: 'api' });
    req.log.warn({ reason: verdict }, 'API authentication failed');
    const challenge = verdict === 'invalid' ? 'Bearer realm="sipflow", error="invalid_token"' : 'Bearer realm="sipflow"';
    return reply
      .code(401)
      .header('WWW-Authenticate', challenge)
      .send({
        statusCode: 401,
        error: 'Unauthorized',
        message: verdict === 'invalid' ? 'invalid bearer token' : 'missing bearer token (Authorization: Bearer <token>)',
      });
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  // ---------------------------------------------------------------- ops
  const ops = ['operations'];
  app.get(
    '/health/live',
    {
      schema: {
        tags: ops,
        summary: 'Liveness (no token)',
        security: [],
        response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } },
      },
    },
    async () => ({ status: 'ok' }),
  );

  const readyBody = {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['ok', 'unavailable'] },
      checks: {
        type: 'object',
        properties: { directory: { type: 'string' }, location: { type: 'string' }, sip: { type: 'string' } },
        required: ['directory', 'location'],
      },
    },
    required: ['status', 'checks'],
  };
  app.get(
    '/health/ready',
    {
      schema: {
        tags: ops,
        summary:
          'Readiness (no token): 200 when the SIP listeners are up (not starting, not stopping) and the directory and the location service answer, else 503 naming the failed one',
        security: [],
        response: { 200: readyBody, 503: readyBody },
      },
    },
    async (_req, reply) => {
      const ms = o.readyTimeoutMs ?? 2000;
      const check = (p: () => Promise<unknown>, what: string) =>
        withTimeout(Promise.resolve().then(p), ms, what).then(
          () => 'ok',
          (e: Error) => `down: ${e.message}`,
        );
      const [directory, loc] = await Promise.all([
        check(() => o.runtime.knex.raw('SELECT 1'), 'directory'),
        check(() => o.runtime.registrar.lookup('sipflow-readiness-probe', null, new Date()), 'location'),
      ]);
      // a rolling restart waits for this before stopping the next instance: SIP must be taking requests
      const sip = o.sipState?.();
      const ok = directory === 'ok' && loc === 'ok' && (sip === undefined || sip === 'ok');
      return reply
        .code(ok ? 200 : 503)
        .send({ status: ok ? 'ok' : 'unavailable', checks: { directory, location: loc, ...(sip !== undefined ? { sip } : {}) } });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ops,
        summary: 'Prometheus metrics (text exposition)',
        produces: ['text/plain'],
        response: { 200: { type: 'string' }, ...errorResponses },
      },
    },
    async (_req, reply) => reply.header('Content-Type', metrics.registry.contentType).send(await metrics.text()),
  );

  app.get(
    '/api/openapi.json',
    {
      schema: { tags: ops, summary: 'This API as an OpenAPI 3 document', response: { 200: { type: 'object', additionalProperties: true } } },
    },
    async () => app.swagger(),
  );

  // ---------------------------------------------------------------- v1
  await app.register(
    async (v1) => {
      await flowRoutes(v1, deps);
      await flowTestRoutes(v1, deps);
      await engineRoutes(v1, deps);
      await directoryRoutes(v1, deps);
      await registrationRoutes(v1, deps);
      await securityRoutes(v1, deps);
      await cdrRoutes(v1, deps);
      await callRoutes(v1, deps);
    },
    { prefix: API_PREFIX },
  );
  await app.register(designerPlugin, {
    directory: o.runtime.directory,
    foreignKeys: () => introspectForeignKeys(o.runtime.knex),
    registry: o.flows.registry,
  });
  return app;
}
