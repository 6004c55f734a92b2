/**
 * JWT (RFC 7519) with `jose` (v5, CommonJS): sign, decode, verify. Why here: SIP services pass
 * identities and routing decisions as signed tokens (STIR/SHAKEN PASSporTs are JWTs, as are the
 * bearer tokens of HTTP routing APIs).
 *
 * Keys: HS256/384/512 take a shared secret (text, at least as many bytes as the hash: RFC 7518
 * §3.2); RS/PS/ES take PEM: a PKCS#8 private key to sign, an SPKI public key or an X.509
 * certificate to verify. The key comes from `key`, a field marked `x-secret`: the variable it
 * names is a secret (engine/secrets.ts), so API answers and traces redact it, and the node never
 * writes it anywhere nor names it in an error. A literal key is kept in the flow document, which
 * the flows API serves to token holders: prefer a variable. Imported keys are memoised per node
 * (the last key material seen), so a verification costs no PEM parsing per message.
 *
 * verify accepts only the node's `algorithm` (a token saying `alg: none`, or HS256 signed with a
 * public key, is refused) and checks exp / nbf against the run's clock (ctx.clock), so
 * `sipflow run --now` and tests verify at any instant. decode checks nothing: its claims are what
 * the sender wrote. Tokens longer than MAX_TOKEN_CHARS are refused unread.
 */
import { SignJWT, decodeJwt, importPKCS8, importSPKI, importX509, jwtVerify, type JWTPayload, type KeyLike } from 'jose';
import type { NodeType, ValueGetter } from '../engine/node-type';
import type { CdValue } from '../engine/types';
import { toText } from '../engine/values';
import { anyValue, nodeRef, writesVariable } from './common';
import { toCell } from './list';

const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

/** A token longer than this is refused (ifInvalid) before any parsing: SIP headers are bounded far below. */
export const MAX_TOKEN_CHARS = 16_384;

interface Values {
  operation: 'sign' | 'decode' | 'verify';
  algorithm?: Algorithm;
  key?: unknown;
  token?: unknown;
  claims?: Array<{ name: string; value?: unknown }>;
  expiresInSec?: number;
  issuer?: string;
  audience?: string;
  clockToleranceSec?: number;
  tokenInto?: string;
  storeClaims?: Array<{ claim: string; variable: string }>;
  errorInto?: string;
  next?: number | string;
  ifInvalid?: number | string;
}

class InvalidJwt extends Error {}

const hmacBytes = (alg: Algorithm): number => Number(alg.slice(2)) / 8;

/** Imports key material for one use, memoising the last material seen (a literal or a variable's value). */
function keyImporter(alg: Algorithm, use: 'sign' | 'verify'): (material: string) => Promise<KeyLike | Uint8Array> {
  let last: string | null = null;
  let key: Promise<KeyLike | Uint8Array> | null = null;
  const load = async (material: string): Promise<KeyLike | Uint8Array> => {
    if (alg.startsWith('HS')) {
      const bytes = new TextEncoder().encode(material);
      if (bytes.length < hmacBytes(alg)) throw new InvalidJwt(`invalid key: an ${alg} secret needs at least ${hmacBytes(alg)} bytes`);
      return bytes;
    }
    try {
      if (use === 'sign') return await importPKCS8(material, alg);
      return await (material.includes('BEGIN CERTIFICATE') ? importX509(material, alg) : importSPKI(material, alg));
    } catch {
      // jose's message is not quoted: it could echo part of the key material
      throw new InvalidJwt(`invalid key: ${use === 'sign' ? 'a PEM PKCS#8 private key' : 'a PEM SPKI public key or X.509 certificate'} for ${alg} expected`);
    }
  };
  return (material) => {
    if (material !== last || key === null) {
      last = material;
      key = load(material);
    }
    return key;
  };
}

export const jwtNode: NodeType<Values> = {
  type: 'action.jwt',
  title: 'JWT',
  summary: '{operation} {algorithm}',
  category: 'list',
  description:
    'Signs a JWT from claims, or verifies one (signature with the given algorithm only, exp / nbf against the run clock, issuer, audience) or decodes one WITHOUT any check; claims into variables. Failures take ifInvalid.',
  valuesSchema: {
    type: 'object',
    required: ['operation'],
    properties: {
      operation: { type: 'string', enum: ['sign', 'decode', 'verify'], default: 'verify', description: 'decode checks nothing: never trust its claims' },
      algorithm: { type: 'string', enum: [...ALGORITHMS], default: 'HS256', description: 'sign: the algorithm used; verify: the only one accepted' },
      key: {
        ...anyValue,
        'x-secret': true,
        description:
          'sign / verify: a variable holding the key: HS* a secret (at least 32/48/64 bytes), RS/PS/ES a PEM key (private to sign, public or certificate to verify)',
      },
      token: { ...anyValue, description: 'decode / verify: the JWT (a variable, or a [name] template)' },
      claims: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 128, description: 'claim name (sub, tenant, …)' },
            value: { ...anyValue, description: 'its value: literal, variable or [name] template' },
          },
        },
        description: 'sign: the claims of the token (iat is always set from the run clock)',
      },
      expiresInSec: { type: 'integer', minimum: 1, description: 'sign: exp = now + this many seconds (unset: no exp)' },
      issuer: { type: 'string', description: 'sign: the iss claim; verify: the iss required ([name] placeholders allowed)' },
      audience: { type: 'string', description: 'sign: the aud claim; verify: the aud required ([name] placeholders allowed)' },
      clockToleranceSec: { type: 'integer', minimum: 0, maximum: 3600, default: 0, description: 'verify: seconds of clock skew allowed for exp and nbf' },
      tokenInto: {
        ...writesVariable,
        'x-secret': true,
        description: 'sign: variable the token is written to (a bearer credential: redacted from API answers)',
      },
      storeClaims: {
        type: 'array',
        items: {
          type: 'object',
          required: ['claim', 'variable'],
          properties: {
            claim: {
              type: 'string',
              minLength: 1,
              maxLength: 128,
              description: 'claim name; objects and arrays are written as JSON text, a missing claim as null',
            },
            variable: { ...writesVariable, description: 'variable it is written to' },
          },
        },
        description: 'decode / verify: claims written into variables',
      },
      errorInto: { ...writesVariable, description: 'variable the reason is written to when ifInvalid is taken' },
      next: nodeRef,
      ifInvalid: { ...nodeRef, description: 'taken when signing fails (bad key) or the token is malformed, forged, expired or not yet valid' },
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    const op = v.operation;
    if ((op === 'sign' || op === 'verify') && (v.key === undefined || v.key === null || v.key === '')) problems.push(['key', `is required to ${op}`]);
    if ((op === 'decode' || op === 'verify') && (v.token === undefined || v.token === null || v.token === '')) problems.push(['token', `is required to ${op}`]);
    if (op === 'sign' && !v.tokenInto) problems.push(['tokenInto', 'is required to sign']);
    return problems;
  },
  compile(values, c) {
    const alg = values.algorithm ?? 'HS256';
    const next = c.exit('next');
    const invalid = c.exit('ifInvalid');
    const failed = (s: Parameters<ReturnType<NodeType['compile']>>[0], reason: string) => {
      if (values.errorInto) s.set(values.errorInto, reason);
      return invalid;
    };
    const text = (get: ValueGetter | null, vars: Record<string, CdValue>) => (get ? toText(get(vars)) : '');
    const optional = (raw: string | undefined) => (raw ? c.value(raw) : null);
    const issuer = optional(values.issuer);
    const audience = optional(values.audience);

    if (values.operation === 'sign') {
      const key = c.value(values.key);
      const importKey = keyImporter(alg, 'sign');
      const claims = (values.claims ?? []).map((cl) => [cl.name, c.value(cl.value ?? null)] as const);
      const tokenInto = values.tokenInto!;
      return async (s) => {
        const vars = s.cd.vars;
        const payload: JWTPayload = {};
        for (const [name, get] of claims) payload[name] = toCell(get(vars));
        const iat = Math.floor(s.ctx.clock.now() / 1000);
        const jwt = new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(iat);
        if (values.expiresInSec) jwt.setExpirationTime(iat + values.expiresInSec);
        if (issuer) jwt.setIssuer(text(issuer, vars));
        if (audience) jwt.setAudience(text(audience, vars));
        try {
          s.set(tokenInto, await jwt.sign(await importKey(text(key, vars))));
        } catch (e) {
          return failed(s, reasonOf(e));
        }
        return next;
      };
    }

    const token = c.value(values.token);
    const stores = (values.storeClaims ?? []).map((sc) => [sc.claim, sc.variable] as const);
    const store = (s: Parameters<ReturnType<NodeType['compile']>>[0], payload: JWTPayload) => {
      for (const [claim, variable] of stores) s.set(variable, Object.hasOwn(payload, claim) ? toCell(payload[claim]) : null);
    };
    const tokenOf = (vars: Record<string, CdValue>): string => {
      const t = text(token, vars).trim();
      if (t === '') throw new InvalidJwt('no token');
      if (t.length > MAX_TOKEN_CHARS) throw new InvalidJwt(`token longer than ${MAX_TOKEN_CHARS} characters`);
      return t;
    };

    if (values.operation === 'decode') {
      return (s) => {
        try {
          store(s, decodeJwt(tokenOf(s.cd.vars)));
        } catch (e) {
          return failed(s, reasonOf(e));
        }
        return next;
      };
    }

    const key = c.value(values.key);
    const importKey = keyImporter(alg, 'verify');
    const clockTolerance = values.clockToleranceSec ?? 0;
    return async (s) => {
      const vars = s.cd.vars;
      try {
        const { payload } = await jwtVerify(tokenOf(vars), await importKey(text(key, vars)), {
          algorithms: [alg],
          currentDate: new Date(s.ctx.clock.now()),
          clockTolerance,
          ...(issuer ? { issuer: text(issuer, vars) } : {}),
          ...(audience ? { audience: text(audience, vars) } : {}),
        });
        store(s, payload);
      } catch (e) {
        return failed(s, reasonOf(e));
      }
      return next;
    };
  },
};

/** Why a token or key was refused: jose's code and message (they name claims, never key material). */
function reasonOf(e: unknown): string {
  if (e instanceof InvalidJwt) return e.message;
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}
