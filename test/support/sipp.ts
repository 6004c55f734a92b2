/**
 * SIPp 3.6 driven from jest (test/e2e/sipp/): runs to completion with their -trace_err,
 * -trace_stat and -trace_msg files kept under an artifacts folder for diagnosis, UASs awaited until
 * their socket is bound, every spawned process tracked and killed by pid (`killAll` in afterAll),
 * and readable failures (`explain`: the end of SIPp's screen, errors, messages and the server's
 * log). A suite calls `configureSipp` once in its beforeAll; the state is per suite (jest gives each
 * test file its own module registry).
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import dgram from 'dgram';
import { readFileSync, writeFileSync } from 'fs';
import path from 'path';

const INSTALL = path.resolve(__dirname, '../../scripts/install-system-deps.sh');

const setup = {
  host: '127.0.0.1',
  /** Where each run's files go (wiped by the suite). */
  artifacts: '',
  /** Folder of the scenario files named by SippRun.scenario. */
  scenarios: '',
  serverLog: (): string => '',
};
let sippBin = 'sipp';

/** Sets where SIPp binds and writes, and installs SIPp when missing (the suite fails, never skips, without it). */
export function configureSipp(o: { host: string; artifacts: string; scenarios: string; serverLog: () => string }): void {
  Object.assign(setup, o);
  sippBin = ensureSipp();
}

const live = new Set<ChildProcess>();

export function track(p: ChildProcess): ChildProcess {
  live.add(p);
  p.once('exit', () => live.delete(p));
  return p;
}

export async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) {
            resolve();
            return;
          }
          const t = setTimeout(() => {
            try {
              process.kill(p.pid!, 'SIGKILL');
            } catch {
              /* gone */
            }
          }, 3000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          try {
            process.kill(p.pid, 'SIGTERM');
          } catch {
            clearTimeout(t);
            resolve();
          }
        }),
    ),
  );
}

const which = (cmd: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};

/** SIPp, installed by the project's script when missing (CI); the suite fails (never skips) without it. */
function ensureSipp(): string {
  const found = which('sipp');
  if (found) return found;
  const r = spawnSync('bash', [INSTALL], { env: { ...process.env, SIPFLOW_SYSTEM_DEPS: 'sipp' }, encoding: 'utf8', timeout: 600_000 });
  const after = which('sipp');
  if (!after) throw new Error(`sipp is not installed and scripts/install-system-deps.sh failed (${r.status}): ${r.stderr || r.stdout}`);
  return after;
}

/** A UDP port free on `host` right now (SIPp binds it next). */
export async function freeUdpPort(host = setup.host): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => resolve());
  });
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** True once something has bound udp `host:port` (Linux /proc/net/udp: local address in hex). */
export function udpBound(host: string, port: number): boolean {
  const hex = host
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  const want = `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = readFileSync('/proc/net/udp', 'utf8');
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1] === want);
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      out += d;
    });
    const t = setTimeout(() => {
      p.kill('SIGKILL');
    }, timeoutMs);
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('exit', (code, signal) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} ${args.slice(0, 2).join(' ')} exited ${code ?? signal}:\n${out}`));
    });
  });
}

export interface SippRun {
  /** Name of the run: prefix of its files in test-artifacts/sipp/. */
  name: string;
  /** A file beside this test, a path, or `sn:<name>` for a SIPp built-in scenario (`-sn uas`). */
  scenario: string;
  /** -au / -ap (credentials for [authentication] without keywords). */
  auth?: { user: string; password: string };
  /** Lines of the injection file (SEQUENTIAL is added). */
  csv?: string[];
  /** -key name value */
  keys?: Record<string, string>;
  service?: string;
  authUri?: string;
  localIp?: string;
  localPort: number;
  calls: number;
  rate?: number;
  limit?: number;
  /** Client: sipflow's address; omitted for a UAS. */
  remote?: string;
  /** Global -timeout (s): the run fails (exit ≠ 0) when it is reached. */
  timeoutSec?: number;
}

export interface SippResult {
  code: number | null;
  signal: string | null;
  /** Screen output (stdout + stderr). */
  screen: string;
  messages: string;
  errors: string;
  successful: number | null;
  failed: number | null;
  files: string[];
}

let runSeq = 0;

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Successful / failed call counters (cumulative) from the last line of a -trace_stat file. */
function statCounters(stat: string): { successful: number | null; failed: number | null } {
  const lines = stat.split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return { successful: null, failed: null };
  const head = lines[0].split(';');
  const last = lines[lines.length - 1].split(';');
  const col = (name: string) => {
    const i = head.indexOf(name);
    return i >= 0 && last[i] !== undefined ? Number(last[i]) : null;
  };
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
}

/** Starts SIPp; `done` resolves when it exits (killed after the global timeout + a margin). */
export function sipp(o: SippRun): { proc: ChildProcess; done: Promise<SippResult> } {
  const prefix = path.join(setup.artifacts, `${String(++runSeq).padStart(2, '0')}-${o.name}`);
  const files = {
    err: `${prefix}-errors.log`,
    stat: `${prefix}-stat.csv`,
    msg: `${prefix}-messages.log`,
    screen: `${prefix}-screen.log`,
    csv: `${prefix}-injection.csv`,
  };
  const timeoutSec = o.timeoutSec ?? 30;
  const scenario = o.scenario.startsWith('sn:') ? ['-sn', o.scenario.slice(3)] : ['-sf', path.resolve(setup.scenarios, o.scenario)];
  const args = [
    ...scenario,
    '-i',
    o.localIp ?? setup.host,
    '-p',
    String(o.localPort),
    '-m',
    String(o.calls),
    '-nostdin',
    '-timeout',
    `${timeoutSec}s`,
    '-timeout_error',
    '-recv_timeout',
    '10000',
    '-trace_err',
    '-error_file',
    files.err,
    '-trace_stat',
    '-stf',
    files.stat,
    '-fd',
    '1',
    '-trace_msg',
    '-message_file',
    files.msg,
  ];
  if (o.csv) {
    writeFileSync(files.csv, ['SEQUENTIAL', ...o.csv, ''].join('\n'));
    args.push('-inf', files.csv);
  }
  for (const [k, v] of Object.entries(o.keys ?? {})) args.push('-key', k, v);
  if (o.service) args.push('-s', o.service);
  if (o.authUri) args.push('-auth_uri', o.authUri);
  if (o.auth) args.push('-au', o.auth.user, '-ap', o.auth.password);
  if (o.rate) args.push('-r', String(o.rate));
  if (o.limit) args.push('-l', String(o.limit));
  if (o.remote) args.push(o.remote);
  writeFileSync(files.screen, `$ ${sippBin} ${args.join(' ')}\n\n`);
  const proc = track(spawn(sippBin, args, { cwd: setup.artifacts, stdio: ['ignore', 'pipe', 'pipe'] }));
  let screen = '';
  proc.stdout!.on('data', (d) => {
    screen += d;
  });
  proc.stderr!.on('data', (d) => {
    screen += d;
  });
  const done = new Promise<SippResult>((resolve) => {
    // SIPp ends itself at -timeout; this guard only catches a hung process
    const guard = setTimeout(
      () => {
        try {
          process.kill(proc.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      },
      (timeoutSec + 15) * 1000,
    );
    const finish = (code: number | null, signal: string | null) => {
      clearTimeout(guard);
      writeFileSync(files.screen, screen, { flag: 'a' });
      const stat = readOr(files.stat);
      resolve({ code, signal, screen, messages: readOr(files.msg), errors: readOr(files.err), ...statCounters(stat), files: Object.values(files) });
    };
    proc.once('error', (e) => {
      screen += `\ncould not start sipp: ${e.message}`;
      finish(-1, null);
    });
    proc.once('exit', finish);
  });
  return { proc, done };
}

/** Runs SIPp to the end. */
export const sippRun = (o: SippRun) => sipp(o).done;

/** A SIPp UAS, resolved once its socket is bound (datagrams are queued from then on). */
export async function startUas(name: string, user: string, port: number, scenario = 'uas.xml'): Promise<{ proc: ChildProcess; done: Promise<SippResult> }> {
  const s = sipp({ name, scenario, service: user, localPort: port, calls: 1, timeoutSec: 40 });
  let exited = false;
  void s.done.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 15_000;
  while (!udpBound(setup.host, port)) {
    if (exited) throw new Error(explain(await s.done, `UAS ${name} exited before binding ${setup.host}:${port}`));
    if (Date.now() > deadline) throw new Error(`UAS ${name} did not bind ${setup.host}:${port} within 15 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return s;
}

/** The UAS's result once the caller is done: a failed caller stops the UAS at once (no wait for its timeout). */
export async function uasAfter(uas: { proc: ChildProcess; done: Promise<SippResult> }, caller: SippResult, what: string): Promise<SippResult> {
  if (caller.code !== 0) {
    try {
      process.kill(uas.proc.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    const r = await uas.done;
    throw new Error(`${explain(caller, what)}

=== the UAS ===
${explain(r, 'UAS')}`);
  }
  return uas.done;
}

/** What to print when a SIPp run fails: its end of screen, errors, messages and the server's log. */
export function explain(r: SippResult, what = 'sipp'): string {
  return [
    `${what}: exit ${r.code ?? r.signal}; successful ${r.successful}, failed ${r.failed}; files:\n  ${r.files.join('\n  ')}`,
    `--- screen ---\n${r.screen.slice(-2500)}`,
    `--- errors ---\n${r.errors.slice(-2500)}`,
    `--- messages ---\n${r.messages.slice(-5000)}`,
    `--- server ---\n${setup.serverLog().slice(-2500)}`,
  ].join('\n');
}

export function expectOk(r: SippResult, calls: number, what: string): void {
  if (r.code !== 0 || r.successful !== calls || r.failed !== 0) throw new Error(explain(r, what));
}

/** Messages of a -trace_msg file: direction and text. */
export interface TracedMessage {
  dir: 'sent' | 'received';
  text: string;
  firstLine: string;
  callId: string;
}
export function traced(log: string): TracedMessage[] {
  return log
    .split(/^-{10,} .*$/m)
    .map((block) => {
      const m = /^\s*(?:UDP|TCP) message (sent|received)[^\n]*\n\s*\n([\s\S]*)$/.exec(block);
      if (!m) return null;
      const text = m[2];
      return {
        dir: m[1] as 'sent' | 'received',
        text,
        firstLine: text.split(/\r?\n/)[0].trim(),
        callId: /^Call-ID:\s*(\S+)/im.exec(text)?.[1] ?? '',
      };
    })
    .filter((x): x is TracedMessage => x !== null);
}

export const hdr = (text: string, name: string): string | undefined => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(text)?.[1].trim();
export const firstLines = (r: SippResult, dir?: 'sent' | 'received') =>
  traced(r.messages)
    .filter((m) => !dir || m.dir === dir)
    .map((m) => m.firstLine);
/** Messages without retransmissions (same first line and CSeq), in order. */
export const distinct = (ms: TracedMessage[]) =>
  ms.filter(
    (m, i) => ms.findIndex((x) => x.dir === m.dir && x.callId === m.callId && x.firstLine === m.firstLine && hdr(x.text, 'CSeq') === hdr(m.text, 'CSeq')) === i,
  );
