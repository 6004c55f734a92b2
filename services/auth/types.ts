/**
 * Digest authentication port (RFC 7616 / RFC 8760 for SIP). Nonces are stateless HMACs so any
 * instance verifies another's; replay protection is by nonce-count.
 */

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

/** Parsed Authorization / Proxy-Authorization credentials. */
export interface DigestCredentials {
  scheme: string; // 'Digest'
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: DigestAlgorithm | string; // as sent; unknown ones fail verification
  cnonce?: string;
  nc?: string;
  qop?: string;
  opaque?: string;
  /** Every parameter as sent (lower-case names). */
  params: Record<string, string>;
}

export interface VerifyRequest {
  credentials: DigestCredentials;
  method: string;
  /** Clear-text password, or HA1 (hex) when `isHa1`. */
  password: string;
  isHa1: boolean;
  realm: string;
  /**
   * The Request-URI of the message as received (never a variable a logic may have rewritten): the
   * credentials' `uri` must designate it (uri.ts), else the verification fails ('bad'). null when
   * the request has none known: nothing can match, the result is 'bad'.
   */
  requestUri: string | null;
  /** Body for qop=auth-int (not offered by sipflow, verified if a client uses it). */
  body?: string;
  now: number;
}

/**
 * ok; stale = right response on a nonce that is no longer accepted — expired, issued before this
 * process started (its boot epoch, nonce.ts), or whose count was evicted — so the UA retries with
 * a new nonce without asking its user (RFC 7616 stale=true); bad = wrong, replayed, forged, or
 * credentials for another realm or another Request-URI.
 */
export type VerifyResult = 'ok' | 'stale' | 'bad';

export interface Challenge {
  realm: string;
  nonce: string;
  qop: string;
  stale: boolean;
  /** Offered algorithms, most preferred first. */
  algorithms: DigestAlgorithm[];
  /** One header value per algorithm: `Digest realm="…", nonce="…", qop="auth", algorithm=MD5[, stale=true]`. */
  headerValues: string[];
}

export interface AuthPort {
  parseCredentials(headerValue: string): DigestCredentials | null;
  challenge(realm: string, stale: boolean, now: number): Challenge;
  verify(req: VerifyRequest): VerifyResult;
}
