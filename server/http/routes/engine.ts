/**
 * /api/v1/simulate and /api/v1/execute: the engine behind the HTTP API, with the same ports as the
 * SIP front end (directory, registrar, digest auth, clock, limits).
 */
import type { FastifyInstance } from 'fastify';
import { buildCallDescriptor, callDescriptorJson } from '../../../engine/cd';
import { parseInstant } from '../../../engine/instant';
import { loadSlid, loadSlidText, type CompiledService } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import { redactCallDescriptorJson, redactTrace } from '../../../engine/secrets';
import type { CallDescriptor, RunContext, TraceStep } from '../../../engine/types';
import { parseDigestCredentials } from '../../../services/auth';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar, type RegistrarOptions } from '../../../services/location/registrar';
import { dryRunCache } from '../../../services/cache';
import { createMemoryCallLimiter } from '../../../services/call-limit';
import type { LocationPort } from '../../../services/location/types';
import { FlowProblemsError, FLOW_NAME_PATTERN } from '../../flows';
import { logPort } from '../../logger';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { cdInputSchema, cdOutputSchema, errorResponses, logicRefSchema, outcomeSchema, traceSchema } from '../schemas';

const cdOptions = { credentials: parseDigestCredentials };

export function toCd(input: unknown): CallDescriptor {
  return buildCallDescriptor(input, cdOptions);
}

/**
 * A location port for dry runs: REGISTERs apply to a private in-memory copy of the AoR's current
 * bindings (copied from the real location service on first touch), lookups read that copy for AoRs
 * the run touched and the real service otherwise. Nothing is written to the real location service.
 */
export function dryRunLocation(real: LocationPort, options: RegistrarOptions): LocationPort {
  const store = createMemoryLocationStore();
  const registrar = createRegistrar(store, options);
  const touched = new Set<string>();
  const key = (u: string) => u; // single-domain AoRs (the registrar's default): the username
  return {
    async register(req) {
      if (!touched.has(key(req.username))) {
        touched.add(key(req.username));
        for (const b of await real.lookup(req.username, req.domain, req.now)) await store.upsert(b);
      }
      return registrar.register(req);
    },
    lookup: (username, domain, now) => (touched.has(key(username)) ? registrar.lookup(username, domain, now) : real.lookup(username, domain, now)),
  };
}

/**
 * Secrets in answers: the call descriptor and the trace leave with every secret variable of the
 * service (engine/secrets.ts), the credentials headers and any digest response replaced by
 * "[redacted]", unless the token holder asks for them explicitly: `"revealSecrets": true` in the
 * body or `?reveal=secrets`.
 */
export const revealQuerySchema = {
  type: 'object',
  properties: { reveal: { type: 'string', enum: ['secrets'], description: '`secrets`: answer secrets in clear text (same as `revealSecrets: true`)' } },
};
const revealSecretsField = {
  type: 'boolean',
  default: false,
  description: 'answer the secrets (passwords, HA1s, credentials headers, digest responses) in clear text; default false: each is "[redacted]"',
};

interface RevealQuery {
  reveal?: 'secrets';
}

function wantsSecrets(body: { revealSecrets?: boolean }, query: RevealQuery | undefined): boolean {
  return body.revealSecrets === true || query?.reveal === 'secrets';
}

/** The answer's CD and trace: redacted unless `reveal`. */
export function shapeRun(
  service: CompiledService,
  cd: CallDescriptor,
  trace: TraceStep[] | undefined,
  reveal: boolean,
): { cd: Record<string, unknown>; trace?: TraceStep[] } {
  const json = callDescriptorJson(cd);
  if (reveal) return { cd: json, trace };
  const secrets = service.secrets;
  return { cd: redactCallDescriptorJson(json, secrets), trace: trace && redactTrace(trace, secrets) };
}

interface SimulateBody {
  flow?: string;
  version?: number | 'development';
  slid?: Record<string, unknown> | string;
  logic: string;
  cd: Record<string, unknown>;
  trace?: boolean;
  dryRun?: boolean;
  revealSecrets?: boolean;
  now?: string;
}

const logicNames = (s: CompiledService) =>
  [...s.logics.values()]
    .filter((l, i, a) => a.indexOf(l) === i)
    .map((l) => `${l.id} "${l.name}"`)
    .join(', ');

export async function engineRoutes(app: FastifyInstance, deps: ApiDeps) {
  const TAG = ['engine'];

  app.post<{ Body: SimulateBody; Querystring: RevealQuery }>(
    '/simulate',
    {
      schema: {
        tags: TAG,
        summary: "Run a logic once against a call descriptor, with trace (the designer's simulation)",
        description:
          'Runs a flow\'s active release (or `version`, or "development"), an inline `slid`, or by default the active set. ' +
          "dryRun (default true) keeps the real directory and auth but registers into a private in-memory copy of the AoR's bindings, and caches into a private table read before the instance cache, " +
          'so a simulated REGISTER never changes the real location service; dryRun=false writes real bindings. ' +
          'Secrets (passwords, HA1s, credentials headers, digest responses) are "[redacted]" in `cd` and `trace` unless `revealSecrets` is true or `?reveal=secrets`. ' +
          '`now` runs the logic at another instant (time conditions, setDateTime; dry runs only).',
        querystring: revealQuerySchema,
        body: {
          type: 'object',
          properties: {
            flow: { type: 'string', pattern: FLOW_NAME_PATTERN, description: 'flow to run (default: the active set)' },
            version: {
              anyOf: [
                { type: 'integer', minimum: 1 },
                { type: 'string', enum: ['development'] },
              ],
              description: 'release of `flow` (default: its active release, else development)',
            },
            slid: { anyOf: [{ type: 'object' }, { type: 'string' }], description: 'inline .slid document (instead of flow)' },
            logic: { type: 'string', minLength: 1, description: 'logic id or name' },
            cd: cdInputSchema,
            trace: { type: 'boolean', default: true },
            dryRun: { type: 'boolean', default: true },
            revealSecrets: revealSecretsField,
            now: {
              type: 'string',
              maxLength: 40,
              description:
                'run at this instant (ISO 8601 with offset, e.g. 2026-12-24T18:30:00+01:00): the clock the date and time nodes read (default: the current time)',
            },
          },
          required: ['logic', 'cd'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              outcome: outcomeSchema,
              cd: cdOutputSchema,
              restarts: { type: 'integer' },
              trace: traceSchema,
              logic: logicRefSchema,
              dryRun: { type: 'boolean' },
              secretsRevealed: { type: 'boolean' },
            },
            required: ['outcome', 'cd', 'restarts', 'logic', 'dryRun'],
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const b = req.body;
      if (b.flow !== undefined && b.slid !== undefined) throw new ApiError(400, 'body/flow, body/slid: give one of them, not both');
      if (b.version !== undefined && b.flow === undefined) throw new ApiError(400, 'body/version: needs body/flow');
      let service: CompiledService;
      let flow: string | null = null;
      let version: number | 'development' | null = null;
      if (b.slid !== undefined) {
        const registry = deps.flows.registry;
        const loaded = typeof b.slid === 'string' ? loadSlidText(b.slid, 'slid', registry) : loadSlid(b.slid, 'slid', registry);
        if (!loaded.service) throw new FlowProblemsError(loaded.problems, 'body/slid');
        service = loaded.service;
      } else if (b.flow !== undefined) {
        const c = await deps.flows.compiled(b.flow, b.version);
        service = c.service;
        flow = b.flow;
        version = c.version;
      } else {
        service = deps.flows.active();
      }
      let logic = service.find(b.logic);
      if (b.slid === undefined && b.flow === undefined) {
        const r = deps.flows.resolve(b.logic);
        if (r) {
          service = r.service;
          logic = r.logic;
          flow = r.flow;
          version = r.version;
        }
      }
      if (!logic) throw new ApiError(400, `body/logic: no logic "${b.logic}" here (logics: ${logicNames(service) || 'none'})`);
      const now = b.now === undefined ? undefined : parseInstant(b.now);
      if (now instanceof Error) throw new ApiError(400, `body/now: ${now.message}`);
      // real bindings are written with the real clock only
      if (now !== undefined && b.dryRun === false)
        throw new ApiError(400, 'body/now: only in a dry run (dryRun=false writes real bindings, dated by the real clock)');
      const cd = toCd(b.cd);
      const log = req.log.child({ callId: cd.vars.callId ?? null, simulate: true });
      const ctx: RunContext = {
        ...deps.ctx,
        ...(now === undefined ? {} : { clock: { now: () => now }, calendar: { now: () => now } }),
        location: b.dryRun === false ? deps.ctx.location : dryRunLocation(deps.ctx.location, deps.registrarOptions),
        cache: b.dryRun === false ? deps.ctx.cache : dryRunCache(deps.ctx.cache),
        // a simulated call is followed by no call events: a slot it took would be held until it expires
        callLimits: createMemoryCallLimiter(),
        log: logPort(log),
      };
      const result = await runLogic(service, logic.id, cd, ctx, { trace: b.trace !== false, limits: deps.limits });
      log.debug({ outcome: result.outcome.kind, status: result.outcome.status }, 'simulated');
      const reveal = wantsSecrets(b, req.query);
      if (reveal) log.info('simulate: secrets revealed in the answer (revealSecrets)');
      const shaped = shapeRun(service, result.cd, result.trace, reveal);
      return {
        outcome: result.outcome,
        cd: shaped.cd,
        restarts: result.restarts,
        trace: shaped.trace,
        logic: { flow, version, id: logic.id, name: logic.name },
        dryRun: b.dryRun !== false,
        secretsRevealed: reveal,
      };
    },
  );

  app.post<{ Body: { cd: Record<string, unknown>; logic?: string; revealSecrets?: boolean }; Querystring: RevealQuery }>(
    '/execute',
    {
      schema: {
        tags: TAG,
        summary: 'Run the active service for one SIP request (the contract for an external SIP front end such as Kamailio or drachtio)',
        description:
          'The front end sends the call descriptor it filled (variables + headers) and applies the outcome. ' +
          'Runs `logic` (default: the configured defaultLogic) of the active flows, with the production ports: bindings are really written. ' +
          'Secrets (passwords, HA1s, credentials headers, digest responses) are "[redacted]" in `cd` unless `revealSecrets` is true or `?reveal=secrets`.',
        querystring: revealQuerySchema,
        body: {
          type: 'object',
          properties: {
            cd: cdInputSchema,
            logic: { type: 'string', minLength: 1, description: 'logic id, name or flow/logic (default: config defaultLogic)' },
            revealSecrets: revealSecretsField,
          },
          required: ['cd'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { outcome: outcomeSchema, cd: cdOutputSchema, logic: logicRefSchema, secretsRevealed: { type: 'boolean' } },
            required: ['outcome', 'cd'],
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const ref = req.body.logic ?? deps.config.defaultLogic;
      // Taken once: an activation during this run does not change the service it runs on.
      const resolved = deps.flows.resolve(ref);
      if (!resolved) throw new ApiError(404, `no active logic "${ref}" (activate a flow that has it)`);
      const cd = toCd(req.body.cd);
      const log = req.log.child({ callId: cd.vars.callId ?? null });
      const hadCredentials = cd.vars.authUsername !== undefined;
      const t0 = process.hrtime.bigint();
      // the external front end reports no call end: no slot is taken (analysis.callLimit answers unlimited)
      const result = await runLogic(
        resolved.service,
        resolved.logic.id,
        cd,
        { ...deps.ctx, callLimits: undefined, log: logPort(log) },
        { limits: deps.limits },
      );
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      deps.metrics.observeRun(typeof cd.vars.requestMethod === 'string' ? cd.vars.requestMethod : null, result.outcome, seconds, { hadCredentials });
      if (result.outcome.kind === 'error') log.warn({ outcome: result.outcome }, 'flow ended in error');
      else log.debug({ outcome: result.outcome.kind, status: result.outcome.status }, 'executed');
      const reveal = wantsSecrets(req.body, req.query);
      if (reveal) log.info('execute: secrets revealed in the answer (revealSecrets)');
      return {
        outcome: result.outcome,
        cd: shapeRun(resolved.service, result.cd, undefined, reveal).cd,
        logic: { flow: resolved.flow, version: resolved.version, id: resolved.logic.id, name: resolved.logic.name },
        secretsRevealed: reveal,
      };
    },
  );
}
