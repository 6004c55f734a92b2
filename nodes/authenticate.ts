import type { NodeType, Restart, RunState } from '../engine/node-type';
import { parseNameAddr, parseUri } from '../grammar/sip-values';
import type { ChallengeOutcome } from '../engine/types';
import type { DigestCredentials } from '../engine/ports';
import { finish, flag, isSet } from './common';

interface Values {
  password: string;
  ha1?: boolean | string | number | null;
}

const RESTART: Restart = { restart: true };

/** The realm: the configured domain, else the host of the From URI (as the registrar technical note does). */
export function realmOf(s: RunState): string {
  if (s.ctx.realm) return s.ctx.realm;
  const from = s.cd.vars.fromURI ?? s.cd.headers.from?.[0];
  if (typeof from === 'string') {
    const uri = from.includes('<') ? (parseNameAddr(from)?.uri ?? from) : from;
    const host = parseUri(uri)?.host;
    if (host) return host;
  }
  return 'sipflow';
}

/**
 * The Request-URI the digest `uri` must designate: the one received (cd.requestUri, set by the CD
 * builders and out of the logic's reach), else — a call descriptor built by hand — the variable.
 */
function requestUriOf(s: RunState): string | null {
  if (s.cd.requestUri !== undefined) return s.cd.requestUri;
  const v = s.cd.vars.requestURI;
  return typeof v === 'string' ? v : null;
}

/** Credentials for this realm: Authorization for REGISTER, Proxy-Authorization for other methods. */
function credentialsFor(s: RunState, isRegister: boolean, realm: string): DigestCredentials | null {
  const values = s.cd.headers[isRegister ? 'authorization' : 'proxy-authorization'];
  if (!values) return null;
  const known = s.cd.credentials;
  for (const value of values) {
    // the CD builder parsed the first header already (engine/cd.ts)
    const creds = known !== undefined && known.header === value ? known.parsed : s.ctx.auth.parseCredentials(value);
    if (creds && creds.realm === realm) return creds;
  }
  return null;
}

/**
 * Verifies the digest credentials of the message against the password read by an earlier node.
 * Valid: authStatus = 1 and the logic restarts from its start (SRE's re-entry). Otherwise the
 * message is challenged (401 for REGISTER, 407 for other requests), stale=true on an expired nonce.
 */
export const authenticateNode: NodeType<Values> = {
  type: 'output.nit.registrar.authenticate',
  title: 'Authenticate',
  summary: 'digest authentication{if password} (password {password}){end}{if ha1} (HA1 {ha1}){end}',
  category: 'registrar',
  description:
    'Checks the digest response with the password (clear text or HA1); challenges when missing or wrong, restarts the logic with authStatus = 1 when valid.',
  authenticates: true,
  valuesSchema: {
    type: 'object',
    required: ['password'],
    properties: {
      password: { type: 'string', minLength: 1, 'x-var': true, 'x-secret': true, description: 'variable holding the password' },
      ha1: { ...flag, description: 'password in HA1 format (MD5 of username:realm:password)' },
    },
  },
  compile(values, c) {
    const password = c.value(values.password);
    const isHa1 = isSet(values.ha1);
    return (s) => {
      const vars = s.cd.vars;
      const isRegister = vars.requestMethod === 'REGISTER';
      const realm = realmOf(s);
      const now = s.ctx.clock.now();
      const creds = credentialsFor(s, isRegister, realm);
      const pw = password(vars);
      let stale = false;
      if (creds && pw !== null && !Array.isArray(pw) && pw !== '') {
        const result = s.ctx.auth.verify({
          credentials: creds,
          method: String(vars.requestMethod ?? ''),
          password: String(pw),
          isHa1,
          realm,
          body: s.cd.body,
          now,
          requestUri: requestUriOf(s),
        });
        if (result === 'ok') {
          s.authenticate(creds.username);
          s.set('authStatus', 1);
          return RESTART;
        }
        stale = result === 'stale';
      }
      const ch = s.ctx.auth.challenge(realm, stale, now);
      const outcome: ChallengeOutcome = {
        kind: 'challenge',
        status: isRegister ? 401 : 407,
        header: isRegister ? 'WWW-Authenticate' : 'Proxy-Authenticate',
        realm: ch.realm,
        nonce: ch.nonce,
        qop: ch.qop,
        algorithm: ch.algorithms[0],
        stale: ch.stale,
        challenges: ch.headerValues,
      };
      return finish(outcome);
    };
  },
};
