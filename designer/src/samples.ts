/** Sample call descriptors for the simulation, and the UA side of digest authentication (RFC 7616, MD5, qop=auth). */
import { md5 } from 'js-md5';

export interface Sample {
  id: string;
  label: string;
  cd: Record<string, unknown>;
  answerChallenge?: boolean;
}

/** The REGISTER of the registrar technical note the project comes from (section 6.3; see docs/flows.md). */
const register = (): Record<string, unknown> => ({
  requestMethod: 'REGISTER',
  requestURI: 'sip:10.1.10.163',
  sourceAddress: '10.1.10.89',
  sourcePort: 57806,
  transport: 'udp',
  destinationAddress: '10.1.10.163',
  destinationPort: 5060,
  headers: {
    Via: 'SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKPj62qlaectRdDtGIG2v4tF0kLTFQm2INSK',
    From: '"Francesco" <sip:francesco@nl.netaxis.be>;tag=RHuIK7Em8vPmIAFR8XdsAKf8cZIDZL',
    To: '"Francesco" <sip:francesco@nl.netaxis.be>',
    'Call-ID': 'X-by3boX112NeNE11ay4K5dFUHXy3f3F',
    CSeq: '62650 REGISTER',
    'User-Agent': 'Telephone 1.0',
    Contact: '"Francesco" <sip:francesco@10.1.10.89:57806;ob>',
    Expires: '300',
  },
});

const invite = (): Record<string, unknown> => ({
  requestMethod: 'INVITE',
  requestURI: 'sip:+3225551234@10.1.10.163',
  sourceAddress: '10.1.10.89',
  sourcePort: 57806,
  transport: 'udp',
  destinationAddress: '10.1.10.163',
  destinationPort: 5060,
  headers: {
    Via: 'SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKPjinvite0001',
    From: '"Francesco" <sip:francesco@nl.netaxis.be>;tag=inv0001',
    To: '<sip:+3225551234@nl.netaxis.be>',
    'Call-ID': 'invite-sample-0001',
    CSeq: '1 INVITE',
    Contact: '<sip:francesco@10.1.10.89:57806;ob>',
    'Content-Type': 'application/sdp',
  },
});

export const SAMPLES: Sample[] = [
  { id: 'register-auth', label: 'REGISTER with credentials (3 passes)', cd: register(), answerChallenge: true },
  { id: 'register', label: 'REGISTER (no credentials)', cd: register() },
  { id: 'invite', label: 'INVITE', cd: invite() },
];

/** `Digest realm="x", nonce="y", qop="auth"` → { realm: 'x', nonce: 'y', qop: 'auth' } */
export function parseChallenge(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g;
  const s = header.replace(/^\s*Digest\s+/i, '');
  for (let m = re.exec(s); m; m = re.exec(s)) out[m[1].toLowerCase()] = m[2] !== undefined ? m[2] : m[3];
  return out;
}

/** The Authorization header a UA answers a challenge with. */
export function answerChallenge(
  challenge: string,
  o: { username: string; password: string; method: string; uri: string; nc?: number; cnonce?: string },
): string {
  const p = parseChallenge(challenge);
  const realm = p.realm ?? '';
  const nonce = p.nonce ?? '';
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = o.cnonce ?? Math.random().toString(16).slice(2, 10);
  const ha1 = md5(`${o.username}:${realm}:${o.password}`);
  const ha2 = md5(`${o.method}:${o.uri}`);
  const qop = (p.qop ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('auth')
    ? 'auth'
    : '';
  const response = qop ? md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
  const parts = [`username="${o.username}"`, `realm="${realm}"`, `nonce="${nonce}"`, `uri="${o.uri}"`, `response="${response}"`, 'algorithm=MD5'];
  if (p.opaque !== undefined) parts.push(`opaque="${p.opaque}"`);
  if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce="${cnonce}"`);
  return `Digest ${parts.join(', ')}`;
}
