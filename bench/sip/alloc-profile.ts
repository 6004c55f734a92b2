/**
 * Where a call's memory goes: bytes allocated per call by a running sipflow, by allocating function
 * and by the nearest sipflow frame, from V8's sampling heap profiler with the objects the collector
 * already freed included (inspector protocol `HeapProfiler.startSampling` with
 * `includeObjectsCollectedByMajorGC` / `…MinorGC`).
 *
 * Why: garbage collection is 10–12 % of sipflow's time at the best rate (docs/performance.md), and
 * what it costs follows what a call allocates. `node --heap-prof` does not say that: it keeps only the
 * samples still alive when it stops (what a call retains, not what it churns), and `--cpu-prof` shows
 * the collector's time but not whose allocations it collects.
 *
 *   node dist/bench/sip/alloc-profile.js --inspect HOST:PORT --seconds S --calls-per-second R [--after S] [--top N] [--save FILE]
 *   node dist/bench/sip/alloc-profile.js --summarise FILE --calls N [--top N]
 *
 * The first form connects to the inspector of a sipflow started with `node --inspect=HOST:PORT`,
 * waits --after seconds (default 3), samples for --seconds while the caller drives the load, and
 * prints the summary with calls = R × the seconds sampled. Only the thread the inspector belongs
 * to is sampled: run sipflow with `--workers 1` (everything in the main thread). `npm run bench:sip
 * -- --alloc-profile` does all that for each sipflow variant of the run (bench/sip/run.sh).
 * Sampling every 8 KiB costs a few per cent of CPU; the figures are estimates from the samples.
 */
import { readFileSync, writeFileSync } from 'fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

export interface SamplingHeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: SamplingHeapProfileNode[];
}
export interface SamplingHeapProfile {
  head: SamplingHeapProfileNode;
}

export interface AllocationSummary {
  calls: number;
  bytes: number;
  /** [function at file:line, bytes] by the function that allocated, largest first. */
  byFunction: Array<[string, number]>;
  /** The same bytes by the nearest frame of sipflow's own code (dist/…) up the stack. */
  byOwnFrame: Array<[string, number]>;
}

const OWN = /\/dist\/(?:engine|nodes|services|sip|server|cli|grammar|schemas)\//;

function frameName(cf: SamplingHeapProfileNode['callFrame']): string {
  const nm = cf.url.lastIndexOf('/node_modules/');
  const url = nm >= 0 ? `npm:${cf.url.slice(nm + '/node_modules/'.length)}` : cf.url.replace(/^.*\/dist\//, '');
  return `${cf.functionName || '(anonymous)'}  ${url ? `${url}:${cf.lineNumber + 1}` : '(native)'}`;
}

/** Sums a sampling heap profile's sizes by allocating function and by nearest own frame. */
export function summariseAllocations(profile: SamplingHeapProfile, calls: number): AllocationSummary {
  if (!(calls > 0)) throw new Error('calls must be a positive number');
  const byFunction = new Map<string, number>();
  const byOwnFrame = new Map<string, number>();
  let bytes = 0;
  const walk = (n: SamplingHeapProfileNode, own: string) => {
    const here = OWN.test(n.callFrame.url) ? frameName(n.callFrame) : own;
    if (n.selfSize > 0) {
      bytes += n.selfSize;
      const f = frameName(n.callFrame);
      byFunction.set(f, (byFunction.get(f) ?? 0) + n.selfSize);
      byOwnFrame.set(here, (byOwnFrame.get(here) ?? 0) + n.selfSize);
    }
    for (const c of n.children ?? []) walk(c, here);
  };
  walk(profile.head, '(outside sipflow code)');
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { calls, bytes, byFunction: sorted(byFunction), byOwnFrame: sorted(byOwnFrame) };
}

export function formatAllocations(s: AllocationSummary, top = 25): string {
  const perCall = (b: number) => `${(b / s.calls).toFixed(0).padStart(7)} B/call`;
  const out = [`${(s.bytes / 1e6).toFixed(1)} MB allocated over ${s.calls} calls: ${(s.bytes / s.calls / 1024).toFixed(1)} KiB per call`];
  out.push('', `top ${top} allocating functions:`);
  for (const [k, b] of s.byFunction.slice(0, top)) out.push(`  ${perCall(b)}  ${k}`);
  out.push('', `top ${top} by nearest sipflow frame:`);
  for (const [k, b] of s.byOwnFrame.slice(0, top)) out.push(`  ${perCall(b)}  ${k}`);
  return out.join('\n');
}

/** Samples allocations of the inspector's thread at `inspect` (host:port) for `seconds` after `afterSec`. */
async function sample(inspect: string, afterSec: number, seconds: number): Promise<{ profile: SamplingHeapProfile; sampledSec: number }> {
  const list = (await (await fetch(`http://${inspect}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  if (!list[0]) throw new Error(`no inspector target at ${inspect}`);
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let seq = 0;
  const waiting = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const send = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      waiting.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result as T)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await send('HeapProfiler.enable');
    await new Promise((r) => setTimeout(r, afterSec * 1000));
    const t0 = performance.now();
    await send('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await send<{ profile: SamplingHeapProfile }>('HeapProfiler.stopSampling');
    return { profile, sampledSec: (performance.now() - t0) / 1000 };
  } finally {
    ws.close();
  }
}

async function main(args: string[]): Promise<void> {
  const str = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args,
    options: { inspect: str, seconds: str, 'calls-per-second': str, after: str, top: str, save: str, summarise: str, calls: str },
  });
  const top = Number(v.top ?? 25);
  if (v.summarise !== undefined) {
    const profile = JSON.parse(readFileSync(v.summarise, 'utf8')) as SamplingHeapProfile;
    console.log(formatAllocations(summariseAllocations(profile, Number(v.calls)), top));
    return;
  }
  const seconds = Number(v.seconds);
  const rate = Number(v['calls-per-second']);
  if (!v.inspect || !(seconds > 0) || !(rate > 0))
    throw new Error('usage: alloc-profile.js --inspect HOST:PORT --seconds S --calls-per-second R [--after S] [--top N] [--save FILE]');
  const { profile, sampledSec } = await sample(v.inspect, Number(v.after ?? 3), seconds);
  if (v.save) writeFileSync(v.save, JSON.stringify(profile));
  console.log(`sampled ${sampledSec.toFixed(1)} s at ${rate} calls/s`);
  console.log(formatAllocations(summariseAllocations(profile, Math.round(rate * sampledSec)), top));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`alloc-profile: ${e.message}`);
    process.exit(1);
  });
}
