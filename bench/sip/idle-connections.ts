/**
 * Memory per idle SIP connection: sipflow over TCP, TLS, WS and WSS, Kamailio over TCP and TLS,
 * measured the same way in one run (npm run bench:connections).
 *
 *   node dist/bench/sip/idle-connections.js [--connections N] [--transports tcp,tls,ws,wss]
 *        [--quick] [--skip-kamailio] [--work DIR] [--port P]
 *
 * For each transport and registrar: a fresh server with one listener on 127.0.0.1; 100 warm-up
 * connections (opened, one OPTIONS answered, closed) so that code paths and TLS contexts are
 * loaded; memory measured; N connections opened (handshake done — TCP, TLS, WebSocket upgrade
 * with subprotocol `sip` — and one OPTIONS sent and answered on each, so each is a real SIP
 * connection), left idle 3 s, memory measured again; the difference divided by N is the figure.
 * Then everything is closed and the server stopped.
 *
 * Memory = the sum over the server's processes of Pss from /proc/PID/smaps_rollup (proportional
 * set size: a page shared by k processes counts 1/k in each). Kamailio is a main process and
 * children sharing one shared-memory pool (-m) where connections and OpenSSL's state live: the
 * sum of their RSS counts a shared page once per process that touched it, so it over-counts; the
 * sum of PSS counts it once. sipflow is one process (worker threads included), where PSS ≈ RSS;
 * its VmRSS (/proc/PID/status) and V8 heap used (main thread, from /metrics) are printed beside.
 * Kamailio's own accounting of its shared pool (kamcmd core.shmmem, "used") is printed too.
 *
 * Limits and settings: connections come from 127.1.x.y source addresses, 50 per address, so
 * sipflow's per-source cap (sip.tcp.maxConnectionsPerSource, 64 by default) stays as shipped;
 * its total cap is configured to N (sip.tcp.maxConnections; sipflow applies at most half the
 * open-file limit, so N is bounded by `ulimit -n` / 2 − 100: 9,900 with this machine's 20,000 —
 * raise the hard limit to measure more). Kamailio gets tcp_max_connections = tls_max_connections =
 * 20000 and idle connections kept 1 h (kamailio.cfg WITH_TCP). Loopback only; one transport at a
 * time; --quick = 1000 connections.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';

type Transport = 'tcp' | 'tls' | 'ws' | 'wss';
const REPO = path.resolve(__dirname, '../../..');
const KIT = path.join(REPO, 'bench/sip/kamailio');
const ANCHOR_KB: Record<string, number> = { tcp: 4.5, tls: 4.5 + 61 };
const PER_SOURCE = 50;

interface Options {
  connections: number;
  transports: Transport[];
  kamailio: boolean;
  work: string;
  port: number;
}

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    connections: 10_000,
    transports: ['tcp', 'tls', 'ws', 'wss'],
    kamailio: true,
    work: process.env.WORK ?? '/tmp/sipflow-bench-connections',
    port: Number(process.env.SIP_PORT ?? 5180),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.connections = 1000;
    else if (a === '--skip-kamailio') o.kamailio = false;
    else if (a === '--connections') o.connections = Number(argv[++i]);
    else if (a === '--transports') o.transports = argv[++i].split(',') as Transport[];
    else if (a === '--work') o.work = argv[++i];
    else if (a === '--port') o.port = Number(argv[++i]);
    else throw new Error(`idle-connections: unknown option ${a}`);
  }
  if (!Number.isInteger(o.connections) || o.connections < 1) throw new Error('idle-connections: --connections must be a whole number ≥ 1');
  for (const t of o.transports) if (!['tcp', 'tls', 'ws', 'wss'].includes(t)) throw new Error(`idle-connections: unknown transport ${t}`);
  const bound = Math.floor(openFileLimit() / 2) - 100;
  if (o.connections > bound) {
    console.error(`idle-connections: ${o.connections} connections exceed what the open-file limit allows (ulimit -n / 2 − 100 = ${bound}); measuring ${bound}`);
    o.connections = bound;
  }
  return o;
}

// ------------------------------------------------------------------ memory of a process tree
function children(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // ps exits 1 when there is none
  }
}

function kb(file: string, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface Memory {
  pssKb: number;
  rssKb: number;
  heapKb?: number;
  shmKb?: number;
}

function treeMemory(pids: number[]): Memory {
  let pssKb = 0;
  let rssKb = 0;
  for (const pid of pids) {
    pssKb += kb(`/proc/${pid}/smaps_rollup`, 'Pss');
    rssKb += kb(`/proc/${pid}/status`, 'VmRSS');
  }
  return { pssKb, rssKb };
}

// ------------------------------------------------------------------ servers
interface Server {
  name: string;
  pids: () => number[];
  extra: () => Promise<Partial<Memory>>;
  stop: () => Promise<void>;
}

function waitFor(what: string, check: () => boolean, child: ChildProcess, logFile: string, seconds = 120): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = (): void => {
      if (check()) return resolve();
      if (child.exitCode !== null || Date.now() - t0 > seconds * 1000) {
        return reject(new Error(`${what} did not start (see ${logFile}):\n${readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')}`));
      }
      setTimeout(poll, 200);
    };
    poll();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startSipflow(o: Options, transport: Transport, cert: Cert): Promise<Server> {
  const dir = path.join(o.work, `sipflow-${transport}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const token = 'bench-connections-token-0123456789';
  const httpPort = o.port + 1;
  const cfg = path.join(dir, 'sipflow.yaml');
  writeFileSync(
    cfg,
    [
      `dataDir: ${dir}/data`,
      `flows: ${REPO}/flows/pbx.slid`,
      'sip:',
      `  listeners: [{ transport: ${transport}, host: 127.0.0.1, port: ${o.port} }]`,
      '  domain: example.test',
      `  tls: { certFile: ${cert.cert}, keyFile: ${cert.key} }`,
      // the total cap up to N (the per-source cap stays as shipped: 50 clients per source address)
      `  tcp: { maxConnections: ${o.connections + 100} }`,
      // stores in memory: the embedded PGlite directory holds hundreds of MB and returns some of
      // them to the system at moments of its own, which would land inside a measurement
      'directory: { url: "memory://" }',
      'location: { url: memory }',
      `http: { enabled: true, host: 127.0.0.1, port: ${httpPort}, token: ${token} }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'sipflow.log');
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [path.join(REPO, 'dist/cli/main.js'), 'serve', '--config', cfg], { stdio: ['ignore', out, out] });
  await waitFor('sipflow', () => /sipflow: SIP .* listening/.test(readFileSync(logFile, 'utf8')), child, logFile);
  const pid = child.pid as number;
  return {
    name: 'sipflow',
    pids: () => [pid],
    extra: async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      const m = /^sipflow_nodejs_heap_size_used_bytes\s+(\S+)/m.exec(await res.text());
      return m ? { heapKb: Number(m[1]) / 1024 } : {};
    },
    stop: () => stopChild(child),
  };
}

async function startKamailio(o: Options, transport: 'tcp' | 'tls', cert: Cert): Promise<Server> {
  const dir = path.join(o.work, `kamailio-${transport}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const ctl = path.join(dir, 'kamailio_ctl');
  const tlsCfg = path.join(dir, 'tls.cfg');
  writeFileSync(
    tlsCfg,
    `[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = ${cert.key}\ncertificate = ${cert.cert}\n\n` +
      `[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n`,
  );
  const defs = [
    '-A',
    `CTLSOCK="unix:${ctl}"`,
    '-A',
    'KCHILDREN=2',
    '-A',
    `SIPLISTEN=${transport}:127.0.0.1:${o.port}`,
    '-A',
    'WITH_PVAUTH',
    '-A',
    'TCPMAX=20000',
  ];
  defs.push(...(transport === 'tls' ? ['-A', 'WITH_TLS', '-A', `TLSCFG="${tlsCfg}"`] : ['-A', 'WITH_TCP']));
  // shared pool: the published ≈ 65 kB per TLS connection × N, with room
  const shmMb = Math.max(256, Math.ceil((o.connections * (transport === 'tls' ? 100 : 10)) / 1024) + 128);
  const logFile = path.join(dir, 'kamailio.log');
  const out = openSync(logFile, 'w');
  const child = spawn('kamailio', ['-f', path.join(KIT, 'kamailio.cfg'), '-DD', '-E', '-m', String(shmMb), '-M', '16', '-w', dir, ...defs], {
    stdio: ['ignore', out, out],
  });
  const hex = `0100007F:${o.port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`;
  await waitFor('kamailio', () => readFileSync('/proc/net/tcp', 'utf8').includes(hex) && existsSync(ctl), child, logFile);
  await new Promise((r) => setTimeout(r, 500));
  const pid = child.pid as number;
  return {
    name: 'kamailio',
    pids: () => [pid, ...children(pid)],
    extra: async () => {
      try {
        const text = execFileSync('kamcmd', ['-s', `unix:${ctl}`, 'core.shmmem'], { encoding: 'utf8' });
        const m = /used:\s+(\d+)/.exec(text);
        return m ? { shmKb: Number(m[1]) / 1024 } : {};
      } catch {
        return {};
      }
    },
    stop: () => stopChild(child),
  };
}

// ------------------------------------------------------------------ clients
interface Cert {
  cert: string;
  key: string;
}

function makeCert(work: string): Cert {
  const dir = path.join(work, 'tls');
  mkdirSync(dir, { recursive: true });
  const c = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  if (!existsSync(c.cert) || !existsSync(c.key)) {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '365',
        '-subj',
        '/CN=example.test',
        '-addext',
        'subjectAltName=DNS:example.test,DNS:localhost,IP:127.0.0.1',
        '-keyout',
        c.key,
        '-out',
        c.cert,
      ],
      { stdio: 'ignore' },
    );
  }
  return c;
}

/** 127.1.x.y, PER_SOURCE connections each. */
function sourceAddress(i: number): string {
  const n = Math.floor(i / PER_SOURCE);
  return `127.1.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function options(transport: Transport, i: number, local: string): string {
  const via = transport.toUpperCase();
  const host = transport.startsWith('ws') ? `c${i}.invalid` : local;
  return (
    `OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/${via} ${host};branch=z9hG4bK-idle-${i};rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:idle${i}@example.test>;tag=t${i}\r\nTo: <sip:example.test>\r\nCall-ID: idle-${i}-${process.pid}\r\nCSeq: 1 OPTIONS\r\n` +
    `User-Agent: sipflow-bench-idle\r\nContent-Length: 0\r\n\r\n`
  );
}

interface Client {
  close: () => void;
}

/** Opens one connection, sends OPTIONS, resolves at the first SIP response. */
function connect(transport: Transport, port: number, i: number, ca: Buffer): Promise<Client> {
  const localAddress = sourceAddress(i);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection ${i} (${transport}): no answer in 30 s`)), 30_000);
    const done = (c: Client): void => {
      clearTimeout(timer);
      resolve(c);
    };
    if (transport === 'ws' || transport === 'wss') {
      const ws = new WebSocket(`${transport}://127.0.0.1:${port}`, 'sip', { localAddress, ca });
      ws.once('open', () => ws.send(options(transport, i, '')));
      ws.once('message', () => done({ close: () => ws.terminate() }));
      ws.once('error', (err) => reject(new Error(`connection ${i} (${transport}): ${err.message}`)));
      return;
    }
    const socket =
      transport === 'tls'
        ? tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), host: '127.0.0.1', ca })
        : net.connect({ host: '127.0.0.1', port, localAddress });
    socket.once(transport === 'tls' ? 'secureConnect' : 'connect', () => socket.write(options(transport, i, `${socket.localAddress}:${socket.localPort}`)));
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) done({ close: () => socket.destroy() });
    });
    socket.once('error', (err) => reject(new Error(`connection ${i} (${transport}): ${err.message}`)));
  });
}

async function openMany(transport: Transport, port: number, n: number, ca: Buffer, from = 0): Promise<Client[]> {
  const clients: Client[] = [];
  const batch = transport === 'tcp' || transport === 'ws' ? 200 : 50;
  for (let i = 0; i < n; i += batch) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => connect(transport, port, from + i + j, ca)))));
  }
  return clients;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Memory once it has settled: two PSS samples 1 s apart within 1 MB (a fresh sipflow frees start-up memory for a while), at most 30 s. */
async function measure(server: Server): Promise<Memory> {
  let last = treeMemory(server.pids());
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const now = treeMemory(server.pids());
    const settled = Math.abs(now.pssKb - last.pssKb) < 1024;
    last = now;
    if (settled) break;
  }
  return { ...last, ...(await server.extra()) };
}

interface Row {
  transport: Transport;
  server: string;
  n: number;
  before: Memory;
  after: Memory;
  openS: number;
}

async function run(o: Options, transport: Transport, server: Server, ca: Buffer): Promise<Row> {
  try {
    // warm-up: code paths, TLS contexts, first allocations (from other source addresses)
    const warm = await openMany(transport, o.port, 100, ca, o.connections + PER_SOURCE);
    for (const c of warm) c.close();
    await sleep(2000);
    const before = await measure(server);
    const t0 = Date.now();
    const clients = await openMany(transport, o.port, o.connections, ca);
    const openS = (Date.now() - t0) / 1000;
    await sleep(3000);
    const after = await measure(server);
    for (const c of clients) c.close();
    return { transport, server: server.name, n: clients.length, before, after, openS };
  } finally {
    await server.stop();
  }
}

function printTable(rows: Row[], o: Options): void {
  const per = (a: number | undefined, b: number | undefined, n: number): string => (a === undefined || b === undefined ? '' : ((b - a) / n).toFixed(1));
  const lines = [
    '',
    `== memory per idle SIP connection, ${o.connections} connections per row (one OPTIONS answered on each), ${new Date().toISOString()}`,
    'kB per connection = (after − before) / connections; PSS summed over the server processes (see the header of bench/sip/idle-connections.ts)',
    `${'transport'.padEnd(10)}${'server'.padEnd(10)}${'conns'.padStart(7)}${'PSS MB'.padStart(16)}${'kB/conn'.padStart(9)}${'RSS kB/conn'.padStart(13)}${'heap kB/conn'.padStart(14)}${'shm kB/conn'.padStart(13)}${'anchor'.padStart(8)}${'open s'.padStart(8)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.transport.padEnd(10)}${r.server.padEnd(10)}${String(r.n).padStart(7)}` +
        `${`${(r.before.pssKb / 1024).toFixed(0)} → ${(r.after.pssKb / 1024).toFixed(0)}`.padStart(16)}` +
        `${per(r.before.pssKb, r.after.pssKb, r.n).padStart(9)}${per(r.before.rssKb, r.after.rssKb, r.n).padStart(13)}` +
        `${per(r.before.heapKb, r.after.heapKb, r.n).padStart(14)}${per(r.before.shmKb, r.after.shmKb, r.n).padStart(13)}` +
        `${(r.server === 'kamailio' ? String(ANCHOR_KB[r.transport] ?? '') : '').padStart(8)}${r.openS.toFixed(1).padStart(8)}`,
    );
  }
  lines.push(
    "anchor: Kamailio's published ≈ 4.5 kB per TCP connection + ≈ 61 kB per TLS connection. RSS for Kamailio = sum over its processes (over-counts shared pages).",
  );
  console.log(lines.join('\n'));
  writeFileSync(path.join(o.work, `report-${Date.now()}.txt`), lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.work, { recursive: true });
  const cert = makeCert(o.work);
  const ca = readFileSync(cert.cert);
  const rows: Row[] = [];
  const failed: string[] = [];
  // one registrar and transport at a time; a failure (e.g. a transport this build lacks) is
  // reported and the others still measured
  const measureOne = async (name: string, transport: Transport, start: () => Promise<Server>): Promise<void> => {
    console.error(`${name} over ${transport}: ${o.connections} connections …`);
    try {
      rows.push(await run(o, transport, await start(), ca));
    } catch (err) {
      failed.push(`${name} over ${transport}: ${err instanceof Error ? err.message.split('\n').slice(0, 6).join(' | ') : String(err)}`);
    }
  };
  for (const transport of o.transports) {
    await measureOne('sipflow', transport, () => startSipflow(o, transport, cert));
    if (o.kamailio && (transport === 'tcp' || transport === 'tls')) await measureOne('kamailio', transport, () => startKamailio(o, transport, cert));
  }
  printTable(rows, o);
  for (const f of failed) console.log(`not measured: ${f}`);
  if (failed.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
