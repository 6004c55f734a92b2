/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, `.cpuprofile` JSON) of sipflow under load: self
 * time per function and per area (sipflow folder, npm package, Node internals, GC), merged over
 * every profile given (the cluster primary and its workers).
 *
 *   node dist/bench/sip/profile-summary.js [--top N] [--from-ms MS] FILE|DIR …
 *
 * --from-ms skips the first MS milliseconds of each profile (process start-up, warm-up), so the
 * figures cover the measured load only.
 *
 * Percentages are of the busy time (all samples except "(idle)"). The primary of a cluster is
 * mostly idle; worker profiles dominate.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import path from 'path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Summary {
  files: number;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  functions: Array<{ key: string; area: string; selfMs: number }>;
  areas: Array<{ area: string; selfMs: number }>;
}

const REPO_MARK = /\/dist\/(engine|nodes|services|sip|server|cli|schemas|bench)\//;

/** Where a frame belongs: sipflow folder, npm package, Node internals, or a V8 pseudo-frame. */
export function areaOf(cf: CallFrame): string {
  const url = cf.url;
  if (!url) {
    if (/^\((garbage collector|program|idle|root)\)$/.test(cf.functionName)) return cf.functionName;
    return '(native / V8 builtins)';
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const m = REPO_MARK.exec(url);
  if (m)
    return `sipflow:${m[1]}/${url
      .slice(m.index + m[0].length)
      .split('/')[0]
      .replace(/\.js$/, '')}`;
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const m = /\/dist\//.exec(url);
  if (m) return url.slice(m.index + m[0].length);
  return url.replace(/^file:\/\//, '');
}

export function summarize(files: string[], fromMs = 0): Summary {
  const fn = new Map<string, { area: string; selfMs: number }>();
  const areas = new Map<string, number>();
  let wallMs = 0;
  let idleMs = 0;
  let busyMs = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const from = p.startTime + fromMs * 1000; // µs
    wallMs += Math.max(0, p.endTime - Math.max(p.startTime, from)) / 1000;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    const samples = p.samples ?? [];
    const deltas = p.timeDeltas ?? [];
    // timeDeltas[i] is the time before sample i; attribute the interval after a sample to it
    let t = p.startTime;
    for (let i = 0; i < samples.length; i++) {
      t += deltas[i] ?? 0;
      if (t < from) continue;
      const dt = (deltas[i + 1] ?? 0) / 1000;
      self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
    }
    for (const [id, ms] of self) {
      const n = byId.get(id);
      if (!n) continue;
      const cf = n.callFrame;
      const area = areaOf(cf);
      if (area === '(idle)') {
        idleMs += ms;
        continue;
      }
      busyMs += ms;
      areas.set(area, (areas.get(area) ?? 0) + ms);
      const key = cf.url ? `${cf.functionName || '(anonymous)'}  ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : cf.functionName || '(anonymous)';
      const cur = fn.get(key) ?? { area, selfMs: 0 };
      cur.selfMs += ms;
      fn.set(key, cur);
    }
  }
  return {
    files: files.length,
    wallMs,
    busyMs,
    idleMs,
    functions: [...fn].map(([key, v]) => ({ key, ...v })).sort((a, b) => b.selfMs - a.selfMs),
    areas: [...areas].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

export function formatSummary(s: Summary, top = 25): string {
  const pct = (ms: number) => (s.busyMs > 0 ? ((100 * ms) / s.busyMs).toFixed(1).padStart(5) : '  n/a');
  const out: string[] = [];
  out.push(
    `${s.files} profile(s): ${(s.busyMs / 1000).toFixed(1)} s busy, ${(s.idleMs / 1000).toFixed(1)} s idle` +
      ` (sum over processes of ${(s.wallMs / 1000).toFixed(1)} s profiled)`,
  );
  out.push('', 'self time by area (% of busy):');
  for (const a of s.areas.slice(0, 20)) out.push(`  ${pct(a.selfMs)}%  ${a.selfMs.toFixed(0).padStart(7)} ms  ${a.area}`);
  out.push('', `top ${top} functions by self time (% of busy):`);
  for (const f of s.functions.slice(0, top)) out.push(`  ${pct(f.selfMs)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.key}`);
  return out.join('\n');
}

function collect(args: string[]): string[] {
  const files: string[] = [];
  for (const a of args) {
    if (statSync(a).isDirectory()) {
      for (const f of readdirSync(a)) if (f.endsWith('.cpuprofile')) files.push(path.join(a, f));
    } else files.push(a);
  }
  return files;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  let top = 25;
  let fromMs = 0;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') top = Number(args[++i]);
    else if (args[i] === '--from-ms') fromMs = Number(args[++i]);
    else rest.push(args[i]);
  }
  const files = collect(rest);
  if (files.length === 0) {
    console.error('usage: profile-summary [--top N] FILE.cpuprofile|DIR …  (no .cpuprofile found)');
    process.exit(2);
  }
  console.log(formatSummary(summarize(files, fromMs), top));
}
