/** What a UA does with a challenge: builds the Authorization header value (RFC 7616, MD5, qop=auth). */
import { computeResponse, ha1 } from '../../services/auth';
import { parseParams } from '../../grammar/sip-values';

export function answerChallenge(
  challenge: string,
  o: { username: string; password: string; method: string; uri: string; nc?: number; cnonce?: string },
): string {
  const p = parseParams(challenge.replace(/^Digest\s+/i, '').replace(/,\s*/g, ';'));
  const realm = p.realm ?? '';
  const nonce = p.nonce ?? '';
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = o.cnonce ?? 'c0ffee';
  const response = computeResponse({
    algorithm: 'MD5',
    ha1: ha1('MD5', o.username, realm, o.password),
    nonce,
    nc,
    cnonce,
    qop: 'auth',
    method: o.method,
    uri: o.uri,
  });
  return `Digest username="${o.username}", realm="${realm}", nonce="${nonce}", uri="${o.uri}", response="${response}", cnonce="${cnonce}", nc=${nc}, qop=auth, algorithm=MD5`;
}

/** The registrar technical note's REGISTER (section 6.3) as a call-descriptor input. */
export function sampleRegister(extraHeaders: Record<string, string> = {}): Record<string, unknown> {
  return {
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
      ...extraHeaders,
    },
  };
}
