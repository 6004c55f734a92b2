/**
 * /api/v1/security/bans: the brute-force and flood defence of this instance (services/guard,
 * docs/security.md): banned source addresses and locked usernames, listed and lifted. Bans are
 * per instance; lifting one here lifts it in every SIP thread of this process, not in other
 * instances.
 */
import type { FastifyInstance } from 'fastify';
import type { BanEntry } from '../../../services/guard';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { errorResponses } from '../schemas';

type S = Record<string, unknown>;

const reason: S = {
  type: 'string',
  enum: ['auth', 'rate', 'scanner'],
  description:
    'auth = too many failed authentications in the window; rate = over the request rate limit for security.rateLimit.banAfterSec; scanner = scanner User-Agent',
};
const common: S = {
  reason,
  count: { type: 'integer', description: 'failed authentications in the window (auth), messages dropped in the over-rate streak (rate), 1 (scanner)' },
  since: { type: 'string', format: 'date-time' },
  until: { type: 'string', format: 'date-time', description: 'when it ends by itself' },
  remainingSec: { type: 'integer', minimum: 0 },
};

export const bannedSourceSchema: S = {
  type: 'object',
  description: 'A source address whose SIP messages are dropped without an answer.',
  properties: {
    address: { type: 'string' },
    ...common,
    username: { type: ['string', 'null'], description: 'the last digest username tried from it (auth bans)' },
    userAgent: { type: 'string', description: 'the scanner pattern its User-Agent matched (scanner bans)' },
  },
  required: ['address', 'reason', 'count', 'since', 'until', 'remainingSec', 'username'],
};

export const lockedUserSchema: S = {
  type: 'object',
  description: 'A digest username (lower-cased) that never authenticates until the lock ends; requests get the same challenge as for a wrong password.',
  properties: {
    username: { type: 'string' },
    ...common,
    source: { type: ['string', 'null'], description: 'the last source address that failed with it' },
  },
  required: ['username', 'reason', 'count', 'since', 'until', 'remainingSec', 'source'],
};

const banTimes = (b: BanEntry, now: number) => ({
  reason: b.reason,
  count: b.count,
  since: new Date(b.since).toISOString(),
  until: new Date(b.until).toISOString(),
  remainingSec: Math.max(0, Math.ceil((b.until - now) / 1000)),
});

export async function securityRoutes(app: FastifyInstance, deps: ApiDeps) {
  const T = ['security'];
  app.get(
    '/security/bans',
    {
      schema: {
        tags: T,
        summary: 'Banned sources and locked usernames of this instance, in force now (oldest first)',
        response: {
          200: {
            type: 'object',
            properties: { sources: { type: 'array', items: bannedSourceSchema }, users: { type: 'array', items: lockedUserSchema } },
            required: ['sources', 'users'],
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const list = deps.security?.list() ?? { sources: [], users: [] };
      const now = Date.now();
      return {
        sources: list.sources.map((b) => ({
          address: b.key,
          ...banTimes(b, now),
          username: b.last,
          ...(b.userAgent !== undefined ? { userAgent: b.userAgent } : {}),
        })),
        users: list.users.map((b) => ({ username: b.key, ...banTimes(b, now), source: b.last })),
      };
    },
  );

  app.delete<{ Params: { address: string } }>(
    '/security/bans/sources/:address',
    {
      schema: {
        tags: T,
        summary: 'Lift the ban of a source address (its failure count and rate state are forgotten too)',
        params: {
          type: 'object',
          properties: { address: { type: 'string', minLength: 1, maxLength: 64 } },
          required: ['address'],
          additionalProperties: false,
        },
        response: { 204: { type: 'null', description: 'lifted' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!deps.security?.liftSource(req.params.address)) throw new ApiError(404, `source "${req.params.address}" is not banned`);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: { username: string } }>(
    '/security/bans/users/:username',
    {
      schema: {
        tags: T,
        summary: 'Lift the lock of a username (any case), in every SIP thread of this instance',
        params: {
          type: 'object',
          properties: { username: { type: 'string', minLength: 1, maxLength: 256 } },
          required: ['username'],
          additionalProperties: false,
        },
        response: { 204: { type: 'null', description: 'lifted' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      if (!deps.security?.liftUser(req.params.username)) throw new ApiError(404, `username "${req.params.username}" is not locked`);
      return reply.code(204).send();
    },
  );
}
