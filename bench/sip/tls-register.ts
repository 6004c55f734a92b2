/**
 * REGISTER load over TLS (or TCP) for bench:sip: SIPp 3.6 as Debian builds it has no TLS
 * (`sipp -t l1` says "To use a TLS transport you must compile SIPp with OpenSSL"), so this driver
 * plays SIPp's register_auth.xml over persistent stream connections, as phones do.
 *
 *   node dist/bench/sip/tls-register.js --target 127.0.0.1:5170 --users users.csv --rate R --calls N
 *        [--transport tls|tcp] [--connections C] [--ca cert.pem] [--timeout-ms 5000] [--max-s S]
 *        [--server-pids "PID …"]
 *
 * A call = REGISTER → 401 → REGISTER with Authorization (MD5, qop=auth, computed with
 * services/auth's computeResponse/ha1) → 200, as in the SIPp scenario: call k registers user
 * k mod U of the SIPp injection file (users.csv: `user;password;…`), Request-URI and digest uri
 * sip:example.test. User u always goes over connection u mod C: C clients, each with its own
 * connection opened (handshake included) before the clock starts, each registering its users.
 * Calls start at a fixed overall rate (a 1 ms tick catches up with rate × elapsed, as SIPp's -r);
 * several calls may be in flight on one connection, matched by Call-ID.
 *
 * Prints one line in the reference kit's format (bench/sip/kamailio/run.sh), so run.sh's ladder
 * applies its pass rule (0 failed, 0 slow = answered in 500 ms or more, every call successful;
 * retrans is always 0 on a stream):
 *   rate_target achieved_cps failed retrans steady_cps successful calls elapsed_s rt_avg_ms slow
 *   rt_p50_ms rt_p90_ms rt_p99_ms rt_max_ms connections conn_setup_s srv_cpu_pct sipp_cpu_pct
 * CPU in % of one core over the load only (from the first call to the last answer; handshakes
 * excluded): srv = the --server-pids' utime+stime (/proc/PID/stat), sipp = this driver's.
 * A call fails on an unexpected status, a call not answered within --timeout-ms, or its connection
 * closing; calls not started or not finished by --max-s (default 1.5 × duration + 5 s, SIPp's
 * -timeout in run.sh) count as failed. Limits: one thread (its CPU is the `sipp_cpu_pct` of the
 * kit's line); loopback targets only.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { computeResponse, ha1 } from '../../services/auth';

interface Options {
  host: string;
  port: number;
  transport: 'tls' | 'tcp';
  usersFile: string;
  rate: number;
  calls: number;
  connections: number;
  ca?: string;
  timeoutMs: number;
  maxS: number;
  domain: string;
  serverPids: number[];
}

function parseArgs(argv: string[]): Options {
  const a = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) throw new Error(`tls-register: bad argument ${k}`);
    a.set(k.slice(2), argv[++i]);
  }
  const num = (k: string, d?: number): number => {
    const v = a.has(k) ? Number(a.get(k)) : d;
    if (v === undefined || !Number.isFinite(v) || v <= 0) throw new Error(`tls-register: --${k} must be a positive number`);
    return v;
  };
  const target = a.get('target') ?? '127.0.0.1:5170';
  const m = /^(127\.\d+\.\d+\.\d+|\[?::1\]?):(\d+)$/.exec(target);
  if (!m) throw new Error(`tls-register: --target must be a loopback host:port (got ${target})`);
  const transport = a.get('transport') ?? 'tls';
  if (transport !== 'tls' && transport !== 'tcp') throw new Error('tls-register: --transport must be tls or tcp');
  const rate = num('rate', 1000);
  const calls = Math.floor(num('calls', rate * 10));
  return {
    host: m[1].replace(/[[\]]/g, ''),
    port: Number(m[2]),
    transport,
    usersFile: a.get('users') ?? 'users.csv',
    rate,
    calls,
    connections: Math.floor(num('connections', 1000)),
    ca: a.get('ca'),
    timeoutMs: num('timeout-ms', 5000),
    maxS: num('max-s', (calls / rate) * 1.5 + 5),
    domain: a.get('domain') ?? 'example.test',
    serverPids: (a.get('server-pids') ?? '').split(/\s+/).filter(Boolean).map(Number),
  };
}

/** utime+stime of the given processes, in seconds (exited ones count 0). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process exited
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}

interface User {
  name: string;
  password: string;
}

/** SIPp injection file: first line SEQUENTIAL, then `user;password;[authentication …]`. */
function readUsers(file: string): User[] {
  const users: User[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
    const [name, password] = line.split(';');
    if (name && password) users.push({ name, password });
  }
  if (users.length === 0) throw new Error(`tls-register: no users in ${file}`);
  return users;
}

interface Call {
  k: number;
  user: User;
  conn: Conn;
  callId: string;
  t0: number;
  timer: NodeJS.Timeout;
}

interface Conn {
  socket: net.Socket;
  local: string;
  buf: Buffer;
}

/** Header value by lower-case name (compact forms for Call-ID), from a header block. */
function header(head: string, name: string, compact?: string): string | undefined {
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const n = line.slice(0, colon).trim().toLowerCase();
    if (n === name || n === compact) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** `Digest realm="x", nonce="y", qop="auth"` → its parameters. */
function digestParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))/g;
  const text = value.replace(/^Digest\s+/i, '');
  for (let m = re.exec(text); m; m = re.exec(text)) params.set(m[1].toLowerCase(), m[2] ?? m[3]);
  return params;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const users = readUsers(o.usersFile);
  const ca = o.ca ? readFileSync(o.ca) : undefined;
  const via = o.transport.toUpperCase();
  const pending = new Map<string, Call>();
  const latencies = new Float64Array(o.calls);
  const perSecond: number[] = [];
  let ok = 0;
  let failed = 0;
  let done = 0;
  let started = 0;
  let tStart = 0;
  let tLast = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const failures = new Map<string, number>();

  const end = (call: Call, why: string | null): void => {
    if (!pending.delete(call.callId)) return;
    clearTimeout(call.timer);
    const now = performance.now();
    if (why === null) {
      latencies[ok++] = now - call.t0;
      const sec = Math.floor((now - tStart) / 1000);
      perSecond[sec] = (perSecond[sec] ?? 0) + 1;
      tLast = now;
    } else {
      failed++;
      failures.set(why, (failures.get(why) ?? 0) + 1);
    }
    if (++done === o.calls) finish();
  };

  const send = (call: Call, cseq: number, auth?: string): void => {
    const { conn, user } = call;
    const msg =
      `REGISTER sip:${o.domain} SIP/2.0\r\n` +
      `Via: SIP/2.0/${via} ${conn.local};branch=z9hG4bK-${process.pid}-${call.k}-${cseq};rport\r\n` +
      `Max-Forwards: 70\r\n` +
      `From: <sip:${user.name}@${o.domain}>;tag=${process.pid}t${call.k}\r\n` +
      `To: <sip:${user.name}@${o.domain}>\r\n` +
      `Call-ID: ${call.callId}\r\n` +
      `CSeq: ${cseq} REGISTER\r\n` +
      // the device's own address, the same for every connection and run (as register_auth.xml's
      // over UDP): a contact per connection would pile up bindings across the ladder's steps
      // until registrar.maxContacts answers 403
      `Contact: <sip:${user.name}@${conn.local.slice(0, conn.local.lastIndexOf(':'))}:5060;transport=${o.transport}>\r\n` +
      (auth ? `Authorization: ${auth}\r\n` : '') +
      `Expires: 3600\r\n` +
      `User-Agent: sipflow-bench-register\r\n` +
      `Content-Length: 0\r\n\r\n`;
    conn.socket.write(msg);
  };

  const onResponse = (head: string): void => {
    const callId = header(head, 'call-id', 'i');
    const call = callId === undefined ? undefined : pending.get(callId);
    if (!call) return; // a late answer to a call already timed out
    const status = Number(head.slice(8, 11));
    if (status < 200) return;
    const cseq = Number((header(head, 'cseq') ?? '').split(/\s+/)[0]);
    if (cseq === 1 && status === 401) {
      const challenge = digestParams(header(head, 'www-authenticate') ?? '');
      const realm = challenge.get('realm') ?? o.domain;
      const nonce = challenge.get('nonce') ?? '';
      const uri = `sip:${o.domain}`;
      const cnonce = `${process.pid.toString(16)}${call.k.toString(16)}`;
      const response = computeResponse({
        algorithm: 'MD5',
        ha1: ha1('MD5', call.user.name, realm, call.user.password),
        nonce,
        nc: '00000001',
        cnonce,
        qop: 'auth',
        method: 'REGISTER',
        uri,
      });
      const opaque = challenge.get('opaque');
      send(
        call,
        2,
        `Digest username="${call.user.name}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, ` +
          `cnonce="${cnonce}", qop=auth, nc=00000001${opaque === undefined ? '' : `, opaque="${opaque}"`}`,
      );
    } else if (cseq === 2 && status === 200) {
      end(call, null);
    } else {
      end(call, `status_${status}_cseq_${cseq}`);
    }
  };

  /** Splits the stream into messages (Content-Length framing; CRLF keep-alives skipped). */
  const onData = (conn: Conn, chunk: Buffer): void => {
    conn.buf = conn.buf.length === 0 ? chunk : Buffer.concat([conn.buf, chunk]);
    for (;;) {
      while (conn.buf.length >= 2 && conn.buf[0] === 13 && conn.buf[1] === 10) conn.buf = conn.buf.subarray(2);
      const eoh = conn.buf.indexOf('\r\n\r\n');
      if (eoh < 0) return;
      const head = conn.buf.toString('latin1', 0, eoh);
      const len = Number(header(head, 'content-length', 'l') ?? 0);
      if (conn.buf.length < eoh + 4 + len) return;
      conn.buf = conn.buf.subarray(eoh + 4 + len);
      if (head.startsWith('SIP/2.0 ')) onResponse(head);
    }
  };

  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const socket =
        o.transport === 'tls'
          ? tls.connect({ host: o.host, port: o.port, ca, servername: ca ? undefined : 'localhost', rejectUnauthorized: ca !== undefined })
          : net.connect({ host: o.host, port: o.port });
      socket.setNoDelay(true);
      const conn: Conn = { socket, local: '', buf: Buffer.alloc(0) };
      socket.once(o.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        conn.local = `${socket.localAddress}:${socket.localPort}`;
        resolve(conn);
      });
      socket.on('data', (chunk: Buffer) => onData(conn, chunk));
      socket.on('error', (err) => reject(err));
      socket.on('close', () => {
        for (const call of [...pending.values()]) if (call.conn === conn) end(call, 'connection_closed');
      });
    });

  // connections first (handshakes are not measured), a few at a time
  const t0Setup = performance.now();
  const conns: Conn[] = [];
  for (let i = 0; i < o.connections; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, o.connections - i) }, open));
    conns.push(...batch);
  }
  const setupS = (performance.now() - t0Setup) / 1000;

  tStart = performance.now();
  const srv0 = cpuSeconds(o.serverPids);
  const self0 = process.cpuUsage();
  const startCall = (): void => {
    const k = started++;
    const u = k % users.length;
    const call: Call = {
      k,
      user: users[u],
      conn: conns[u % conns.length],
      callId: `${process.pid}-${k}@sipflow-bench`,
      t0: performance.now(),
      timer: setTimeout(() => end(call, 'timeout'), o.timeoutMs),
    };
    pending.set(call.callId, call);
    send(call, 1);
  };
  const tick = (): void => {
    const due = Math.min(o.calls, Math.floor((o.rate * (performance.now() - tStart)) / 1000) + 1);
    while (started < due) startCall();
    if (started < o.calls) setTimeout(tick, 1);
  };
  tick();
  const deadline = setTimeout(() => {
    for (const call of [...pending.values()]) end(call, 'run_timeout');
    const notStarted = o.calls - started;
    if (notStarted > 0) {
      failed += notStarted;
      failures.set('not_started', notStarted);
      started = o.calls;
      finish();
    }
  }, o.maxS * 1000);
  await finished;
  clearTimeout(deadline);
  const wall = (performance.now() - tStart) / 1000;
  const srvCpu = o.serverPids.length === 0 ? 'NA' : ((100 * (cpuSeconds(o.serverPids) - srv0)) / wall).toFixed(1);
  const self = process.cpuUsage(self0);
  const selfCpu = ((self.user + self.system) / 1e4 / wall).toFixed(1);
  const elapsed = ((ok > 0 ? tLast : performance.now()) - tStart) / 1000;
  for (const c of conns) c.socket.destroy();

  const lat = latencies.subarray(0, ok).sort();
  const firstSlow = lat.findIndex((x) => x >= 500);
  const slow = firstSlow < 0 ? 0 : ok - firstSlow;
  const pct = (p: number): string => (ok === 0 ? 'NA' : lat[Math.min(ok - 1, Math.floor((ok * p) / 100))].toFixed(2));
  const avg = ok === 0 ? 'NA' : (lat.reduce((s, x) => s + x, 0) / ok).toFixed(2);
  // steady rate: median of the per-second successes, first and last second left out (as the kit)
  const inner = perSecond.slice(1, -1).map((x) => x ?? 0);
  const steady = inner.length === 0 ? 'NA' : inner.sort((x, y) => x - y)[Math.floor(inner.length / 2)].toFixed(1);
  const why = [...failures].map(([k, v]) => `${k}:${v}`).join(',');
  console.log(
    `rate_target=${o.rate} achieved_cps=${(ok / elapsed).toFixed(1)} failed=${failed} retrans=0 steady_cps=${steady} successful=${ok} ` +
      `calls=${started} elapsed_s=${elapsed.toFixed(3)} rt_avg_ms=${avg} slow=${slow} rt_p50_ms=${pct(50)} rt_p90_ms=${pct(90)} rt_p99_ms=${pct(99)} ` +
      `rt_max_ms=${pct(100)} connections=${conns.length} conn_setup_s=${setupS.toFixed(2)} srv_cpu_pct=${srvCpu} sipp_cpu_pct=${selfCpu}${why ? ` failures=${why}` : ''}`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
