/**
 * bench/engine routing: the shipped routing service (flows/routing.slid) in process, through the
 * interpreter and through a hand-written TypeScript function doing the same steps with the same
 * ports (trunk check, libphonenumber-js to E.164, the time condition in Europe/Brussels, the
 * customer's call limit in the per-instance limiter (services/call-limit/memory.ts; each call's slot
 * released when it is done, as the call's end would), the HTTP routing API through
 * services/http/client.ts, the gateway, fallback and carrier read from the JSON answer, the
 * carrier as a CDR field, relay with failover to the fallback). The bench's copy of the flow
 * has no per-second limit, only the concurrent one (30): the shipped 10 calls/s would refuse the
 * bench's own flood, and so did 10 000 on a machine that ran more than that in one second.
 * The routing API is a plain node:http server in a child process, so its CPU is not the
 * measured process's. Two instants:
 *  - open (Tuesday 10:00): every call asks the API: what an operator's calls cost;
 *  - closed (Tuesday 22:30): no I/O at all: the interpreter's own overhead over hand-written code.
 * Prints calls/s of both and their ratio per instant (target ≤ 1.3). The HTTP node's overhead over
 * a bare undici request is bench/engine/http-overhead.ts's.
 *
 *   node dist/bench/engine/routing.js [calls=20000] [rounds=5] [concurrency=16]
 */
import { fork, type ChildProcess } from 'child_process';
import { readFileSync } from 'fs';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import path from 'path';
import { buildCallDescriptor } from '../../engine/cd';
import { loadSlidText } from '../../engine/load';
import type { HttpPort } from '../../engine/ports';
import { runLogic } from '../../engine/run';
import type { CallDescriptor, Outcome, RunContext } from '../../engine/types';
import { builtinRegistry } from '../../nodes';
import { createDigestAuth } from '../../services/auth';
import { createMemoryDirectory } from '../../services/directory/memory';
import { createHttpClient } from '../../services/http/client';
import { createMemoryLocationStore } from '../../services/location/memory';
import { createMemoryCallLimiter } from '../../services/call-limit/memory';
import { slotHolder } from '../../engine/call-slots';
import { DEFAULT_FAILOVER_CODES, failoverCodeTable } from '../../nodes/failover';
import { createRegistrar } from '../../services/location/registrar';

const CALLS = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 5);
const CONCURRENCY = Number(process.argv[4] ?? 16);
const TRUNK = '192.0.2.10';
const OPEN = Date.parse('2026-12-01T10:00:00+01:00');
const CLOSED = Date.parse('2026-12-01T22:30:00+01:00');

// ---------------------------------------------------------------- the routing API (child process)

/** The child: answers GET /route?number=… with {"destination": "sip:<number>@gw.example", "fallback": …, "carrier": …}. */
function serveApi(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- runs in the forked child only
  const http = require('http') as typeof import('http');
  const server = http.createServer((req, res) => {
    const number = new URL(req.url ?? '/', 'http://x').searchParams.get('number') ?? '';
    const body = JSON.stringify({ destination: `sip:${number}@gw.example`, fallback: `sip:${number}@gw2.example`, carrier: 'bench' });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}

function startApi(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(__filename, ['--api'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ child, port: Number(port) }));
    child.once('exit', (code) => reject(new Error(`routing API exited ${code}`)));
  });
}

// ---------------------------------------------------------------- the two handlers

function context(http: HttpPort, now: number): RunContext {
  return {
    directory: createMemoryDirectory({}),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'bench-secret-0123456789abcdef' }),
    clock: { now: Date.now },
    calendar: { now: () => now },
    http,
    callLimits: createMemoryCallLimiter(),
  };
}

function invite(i: number): CallDescriptor {
  const called = `020${String(1000000 + (i % 9000000)).slice(-7)}`;
  return buildCallDescriptor({
    requestMethod: 'INVITE',
    requestURI: `sip:${called}@carrier.example`,
    sourceAddress: TRUNK,
    sourcePort: 5060,
    headers: { from: `<sip:+3222222222@${TRUNK}>;tag=${i}`, to: `<sip:${called}@carrier.example>`, 'call-id': `bench-${i}`, cseq: '1 INVITE' },
  });
}

const BRUSSELS = new Intl.DateTimeFormat('en-US', {
  timeZone: 'Europe/Brussels',
  weekday: 'short',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});
const HOLIDAYS = new Set(['12-25', '12-26', '01-01']);
const WORKDAYS = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri']);
const closed = (text: string): Outcome => ({
  kind: 'reply',
  status: 480,
  reason: 'Temporarily Unavailable',
  headers: { Reason: `SIP;cause=480;text="${text}"` },
});

const limitReached: Outcome = { kind: 'reply', status: 503, reason: 'Service Unavailable', headers: { Reason: 'SIP;cause=503;text="Call limit reached"' } };

/** routing.slid's steps written by hand, over the same ports. */
function handWritten(apiUrl: string) {
  const trunks = ['192.0.2.10', '192.0.2.11'];
  const codes = failoverCodeTable(DEFAULT_FAILOVER_CODES);
  return async (cd: CallDescriptor, ctx: RunContext): Promise<Outcome> => {
    if (!trunks.includes(String(cd.vars.sourceAddress))) return { kind: 'reply', status: 403, reason: 'Forbidden' };
    const customer = `trunk ${String(cd.vars.sourceAddress)}`;
    const number = parsePhoneNumberFromString(String(cd.vars.called ?? ''), 'NL');
    if (!number?.isValid()) return { kind: 'reply', status: 484, reason: 'Address Incomplete' };
    const e164 = number.format('E.164');
    const parts: Record<string, string> = {};
    for (const p of BRUSSELS.formatToParts(ctx.calendar!.now())) parts[p.type] = p.value;
    if (HOLIDAYS.has(`${parts.month}-${parts.day}`)) return closed('Closed: public holiday');
    const minutes = Number(parts.hour) * 60 + Number(parts.minute);
    if (!WORKDAYS.has(parts.weekday) || minutes < 480 || minutes >= 1080) return closed('Closed: outside business hours');
    const key = `customer:${customer}`;
    const verdict = await ctx.callLimits!.acquire(slotHolder(cd), key, { maxConcurrent: 30 }, ctx.clock.now());
    if (verdict !== 'allowed') return limitReached;
    cd.callSlots = [key];
    try {
      const answer = await ctx.http!.request({
        method: 'GET',
        url: `${apiUrl}/route?number=${encodeURIComponent(e164)}`,
        headers: { accept: 'application/json' },
        body: null,
        timeoutMs: 2000,
      });
      const route = answer.status >= 200 && answer.status < 300 ? (JSON.parse(answer.body) as Record<string, unknown>) : {};
      const { destination, fallback, carrier } = route;
      if (typeof destination !== 'string' || typeof fallback !== 'string' || typeof carrier !== 'string') throw new Error('no route');
      cd.cdrFields = { carrier };
      return { kind: 'relay', status: null, targets: [{ uri: destination }], failover: { alternatives: [[{ uri: fallback }]], codes, attemptTimeoutMs: 3000 } };
    } catch {
      return { kind: 'reply', status: 503, reason: 'Service Unavailable', headers: { Reason: 'SIP;cause=503;text="No route"' } };
    }
  };
}

// ---------------------------------------------------------------- measurement

type Handler = (cd: CallDescriptor, ctx: RunContext) => Promise<Outcome>;

/** Runs `calls` calls, `CONCURRENCY` at a time; returns calls/s. Every outcome is checked. */
async function measure(handle: Handler, ctx: RunContext, calls: number, expect: Outcome['kind']): Promise<number> {
  const cds = Array.from({ length: calls }, (_, i) => invite(i));
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < calls) {
        const cd = cds[next++];
        const outcome = await handle(cd, ctx);
        if (outcome.kind !== expect) throw new Error(`expected ${expect}, got ${JSON.stringify(outcome)}`);
        // the call ends: its slot is freed, as the releaser does on the call's BYE
        if (cd.callSlots) await ctx.callLimits!.release(slotHolder(cd), cd.callSlots);
      }
    }),
  );
  return calls / (Number(process.hrtime.bigint() - started) / 1e9);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

async function main() {
  const api = await startApi();
  const http = createHttpClient({ maxResponseBytes: 1 << 20, connectionsPerOrigin: CONCURRENCY });
  const apiUrl = `http://127.0.0.1:${api.port}`;
  try {
    const text = readFileSync(path.join(__dirname, '../../../flows/routing.slid'), 'utf8')
      .replace(/http:\/\/127\.0\.0\.1:8089/, apiUrl)
      .replace(/\s*"maxPerSecond": 10,/, '');
    if (text.includes('"maxPerSecond"')) throw new Error('flows/routing.slid: no maxPerSecond 10 to take out for the bench; update bench/engine/routing.ts');
    const loaded = loadSlidText(text, 'routing.slid', builtinRegistry());
    if (!loaded.service) throw new Error(`routing.slid did not load: ${JSON.stringify(loaded.problems)}`);
    const service = loaded.service;
    const interpreted: Handler = async (cd, ctx) => (await runLogic(service, 'routing', cd, ctx)).outcome;
    const hand = handWritten(apiUrl);

    console.log(`bench/engine routing: flows/routing.slid, ${CALLS} calls × ${ROUNDS} rounds, ${CONCURRENCY} at a time, routing API in a child process`);
    for (const [label, now, expect] of [
      ['open (HTTP API asked)', OPEN, 'relay'],
      ['closed (no I/O)', CLOSED, 'reply'],
    ] as const) {
      const ctx = context(http, now);
      await measure(interpreted, ctx, 2000, expect); // warm-up (JIT, pooled connections)
      await measure(hand, ctx, 2000, expect);
      const rows: Array<[number, number]> = [];
      for (let r = 0; r < ROUNDS; r++) {
        // alternate the order so neither side always runs on a warmer heap
        const a = r % 2 === 0 ? await measure(interpreted, ctx, CALLS, expect) : 0;
        const b = await measure(hand, ctx, CALLS, expect);
        rows.push([r % 2 === 1 ? await measure(interpreted, ctx, CALLS, expect) : a, b]);
      }
      const i = median(rows.map((x) => x[0]));
      const h = median(rows.map((x) => x[1]));
      console.log(`${label}: round  interpreter calls/s  hand-written calls/s  ratio`);
      rows.forEach(([ri, rh], r) =>
        console.log(`${String(r + 1).padStart(5)}  ${ri.toFixed(0).padStart(19)}  ${rh.toFixed(0).padStart(20)}  ${(rh / ri).toFixed(3)}`),
      );
      console.log(
        `${label}: median interpreter ${i.toFixed(0)} calls/s, hand-written ${h.toFixed(0)} calls/s, hand-written/interpreter = ${(h / i).toFixed(3)} (target ≤ 1.3)`,
      );
    }
  } finally {
    await http.close();
    api.child.kill();
  }
}

if (process.argv[2] === '--api') serveApi();
else
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
