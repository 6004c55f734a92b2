/**
 * bench/sip/pipeline: one SIP thread's work per call of the SIP bench's scenario, in process, with no
 * socket and no thread hand-off. A FrontEnd built as server/sip-threads/sip-thread.ts builds it
 * (listenerFrontEndOptions of the default configuration, flows/pbx.slid, digest auth with the shared
 * nonce-count table, the directory cache and the AoR ownership check over it, the registrar on the
 * memory store) takes the kit's two REGISTERs per call (bench/sip/kamailio/register_auth.xml: 401,
 * then credentials and 200) from a sender that keeps what it is given.
 *
 * Why: `npm run bench:sip` measures the whole registrar on a shared 2-core machine, where a change
 * of 5 % of the CPU per call is lost in the noise between steps. This measures the part of each
 * call that is sipflow's own JavaScript (parsing, transactions, call descriptor, logic, auth,
 * registrar, serialising) on one core with nothing else running, so two builds compare to a
 * percent (run the two in turn, several times, and compare medians). Not measured here: sendto, receiving,
 * dispatch and the worker ↔ main thread hand-off (docs/performance.md "Where the time goes").
 *
 * CPU time (process.cpuUsage) of whole rounds, the server's garbage collection included, less the
 * UA's part (building its REGISTERs, computing the digest responses) measured alone before each
 * round.
 *
 *   node dist/bench/sip/pipeline.js [--calls 20000] [--rounds 5] [--batch 64] [--users 10000]
 */
import { readFileSync } from 'fs';
import path from 'path';
import { parseArgs } from 'node:util';
import { loadSlidText } from '../../engine/load';
import { builtinRegistry } from '../../nodes';
import { computeResponse, createDigestAuth, ha1, SharedNonceCounter } from '../../services/auth';
import { createCachedDirectory } from '../../services/directory/cache';
import { createMemoryDirectory } from '../../services/directory/memory';
import { ownershipFor } from '../../services/directory/ownership';
import { createMemoryLocationStore } from '../../services/location/memory';
import { createRegistrar } from '../../services/location/registrar';
import { configSchema } from '../../server/config';
import { listenerFrontEndOptions } from '../../server/sip-server';
import { FrontEnd } from '../../sip/front-end';
import type { Peer, SipSender } from '../../sip/transport';

const { values: opt } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    batch: { type: 'string', default: '64' },
    users: { type: 'string', default: '10000' },
  },
});
const CALLS = Number(opt.calls);
const ROUNDS = Number(opt.rounds);
const BATCH = Number(opt.batch);
const USERS = Number(opt.users);
for (const [name, v] of Object.entries({ calls: CALLS, rounds: ROUNDS, batch: BATCH, users: USERS }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);

const REALM = 'example.test';
const user = (i: number) => `user${String(i % USERS).padStart(5, '0')}`;
const password = (i: number) => `pw-${user(i)}`;

// ---------------------------------------------------------------- the server side, as a SIP thread builds it

const config = configSchema.parse({ sip: { domain: REALM } });
const slid = readFileSync(path.join(__dirname, '../../../flows/pbx.slid'), 'utf8');
const service = loadSlidText(slid, 'pbx.slid', builtinRegistry()).service!;
const memoryDirectory = createMemoryDirectory({
  'registration.customers': Array.from({ length: USERS }, (_, i) => ({
    id: i + 1,
    name: `PBX ${i}`,
    username: user(i),
    password: password(i),
    aor: `${user(i)}@${REALM}`,
  })),
});
// a SIP thread caches over its remote directory the same way (server/sip-threads/sip-thread.ts)
const directory = createCachedDirectory({ ...memoryDirectory, refreshSchema: () => memoryDirectory.schema(), close: async () => undefined }, { ttlSec: 3600 });
const ctx = {
  directory,
  ownership: ownershipFor(directory, config.registrar.ownership),
  location: createRegistrar(createMemoryLocationStore()),
  auth: createDigestAuth({ secret: Buffer.from('bench-secret-0123456789abcdef'), nonceCounts: new SharedNonceCounter(SharedNonceCounter.create()) }),
  clock: { now: Date.now },
  realm: REALM,
};

let answered: Buffer[] = [];
let waiting: { n: number; resolve(): void } | null = null;
const sender: SipSender = {
  advertised: '127.0.0.1',
  ports: new Map([['udp', 5060]]),
  send: (bytes) => {
    answered.push(bytes);
    if (waiting && answered.length >= waiting.n) waiting.resolve();
  },
};
const fe = new FrontEnd(
  sender,
  listenerFrontEndOptions(
    config,
    { name: 'udp', advertise: undefined },
    {
      service,
      resolve: (ref) => {
        const l = service.find(ref);
        return l ? { service, logic: l.id } : undefined;
      },
      ctx,
    },
  ),
);
const local = { proto: 'udp', address: '127.0.0.1', port: 5060 };
const ua: Peer = { proto: 'udp', address: '127.0.0.1', port: 5071 };

// ---------------------------------------------------------------- the UA side (not the server's work)

function register(call: number, cseq: number, authorization?: string): Buffer {
  const u = user(call);
  return Buffer.from(
    `REGISTER sip:${REALM} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-${process.pid}-${call}-${cseq}\r\n` +
      'Max-Forwards: 70\r\n' +
      `From: <sip:${u}@${REALM}>;tag=${process.pid}SIPpTag00${call}\r\n` +
      `To: <sip:${u}@${REALM}>\r\n` +
      `Call-ID: ${call}-${process.pid}@127.0.0.1\r\n` +
      `CSeq: ${cseq} REGISTER\r\n` +
      `Contact: <sip:${u}@127.0.0.1:5071>\r\n` +
      (authorization ? `${authorization}\r\n` : '') +
      'Expires: 3600\r\nUser-Agent: sipp-bench\r\nContent-Length: 0\r\n\r\n',
  );
}

const NONCE = /nonce="([^"]+)"/;
const OPAQUE = /opaque="([^"]+)"/;
function credentials(call: number, challenge: Buffer): string {
  const text = challenge.toString('latin1');
  if (!text.startsWith('SIP/2.0 401')) throw new Error(`call ${call}: expected a 401, got ${text.slice(0, 40)}`);
  const nonce = NONCE.exec(text)![1];
  const opaque = OPAQUE.exec(text)?.[1];
  const cnonce = `c${call}`;
  const u = user(call);
  const response = computeResponse({
    algorithm: 'MD5',
    ha1: ha1('MD5', u, REALM, password(call)),
    nonce,
    nc: '00000001',
    cnonce,
    qop: 'auth',
    method: 'REGISTER',
    uri: `sip:${REALM}`,
  });
  return (
    `Authorization: Digest username="${u}",realm="${REALM}",uri="sip:${REALM}",nonce="${nonce}",` +
    `${opaque ? `opaque="${opaque}",` : ''}response="${response}",algorithm=MD5,cnonce="${cnonce}",qop=auth,nc=00000001`
  );
}

// ---------------------------------------------------------------- timing

/** Hands `requests` to the front end and waits for as many answers (the logic's store calls resolve in microtasks). */
async function serve(requests: Buffer[]): Promise<Buffer[]> {
  answered = [];
  const done = new Promise<void>((resolve) => (waiting = { n: requests.length, resolve }));
  for (const r of requests) fe.onMessage(r, ua, local);
  if (answered.length < requests.length) await done;
  waiting = null;
  return answered;
}

const cpuMicros = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

let nextCall = 0;
/** `calls` calls in batches of BATCH, the UA's part included; returns the CPU µs of it all. */
async function drive(calls: number): Promise<number> {
  const t = cpuMicros();
  for (let done = 0; done < calls; done += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, calls - done) }, () => nextCall++);
    const challenges = await serve(ids.map((i) => register(i, 1)));
    const finals = await serve(ids.map((i, k) => register(i, 2, credentials(i, challenges[k]))));
    for (let k = 0; k < finals.length; k++) {
      if (!finals[k].toString('latin1', 0, 12).startsWith('SIP/2.0 200'))
        throw new Error(`call ${ids[k]}: expected 200, got ${finals[k].toString('latin1', 0, 60)}`);
    }
  }
  return cpuMicros() - t;
}

/**
 * The UA's part of `calls` calls alone (building both REGISTERs, answering a challenge), CPU µs:
 * subtracted from drive's, so the clock is read per round, not per batch (a process.cpuUsage
 * read costs ≈ 6 µs here, as much as a tenth of a call).
 */
function uaPart(calls: number, challenge: Buffer): number {
  const t = cpuMicros();
  for (let i = 0; i < calls; i++) {
    register(i, 1);
    register(i, 2, credentials(i, challenge));
  }
  return cpuMicros() - t;
}

async function main(): Promise<void> {
  // warm-up: every user registered once (caches full, as the SIP bench's priming), the JIT settled
  await drive(Math.max(USERS, 20000));
  const challenge = (await serve([register(nextCall++, 1)]))[0];
  uaPart(CALLS, challenge);
  const perCall: number[] = [];
  const uaPerCall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ua = uaPart(CALLS, challenge);
    uaPerCall.push(ua / CALLS);
    perCall.push(((await drive(CALLS)) - ua) / CALLS);
  }
  const sorted = [...perCall].sort((a, b) => a - b);
  console.log(`pipeline: ${CALLS} calls × ${ROUNDS} rounds, batches of ${BATCH}, ${USERS} users`);
  console.log(`the UA's part, measured alone and subtracted (µs per call): ${uaPerCall.map((x) => x.toFixed(1)).join(' ')}`);
  console.log(
    `server CPU per call (µs): best ${sorted[0].toFixed(1)}, median ${sorted[Math.floor(ROUNDS / 2)].toFixed(1)}; rounds ${perCall.map((x) => x.toFixed(1)).join(' ')}`,
  );
  fe.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
