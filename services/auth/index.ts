/**
 * Digest authentication port (RFC 7616; RFC 8760 for SIP's algorithm negotiation) with stateless
 * nonces (nonce.ts) and nonce-count replay protection (nonce-count.ts).
 *
 * verify() answers 'bad' — the request is challenged again, and counts as a failed
 * authentication — for credentials of another realm, an algorithm not offered, a forged nonce, a
 * digest `uri` that does not designate the Request-URI of the received message (uri.ts), a
 * malformed qop/nc/cnonce, a wrong response, or a replayed nonce-count. It answers 'stale' only
 * when the response is right but the nonce is no longer accepted: expired (nonce lifetime, default
 * 300 s from its issue), issued before this process's boot epoch (`bootEpoch`, see nonce.ts), or
 * its count evicted from a full table. Credentials holding a NUL, another control character or an
 * invalid byte never get here: the parser refuses them (credentials.ts).
 */
import { computeResponse, DIGEST_ALGORITHMS, ha1, hashName, isSess, normalizeAlgorithm, responsesEqual } from './digest';
import { parseDigestCredentials } from './credentials';
import { StatelessNonces } from './nonce';
import { NonceCounter, type NonceCountTable } from './nonce-count';
import { secretFromString } from './secret';
import { digestUriMatches } from './uri';
import type { AuthPort, Challenge, DigestAlgorithm, VerifyRequest, VerifyResult } from './types';

export * from './types';
export { parseDigestCredentials, hasInvalidChar } from './credentials';
export { digestUriMatches } from './uri';
export { computeResponse, ha1, sessHa1, responsesEqual, normalizeAlgorithm, DIGEST_ALGORITHMS } from './digest';
export type { ResponseInput } from './digest';
export { StatelessNonces, DEFAULT_NONCE_LIFETIME_SEC, DEFAULT_MAX_SKEW_MS, localClockDomain } from './nonce';
export type { NonceStatus, NonceOptions } from './nonce';
export { NonceCounter, DEFAULT_MAX_TRACKED_NONCES } from './nonce-count';
export type { CountCheck, NonceCountTable } from './nonce-count';
export { SharedNonceCounter, DEFAULT_SHARED_NONCE_SLOTS } from './shared-nonce-count';
export { loadOrCreateSecret, resolveSecret, secretFromString } from './secret';

export interface DigestAuthOptions {
  /** Shared by every instance. A string goes through secretFromString (hex decoded, else UTF-8). */
  secret: Buffer | string;
  nonceLifetimeSec?: number;
  /** Offered and accepted algorithms (default ['MD5']). */
  algorithms?: DigestAlgorithm[];
  qop?: 'auth';
  /** Cap of the default per-thread nonce-count table (ignored with `nonceCounts`). */
  maxTrackedNonces?: number;
  /**
   * Nonce-count table (default: a new NonceCounter, this thread only). With SIP in several
   * threads, pass a SharedNonceCounter attached to one buffer in every thread.
   */
  nonceCounts?: NonceCountTable;
  /**
   * Tolerated clock skew between instances for nonce issue times (default 5000 ms): a nonce dated
   * further in the future is forged; another machine's nonce issued up to this long before
   * `bootEpoch` is still accepted (nonce.ts).
   */
  maxSkewMs?: number;
  /**
   * When this process started (ms, Date.now()): nonces issued before it are answered stale, which
   * closes the one replay a restart would allow (the nonce-counts are in memory). Give every SIP
   * thread of the process the same value. Absent: no boot check (one-shot CLI runs).
   */
  bootEpoch?: number;
  /** The clock that dates this issuer's nonces (default this machine's; tests only). */
  clockDomain?: string;
}

/** Offer order: stronger hash first (RFC 8760 §2.4 / RFC 7616 §3.7), plain before -sess. */
const PREFERENCE: readonly DigestAlgorithm[] = ['SHA-256', 'SHA-256-sess', 'MD5', 'MD5-sess'];

/** Exactly 8 hex digits, as RFC 7616 §3.4 specifies the nc-value. */
const NC_RE = /^[0-9a-fA-F]{8}$/;
const MD5_HEX_RE = /^[0-9a-fA-F]{32}$/;

/** realm is a quoted-string: escape the two characters that would end or break it. */
const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

export function createDigestAuth(opts: DigestAuthOptions): AuthPort {
  const secret = typeof opts.secret === 'string' ? secretFromString(opts.secret) : opts.secret;
  const nonces = new StatelessNonces(secret, {
    lifetimeSec: opts.nonceLifetimeSec,
    maxSkewMs: opts.maxSkewMs,
    bootEpoch: opts.bootEpoch,
    clockDomain: opts.clockDomain,
  });
  const counter: NonceCountTable = opts.nonceCounts ?? new NonceCounter(opts.maxTrackedNonces);
  const qop = opts.qop ?? 'auth';
  const configured = opts.algorithms ?? ['MD5'];
  if (configured.length === 0) throw new Error('at least one digest algorithm must be configured');
  for (const a of configured) if (!DIGEST_ALGORITHMS.includes(a)) throw new Error(`unsupported digest algorithm ${String(a)}`);
  const algorithms = PREFERENCE.filter((a) => configured.includes(a));

  function challenge(realm: string, stale: boolean, now: number): Challenge {
    const nonce = nonces.issue(realm, now);
    const headerValues = algorithms.map(
      (alg) => `Digest realm=${quote(realm)}, nonce="${nonce}", qop="${qop}", algorithm=${alg}${stale ? ', stale=true' : ''}`,
    );
    return { realm, nonce, qop, stale, algorithms: [...algorithms], headerValues };
  }

  function verify(req: VerifyRequest): VerifyResult {
    const c = req.credentials;
    // The realm is part of HA1 and of the nonce MAC; credentials for another realm never pass.
    if (!c || c.realm !== req.realm) return 'bad';
    const alg = normalizeAlgorithm(c.algorithm);
    if (!alg || !algorithms.includes(alg)) return 'bad';
    // The response hashes the credentials' uri, not the request line: credentials computed for one
    // Request-URI must not pass with another (RFC 7616 §3.4.6).
    if (req.requestUri === null || !digestUriMatches(c.uri, req.requestUri)) return 'bad';

    const nonceStatus = nonces.check(c.nonce, req.realm, req.now);
    if (nonceStatus === 'invalid') return 'bad';

    // Shape of the qop parameters: checked before hashing so computeResponse never throws.
    let clientQop: 'auth' | 'auth-int' | undefined;
    if (c.qop !== undefined) {
      const q = c.qop.toLowerCase();
      if (q !== 'auth' && q !== 'auth-int') return 'bad';
      if (c.nc === undefined || !NC_RE.test(c.nc) || c.cnonce === undefined) return 'bad';
      if (parseInt(c.nc, 16) === 0) return 'bad'; // nc counts from 00000001 (RFC 7616 §3.4)
      clientQop = q;
    }
    if (isSess(alg) && c.cnonce === undefined) return 'bad';

    let baseHa1: string | undefined;
    if (req.isHa1) {
      // A stored HA1 is MD5(username:realm:password). SHA-256 digests need SHA-256(username:
      // realm:password), which cannot be derived from an MD5 hash without the password, so an
      // HA1-only account can authenticate with MD5/MD5-sess only.
      if (hashName(alg) !== 'md5' || !MD5_HEX_RE.test(req.password)) return 'bad';
      baseHa1 = req.password.toLowerCase();
    } else {
      // Computed each time: one hash of a few dozen bytes costs less than a cache lookup and set,
      // and no table holds clear-text passwords as keys.
      baseHa1 = ha1(alg, c.username, c.realm, req.password);
    }

    const expected = computeResponse({
      algorithm: alg,
      ha1: baseHa1,
      nonce: c.nonce,
      nc: c.nc,
      cnonce: c.cnonce,
      qop: clientQop,
      method: req.method,
      uri: c.uri,
      body: req.body,
    });
    if (!responsesEqual(expected, c.response)) return 'bad';
    // Right password, old nonce (expired, or issued before this process started and so possibly
    // used already): stale=true lets the UA retry with a new nonce silently.
    if (nonceStatus === 'expired' || nonceStatus === 'predates-boot') return 'stale';

    const issuedAt = nonces.issuedAt(c.nonce) as number; // well-formed: check() passed
    const nc = clientQop ? parseInt(c.nc as string, 16) : null;
    // Nonces are deterministic in (ms, realm), so UAs challenged in the same millisecond share
    // one: count per (nonce, username) so they do not look like replays of each other. A replay
    // cannot change the username without breaking the response (it is inside HA1). The nonce has a
    // fixed length and no space, so the key is unambiguous.
    const key = `${c.nonce} ${c.username}`;
    const count = counter.check(key, nc, issuedAt);
    if (count === 'replay') return 'bad';
    if (count === 'forgotten') return 'stale'; // count evicted by the cap: force a fresh nonce
    // Recorded only now, after the response verified: a wrong guess must not burn the nc.
    // Check-and-set: with a table shared by threads, another thread may have verified the same
    // nc since check() (a replay sent to both at once); only one of them gets 'fresh'.
    const recorded = counter.record(key, nc, issuedAt, issuedAt + nonces.lifetimeMs, req.now);
    if (recorded === 'replay') return 'bad';
    if (recorded === 'forgotten') return 'stale';
    return 'ok';
  }

  return { parseCredentials: parseDigestCredentials, challenge, verify };
}
