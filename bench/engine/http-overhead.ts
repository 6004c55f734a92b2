/**
 * bench/engine/http-overhead: what query.httpRequest costs per call over a bare undici request to
 * the same local server (node:http in a child process, one small JSON answer). Sequential calls,
 * the variants interleaved call by call. For each: this process's CPU time per call (user +
 * system; the server's is not counted, and it barely moves when other work shares the cores) and
 * the wall time per call, each the median of the rounds:
 *
 *   bare undici    request() on a pooled Agent, body read, JSON.parse, one field read
 *   adapter        services/http/client.ts request() (timeout timer, size cap), JSON.parse, one field
 *   node           runLogic: start → query.httpRequest (URL placeholder, one JSON Pointer) → reply
 *   node, no I/O   the same logic against an HttpPort answering at once: the interpreter and node alone
 *
 *   node dist/bench/engine/http-overhead.js [calls=2000] [rounds=7]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { callDescriptorFrom } from '../../engine/cd';
import { loadSlid } from '../../engine/load';
import type { HttpPort } from '../../engine/ports';
import { runLogic } from '../../engine/run';
import type { RunContext } from '../../engine/types';
import { builtinRegistry } from '../../nodes';
import { createHttpClient } from '../../services/http/client';

const CALLS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 7);
const ANSWER = JSON.stringify({ route: [{ uri: 'sip:1000@gw.example', weight: 10 }] });

/** The server, in its own process so its CPU time is not this one's. */
function startServer(): Promise<{ port: number; server: ChildProcess }> {
  const code = `
    const http = require('node:http');
    const body = ${JSON.stringify(ANSWER)};
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => process.send(server.address().port));`;
  const server = fork('-e', [code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  return new Promise((resolve, reject) => {
    server.once('message', (port) => resolve({ port: port as number, server }));
    server.once('exit', (c) => reject(new Error(`the bench server exited (${c})`)));
  });
}

const doc = (url: string) => ({
  1: {
    name: 'http',
    description: '',
    nodes: {
      0: { id: 0, name: 'start', type: 'enter.start', description: '', values: { next: 1 }, archived: false, x: 0, y: 0 },
      1: {
        id: 1,
        name: 'route',
        type: 'query.httpRequest',
        description: '',
        values: { url, storeInto: [{ path: '/route/0/uri', variable: 'target' }], ifSuccess: 2, ifFailure: 3, ifTimeout: 3 },
        archived: false,
        x: 0,
        y: 0,
      },
      2: { id: 2, name: 'ok', type: 'output.reply', description: '', values: { code: 200 }, archived: false, x: 0, y: 0 },
      3: { id: 3, name: 'ko', type: 'output.reply', description: '', values: { code: 503 }, archived: false, x: 0, y: 0 },
    },
  },
});

async function main(): Promise<void> {
  const { port, server } = await startServer();
  const base = `http://127.0.0.1:${port}`;
  const agent = new Agent({ connections: 16 });
  const client = createHttpClient({ maxResponseBytes: 1048576, connectionsPerOrigin: 16 });
  const loaded = loadSlid(doc(`${base}/route?called=[called]`), 'bench.slid', builtinRegistry());
  if (!loaded.service) throw new Error(loaded.problems.map((p) => p.message).join('; '));
  const service = loaded.service;
  const noop = { query: async () => [], schema: async () => ({}) };
  const base_ctx = { directory: noop, location: {} as RunContext['location'], auth: {} as RunContext['auth'], clock: { now: Date.now } };
  const ctx: RunContext = { ...base_ctx, http: client };
  const instant: HttpPort = { request: async () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: ANSWER, elapsedMs: 0 }) };
  const noIo: RunContext = { ...base_ctx, http: instant };
  const cd = callDescriptorFrom([['called', '1000']], {}, undefined);

  const variants: Record<string, (i: number) => Promise<unknown>> = {
    'bare undici': async (i) => {
      const res = await request(`${base}/route?called=${encodeURIComponent(String(1000 + i))}`, { dispatcher: agent });
      return (JSON.parse(await res.body.text()) as { route: Array<{ uri: string }> }).route[0].uri;
    },
    adapter: async (i) => {
      const a = await client.request({ method: 'GET', url: `${base}/route?called=${1000 + i}`, headers: {}, body: null, timeoutMs: 2000 });
      return (JSON.parse(a.body) as { route: Array<{ uri: string }> }).route[0].uri;
    },
    node: async (i) => {
      cd.vars.called = String(1000 + i);
      const r = await runLogic(service, '1', cd, ctx);
      if (r.outcome.status !== 200) throw new Error(`node: ${JSON.stringify(r.outcome)} ${String(cd.vars.httpSummary)}`);
    },
    'node, no I/O': async (i) => {
      cd.vars.called = String(1000 + i);
      await runLogic(service, '1', cd, noIo);
    },
  };
  const names = Object.keys(variants);
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < 500; i++) await variants[n](i); // warm-up: JIT, pooled connections
  // Calls interleaved one by one (bare, adapter, node, …), so a change of load on the shared
  // cores weighs on every variant alike; each round sums each variant's calls.
  for (let round = 0; round < ROUNDS; round++) {
    const cpuSum = new Array<number>(names.length).fill(0);
    const wallSum = new Array<number>(names.length).fill(0);
    for (let i = 0; i < CALLS; i++) {
      for (let k = 0; k < names.length; k++) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        await variants[names[k]](i);
        const c = process.cpuUsage(c0);
        wallSum[k] += Number(process.hrtime.bigint() - t0) / 1000;
        cpuSum[k] += c.user + c.system;
      }
    }
    names.forEach((n, k) => {
      cpu[n].push(cpuSum[k] / CALLS);
      wall[n].push(wallSum[k] / CALLS);
    });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const us = (m: Record<string, number[]>) => Object.fromEntries(names.map((n) => [n, median(m[n])]));
  const [c, w] = [us(cpu), us(wall)];
  console.log(`query.httpRequest overhead: ${CALLS} sequential calls × ${ROUNDS} rounds, medians of the rounds (µs per call)`);
  console.log(`  ${''.padEnd(14)} ${'CPU'.padStart(8)} ${'wall'.padStart(8)}`);
  for (const n of names) console.log(`  ${n.padEnd(14)} ${c[n].toFixed(1).padStart(8)} ${w[n].toFixed(1).padStart(8)}`);
  const diff = (m: Record<string, number>, a: string) => (m[a] - m['bare undici']).toFixed(1);
  console.log(
    `  node − bare undici: ${diff(c, 'node')} µs CPU, ${diff(w, 'node')} µs wall per call (adapter − bare: ${diff(c, 'adapter')} µs CPU, ${diff(w, 'adapter')} µs wall)`,
  );

  await client.close();
  await agent.close();
  server.kill();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
