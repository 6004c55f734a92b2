/**
 * A real `sipflow serve` process (the built CLI; `npm test` builds first) for the attack and
 * defence suites: temporary data dir, in-memory directory (the note's sample subscriber
 * provisioned) and location, the shipped flows, SIP and HTTP on free ports of 127.0.0.1.
 * Everything the process writes is kept so a test can assert what reached (or never reached) a
 * log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MAIN = path.resolve(__dirname, '../../dist/cli/main.js');
export const SHIPPED_FLOWS = path.resolve(__dirname, '../../flows');

export interface ServeSpec {
  /** Configuration (written as JSON and passed with --config); command-line flags below win. */
  config?: Record<string, unknown>;
  /** Extra command-line flags. */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** SIP worker threads (default 2: the dispatcher + workers path, as `npm start` on this machine). */
  workers?: number | 'auto';
  /** Flows folder or file (default the shipped flows/); null: no --flows (the configuration's, else the shipped default). */
  flows?: string | null;
  /** Working directory of the process (default the test's). */
  cwd?: string;
  /** An existing data dir to use (kept by stop(): a later start reads it); default a new temporary one, removed by stop(). */
  dataDir?: string;
  /** Directory URL (default memory://); `'data'`: PGlite persisted in the data dir (`<dataDir>/directory`, as `npm start`). */
  directoryUrl?: string;
  /** Location URL (default memory). */
  locationUrl?: string;
  /** Log level (default info, so that log-line assertions see what an operator sees). */
  logLevel?: string;
  /** Called with the (new, empty) data dir before the process starts: e.g. to leave files in it. */
  prepare?(dataDir: string): void;
}

export interface ServeProcess {
  child: ChildProcess;
  dataDir: string;
  sipPort: number;
  tcpPort: number;
  httpPort: number;
  token: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** fetch() against the API with the bearer token (`/api/v1/...` or any path). */
  api(p: string, init?: RequestInit): Promise<Response>;
  /** A sample's value from /metrics (0 when absent); `labels` like `kind="source",reason="auth"` must all be on it. */
  metric(name: string, labels?: string): Promise<number>;
  /** SIGTERM (or `signal`) and wait for the exit; returns the exit code and how long it took. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; ms: number }>;
}

export async function startServe(spec: ServeSpec = {}): Promise<ServeProcess> {
  const ownDataDir = spec.dataDir === undefined;
  const dataDir = spec.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'sipflow-sec-'));
  const removeDataDir = () => {
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const args = [
    MAIN,
    'serve',
    '--data-dir',
    dataDir,
    '--directory-url',
    spec.directoryUrl === 'data' ? path.join(dataDir, 'directory') : (spec.directoryUrl ?? 'memory://'),
    '--location-url',
    spec.locationUrl ?? 'memory',
    ...(spec.flows === null ? [] : ['--flows', spec.flows ?? SHIPPED_FLOWS]),
    '--sip-host',
    '127.0.0.1',
    '--sip-port',
    '0',
    '--http-host',
    '127.0.0.1',
    '--http-port',
    '0',
    '--log-level',
    spec.logLevel ?? 'info',
    '--workers',
    String(spec.workers ?? 2),
  ];
  if (spec.config) {
    const file = path.join(dataDir, 'config.json');
    writeFileSync(file, JSON.stringify(spec.config));
    args.push('--config', file);
  }
  args.push(...(spec.args ?? []));
  spec.prepare?.(dataDir);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...spec.env }, cwd: spec.cwd });
  let out = '';
  child.stdout!.on('data', (b) => {
    out += b;
  });
  child.stderr!.on('data', (b) => {
    out += b;
  });
  let exited = false;
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  try {
    const ports = await new Promise<{ udp: number; tcp: number; http: number }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`sipflow serve not listening within 60 s:\n${out}`)), 60_000);
      const check = () => {
        const m = /udp:(\d+) tcp:(\d+)/.exec(out);
        const h = /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m && h) {
          clearTimeout(t);
          resolve({ udp: Number(m[1]), tcp: Number(m[2]), http: Number(h[1]) });
        }
      };
      child.stdout!.on('data', check);
      void exit.then((code) => {
        clearTimeout(t);
        reject(new Error(`sipflow serve exited ${code}:\n${out}`));
      });
    });
    const token = readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
    const api = (p: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${ports.http}${p}`, {
        ...init,
        headers: {
          authorization: `Bearer ${token}`,
          ...(init.body ? { 'content-type': 'application/json' } : {}),
          ...(init.headers as Record<string, string> | undefined),
        },
      });
    return {
      child,
      dataDir,
      sipPort: ports.udp,
      tcpPort: ports.tcp,
      httpPort: ports.http,
      token,
      output: () => out,
      api,
      async metric(name, labels = '') {
        const text = await (await api('/metrics')).text();
        const wanted = labels ? labels.split(',') : [];
        const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && wanted.every((kv) => l.includes(kv)));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      },
      async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
        const started = Date.now();
        if (!exited) child.kill(signal);
        const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const code = await exit;
        clearTimeout(killer);
        removeDataDir();
        return { code, ms: Date.now() - started };
      },
    };
  } catch (e) {
    child.kill('SIGKILL');
    await exit;
    removeDataDir();
    throw e;
  }
}
