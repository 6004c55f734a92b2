/**
 * `sipflow demo`: the registration call flow (§6.3) of the registrar technical note the project
 * comes from (see docs/flows.md), run through its logic (flows/registration.slid) on the embedded
 * directory: REGISTER → 401 → REGISTER with credentials → 200 OK.
 */
import path from 'path';
import { readFileSync } from 'fs';
import { buildCallDescriptor } from '../engine/cd';
import { formatProblem, loadSlidText } from '../engine/load';
import { runLogic } from '../engine/run';
import { builtinRegistry } from '../nodes';
import { computeResponse, ha1, parseDigestCredentials } from '../services/auth';
import { SAMPLE_SUBSCRIBER } from '../services/directory';
import { openRuntime } from '../server/runtime';
import { shippedFlowsDir } from '../server/flows';

function register(extra: Record<string, string>) {
  return {
    requestMethod: 'REGISTER',
    requestURI: 'sip:10.1.10.163',
    sourceAddress: '10.1.10.89',
    sourcePort: 57806,
    transport: 'udp',
    destinationAddress: '10.1.10.163',
    destinationPort: 5060,
    headers: {
      From: '"Francesco" <sip:francesco@nl.netaxis.be>;tag=RHuIK7Em8vPmIAFR8XdsAKf8cZIDZL',
      To: '"Francesco" <sip:francesco@nl.netaxis.be>',
      'Call-ID': 'X-by3boX112NeNE11ay4K5dFUHXy3f3F',
      'User-Agent': 'Telephone 1.0',
      Contact: '"Francesco" <sip:francesco@10.1.10.89:57806;ob>',
      Expires: '300',
      ...extra,
    },
  };
}

export async function runDemo(o: { dataDir: string; directoryUrl: string }): Promise<void> {
  const file = path.join(shippedFlowsDir(), 'registration.slid');
  const loaded = loadSlidText(readFileSync(file, 'utf8'), 'registration.slid', builtinRegistry());
  if (!loaded.service) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  const rt = await openRuntime({ dataDir: o.dataDir, directoryUrl: o.directoryUrl, provision: true });
  try {
    const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });
    console.log(`sipflow demo: seed logic 24 "registration" on the embedded directory (${o.directoryUrl})\n`);
    console.log('→ REGISTER sip:10.1.10.163 (CSeq 62650, no credentials)');
    const first = await runLogic(loaded.service, '24', cdOf(register({ CSeq: '62650 REGISTER' })), rt.ctx, { trace: true });
    console.log(`   path: ${first.trace!.map((t) => `${t.nodeName} [${t.exit}]`).join(' → ')}`);
    if (first.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(first.outcome)}`);
    console.log(`← ${first.outcome.status} Unauthorized, ${first.outcome.header}: ${first.outcome.challenges[0]}\n`);

    // The UA answers the challenge (RFC 7616, MD5, qop=auth) with the sample subscriber's password.
    const { realm, nonce } = first.outcome;
    const uri = 'sip:10.1.10.163';
    const response = computeResponse({
      algorithm: 'MD5',
      ha1: ha1('MD5', SAMPLE_SUBSCRIBER.customer.username, realm, SAMPLE_SUBSCRIBER.customer.password),
      nonce,
      nc: '00000001',
      cnonce: 'd8La4h2bXfw7mp9LKant',
      qop: 'auth',
      method: 'REGISTER',
      uri,
    });
    const authorization = `Digest username="${SAMPLE_SUBSCRIBER.customer.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", cnonce="d8La4h2bXfw7mp9LKant", qop=auth, nc=00000001`;
    console.log('→ REGISTER sip:10.1.10.163 (CSeq 62651, Authorization: Digest username="francesco" …)');
    const second = await runLogic(loaded.service, '24', cdOf(register({ CSeq: '62651 REGISTER', Authorization: authorization })), rt.ctx, { trace: true });
    console.log(`   path: ${second.trace!.map((t) => `${t.nodeName} [${t.exit}]`).join(' → ')}`);
    if (second.outcome.kind !== 'register') throw new Error(`expected a registration, got ${JSON.stringify(second.outcome)}`);
    console.log(`← ${second.outcome.status} ${second.outcome.reason}`);
    for (const b of second.outcome.bindings) console.log(`   Contact: <${b.contact}>;expires=${b.expires}`);
    console.log(`\nauthStatus=${second.cd.vars.authStatus}, customer_name=${second.cd.vars.customer_name}, restarts=${second.restarts}`);
  } finally {
    await rt.close();
  }
}
