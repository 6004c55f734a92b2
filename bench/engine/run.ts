/**
 * bench/engine: the seed registration logic's three-pass cycle, in process, through the
 * interpreter and through a hand-written TypeScript function doing the same steps with the same
 * ports (in-memory directory, in-memory registrar, real digest auth). Prints passes/s of both and
 * the ratio. Only the server side is timed: the UA's digest computation happens outside the clock.
 *
 *   node dist/bench/engine/run.js [cycles=20000] [rounds=5]
 */
import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor } from '../../engine/cd';
import { loadSlidText } from '../../engine/load';
import { runLogic } from '../../engine/run';
import { bindingView, type CallDescriptor, type Outcome, type RunContext, type Scalar } from '../../engine/types';
import { builtinRegistry } from '../../nodes';
import { realmOf } from '../../nodes/authenticate';
import { computeResponse, createDigestAuth, ha1, parseDigestCredentials } from '../../services/auth';
import { createMemoryDirectory } from '../../services/directory/memory';
import type { DirectoryQuery } from '../../services/directory/types';
import { createMemoryLocationStore } from '../../services/location/memory';
import { createRegistrar } from '../../services/location/registrar';

const CYCLES = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 5);
const USERS = 10000;
const user = (i: number) => `user${String(i % USERS).padStart(5, '0')}`;

function context(): RunContext {
  const customers = Array.from({ length: USERS }, (_, i) => ({
    id: i + 1,
    name: `PBX ${i}`,
    username: user(i),
    password: `pw-${user(i)}`,
    aor: `${user(i)}@example.test`,
  }));
  return {
    directory: createMemoryDirectory({ 'registration.customers': customers }),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'bench-secret-0123456789abcdef' }),
    clock: { now: Date.now },
  };
}

function register(i: number, cseq: number, authorization?: string): CallDescriptor {
  const u = user(i);
  const headers: Record<string, string> = {
    from: `<sip:${u}@example.test>;tag=${i}`,
    to: `<sip:${u}@example.test>`,
    'call-id': `bench-${i}`,
    cseq: `${cseq} REGISTER`,
    contact: `<sip:${u}@127.0.0.1:${5000 + (i % 1000)}>`,
    expires: '3600',
  };
  if (authorization) headers.authorization = authorization;
  return buildCallDescriptor(
    { requestMethod: 'REGISTER', requestURI: 'sip:example.test', sourceAddress: '127.0.0.1', sourcePort: 5071, headers },
    { credentials: parseDigestCredentials },
  );
}

/** What the UA does with the challenge (not timed). */
function answer(i: number, realm: string, nonce: string): string {
  const u = user(i);
  const response = computeResponse({
    algorithm: 'MD5',
    ha1: ha1('MD5', u, realm, `pw-${u}`),
    nonce,
    nc: '00000001',
    cnonce: `c${i}`,
    qop: 'auth',
    method: 'REGISTER',
    uri: 'sip:example.test',
  });
  return `Digest username="${u}", realm="${realm}", nonce="${nonce}", uri="sip:example.test", response="${response}", cnonce="c${i}", nc=00000001, qop=auth, algorithm=MD5`;
}

// ---------------------------------------------------------------- the hand-written equivalent

const QUERY: Omit<DirectoryQuery, 'conditions'> = {
  tables: ['registration.customers'],
  fields: ['customers.password', 'customers.name'],
  joins: [],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
};

/** The seed logic written by hand: the same steps, ports and outcomes, no interpreter. */
async function handWritten(cd: CallDescriptor, ctx: RunContext): Promise<Outcome> {
  const vars = cd.vars;
  for (let pass = 0; pass < 3; pass++) {
    if (vars.authStatus === 1) {
      const h = cd.headers;
      const now = new Date(ctx.clock.now());
      const result = await ctx.location.register({
        username: String(vars.toUsername),
        domain: null,
        contacts: h.contact ?? [],
        expiresHeader: h.expires?.[0] ?? null,
        callId: String(vars.callId),
        cseq: Number.parseInt(h.cseq[0], 10),
        userAgent: h['user-agent']?.[0] ?? '',
        received: `sip:${vars.sourceAddress}:${vars.sourcePort}`,
        socket: null,
        path: null,
        now,
      });
      return {
        kind: 'register',
        status: result.status,
        reason: result.reason,
        aor: String(vars.toUsername),
        bindings: result.bindings.map((b) => bindingView(b, now)),
      };
    }
    const rows = await ctx.directory.query({
      ...QUERY,
      conditions: [{ field: 'customers.username', operator: 'is', value: (vars.authUsername ?? null) as Scalar }],
    });
    if (rows.length) {
      vars.password = rows[0]['customers.password'];
      vars.customer_name = rows[0]['customers.name'];
    }
    const realm = realmOf({
      cd,
      ctx,
      set: () => undefined,
      get: () => null,
      authenticated: null,
      authenticate: () => undefined,
      ownedRead: null,
      noteOwnedRead: () => undefined,
    });
    const now = ctx.clock.now();
    const value = cd.headers.authorization?.[0];
    const creds = value ? ctx.auth.parseCredentials(value) : null;
    let stale = false;
    if (creds && creds.realm === realm && typeof vars.password === 'string') {
      const r = ctx.auth.verify({
        credentials: creds,
        method: 'REGISTER',
        password: vars.password,
        isHa1: false,
        realm,
        now,
        requestUri: cd.requestUri ?? null,
      });
      if (r === 'ok') {
        vars.authStatus = 1;
        continue;
      }
      stale = r === 'stale';
    }
    const ch = ctx.auth.challenge(realm, stale, now);
    return {
      kind: 'challenge',
      status: 401,
      header: 'WWW-Authenticate',
      realm,
      nonce: ch.nonce,
      qop: ch.qop,
      algorithm: ch.algorithms[0],
      stale,
      challenges: ch.headerValues,
    };
  }
  return { kind: 'error', status: 500, reason: 'too many restarts' };
}

// ---------------------------------------------------------------- measurement

type Handler = (cd: CallDescriptor, ctx: RunContext) => Promise<Outcome>;

/** Runs `cycles` REGISTER cycles (challenge, then authenticated REGISTER); returns timed ns. */
async function measure(handle: Handler, cycles: number, offset: number): Promise<number> {
  const ctx = context();
  let ns = 0n;
  for (let k = 0; k < cycles; k++) {
    const i = offset + k;
    const first = register(i, 1);
    let t = process.hrtime.bigint();
    const challenge = await handle(first, ctx);
    ns += process.hrtime.bigint() - t;
    if (challenge.kind !== 'challenge') throw new Error(`cycle ${i}: expected a challenge, got ${challenge.kind}`);
    const second = register(i, 2, answer(i, challenge.realm, challenge.nonce));
    t = process.hrtime.bigint();
    const done = await handle(second, ctx);
    ns += process.hrtime.bigint() - t;
    if (done.kind !== 'register' || done.status !== 200) throw new Error(`cycle ${i}: expected 200, got ${JSON.stringify(done)}`);
  }
  return Number(ns);
}

async function main() {
  const file = path.join(__dirname, '../../../flows/registration.slid');
  const loaded = loadSlidText(readFileSync(file, 'utf8'), 'registration.slid', builtinRegistry());
  if (!loaded.service) throw new Error('seed logic did not load');
  const service = loaded.service;
  const interpreted: Handler = async (cd, ctx) => (await runLogic(service, '24', cd, ctx)).outcome;

  await measure(interpreted, 2000, 0); // warm-up (JIT)
  await measure(handWritten, 2000, 0);
  const rate = (ns: number) => (CYCLES * 3) / (ns / 1e9); // a cycle is three passes of the logic
  const results: Array<[number, number]> = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate the order so neither side always runs on a warmer heap
    const a = r % 2 === 0 ? await measure(interpreted, CYCLES, r * CYCLES) : 0;
    const b = await measure(handWritten, CYCLES, r * CYCLES);
    const a2 = r % 2 === 1 ? await measure(interpreted, CYCLES, r * CYCLES) : a;
    results.push([rate(a2), rate(b)]);
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const interp = median(results.map((x) => x[0]));
  const hand = median(results.map((x) => x[1]));
  console.log(`bench/engine: seed registration logic, ${CYCLES} REGISTER cycles × ${ROUNDS} rounds (3 passes each), ${USERS} users, in-memory ports`);
  console.log(`round  interpreter passes/s  hand-written passes/s  ratio`);
  results.forEach(([i, h], r) =>
    console.log(`${String(r + 1).padStart(5)}  ${i.toFixed(0).padStart(20)}  ${h.toFixed(0).padStart(21)}  ${(h / i).toFixed(3)}`),
  );
  console.log(
    `median interpreter ${interp.toFixed(0)} passes/s, hand-written ${hand.toFixed(0)} passes/s, hand-written/interpreter = ${(hand / interp).toFixed(3)} (target ≤ 1.1)`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
