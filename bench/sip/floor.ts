/**
 * The platform's floor for the kit's REGISTER scenario: the least a Node 20 program can do per call
 * on this machine and still be a digest registrar, with nothing of sipflow in it. `run.sh
 * --pairing floor` drives it with the same SIPp scenario, users and steps as the registrars, so its
 * CPU per call sits beside Kamailio's and sipflow's in one run (docs/performance.md, "The
 * platform's floor").
 *
 * Why: issue 19 asks sipflow to beat Kamailio's C in the memory pairing and to cost at 500 calls/s no
 * more than 1.5 times its cost at its best rate. Whether a target is within reach of any program on
 * this stack, or only beyond sipflow's code, is a measurement, not an opinion: this is that program.
 *
 * What it does per datagram, and nothing more: split the header lines (no grammar, no validation,
 * no transaction layer, no logic), and either challenge (a stateless nonce: time and a keyed hash of
 * it, as sipflow's `services/auth` makes one) or check the credentials (the nonce's MAC, MD5 of
 * HA1:nonce:nc:cnonce:qop:HA2 against HA1s computed at start), keep the binding in a Map and answer
 * 200 with the Contact. It trusts the request's shape; it is not a registrar anyone should run.
 *
 * `--processes N` forks N processes that share the one UDP socket (node:cluster shares a dgram
 * handle: every process reads the same descriptor), as Kamailio's children share theirs. Any process
 * may take either REGISTER of a call, which the stateless nonce allows; each keeps its own bindings.
 * sipflow cannot do this (its transactions, dialogs and nonce counts live in one process).
 *
 *   node dist/bench/sip/floor.js --port 5090 --customers customers.csv [--processes 2]
 */
import cluster from 'node:cluster';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

interface Options {
  host: string;
  port: number;
  customers: string;
  processes: number;
  realm: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { host: '127.0.0.1', port: 0, customers: '', processes: 1, realm: 'example.test' };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`floor: ${k} needs a value`);
    if (k === '--host') o.host = v;
    else if (k === '--port') o.port = Number(v);
    else if (k === '--customers') o.customers = v;
    else if (k === '--processes') o.processes = Number(v);
    else if (k === '--realm') o.realm = v;
    else throw new Error(`floor: unknown option ${k}`);
  }
  if (!Number.isInteger(o.port) || o.port <= 0 || o.port > 65535) throw new Error('floor: --port must be a port number');
  if (!o.customers) throw new Error('floor: --customers CSV (name,username,password,aor) is required');
  if (!Number.isInteger(o.processes) || o.processes < 1 || o.processes > 16) throw new Error('floor: --processes must be 1..16');
  return o;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** HA1 per username, from the bench's customers.csv (name,username,password,aor). */
function loadHa1(file: string, realm: string): Map<string, string> {
  const ha1 = new Map<string, string>();
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(',');
    if (f.length < 3) continue;
    ha1.set(f[1], md5(`${f[1]}:${realm}:${f[2]}`));
  }
  return ha1;
}

/** Stateless nonce: seconds since the epoch and the first 16 bytes of a keyed SHA-512/256 of them (as services/auth/nonce.ts), base64url. */
function nonceMaker(secret: Buffer): { make(): string; valid(nonce: string): boolean } {
  const key = createHash('sha512-256').update(secret).digest();
  const mac = (ts: Buffer): Buffer => createHash('sha512-256').update(key).update(ts).digest().subarray(0, 16);
  return {
    make() {
      const ts = Buffer.alloc(4);
      ts.writeUInt32BE(Math.floor(Date.now() / 1000));
      return Buffer.concat([ts, mac(ts)]).toString('base64url');
    },
    valid(nonce) {
      const raw = Buffer.from(nonce, 'base64url');
      if (raw.length !== 20) return false;
      const ts = raw.subarray(0, 4);
      if (Math.floor(Date.now() / 1000) - ts.readUInt32BE(0) > 30) return false;
      return timingSafeEqual(raw.subarray(4), mac(ts));
    },
  };
}

const AUTH_PARAM = /(\w+)=(?:"([^"]*)"|([^,\s]+))/g;

function serve(o: Options, key: Buffer): void {
  const ha1 = loadHa1(o.customers, o.realm);
  const nonces = nonceMaker(key);
  const bindings = new Map<string, { contact: string; expires: number }>();
  // 4 MiB both ways, as sipflow's UDP transport asks (sip/transports/udp.ts)
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  socket.on('error', (e) => {
    console.error(`floor: ${e.message}`);
    process.exit(1);
  });
  socket.on('message', (buf, rinfo) => {
    const text = buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    const lines = text.slice(0, end < 0 ? text.length : end).split('\r\n');
    if (!lines[0].startsWith('REGISTER ')) return;
    const copied: string[] = [];
    let to = '';
    let contact = '';
    let authorization = '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'via' || name === 'from' || name === 'call-id' || name === 'cseq') copied.push(line);
      else if (name === 'to') to = line;
      else if (name === 'contact') contact = line.slice(colon + 1).trim();
      else if (name === 'authorization') authorization = line.slice(colon + 1).trim();
    }
    const head = `${copied.join('\r\n')}\r\n${to};tag=fl${rinfo.port}\r\n`;
    let reply: string;
    if (!authorization) {
      reply = `SIP/2.0 401 Unauthorized\r\n${head}WWW-Authenticate: Digest realm="${o.realm}", nonce="${nonces.make()}", qop="auth", algorithm=MD5\r\nContent-Length: 0\r\n\r\n`;
    } else {
      const p: Record<string, string> = {};
      for (const m of authorization.slice(7).matchAll(AUTH_PARAM)) p[m[1]] = m[2] ?? m[3];
      const user = ha1.get(p.username ?? '');
      const ok =
        user !== undefined && nonces.valid(p.nonce ?? '') && md5(`${user}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${md5(`REGISTER:${p.uri}`)}`) === p.response;
      if (ok) {
        bindings.set(p.username, { contact, expires: Date.now() + 3_600_000 });
        reply = `SIP/2.0 200 OK\r\n${head}Contact: ${contact};expires=3600\r\nContent-Length: 0\r\n\r\n`;
      } else {
        reply = `SIP/2.0 403 Forbidden\r\n${head}Content-Length: 0\r\n\r\n`;
      }
    }
    socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.bind({ address: o.host, port: o.port, exclusive: false }, () => {
    console.log(`floor: SIP udp ${o.host}:${o.port} listening (pid ${process.pid})`);
  });
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  // a clean exit on a signal, so that `node --cpu-prof` writes its profile
  const exit = (): void => process.exit(0);
  if (o.processes === 1) {
    process.on('SIGTERM', exit).on('SIGINT', exit);
    return serve(o, randomBytes(32));
  }
  if (cluster.isPrimary) {
    // one nonce key for every process: either REGISTER of a call may reach any of them
    const key = randomBytes(32).toString('hex');
    for (let i = 0; i < o.processes; i++) cluster.fork({ FLOOR_NONCE_KEY: key });
    cluster.on('exit', (w, code) => {
      console.error(`floor: process ${w.process.pid} exited (${code})`);
      process.exit(1);
    });
    const stop = (): void => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      process.exit(0);
    };
    process.on('SIGTERM', stop).on('SIGINT', stop);
    return;
  }
  serve(o, Buffer.from(process.env.FLOOR_NONCE_KEY ?? '', 'hex'));
}

main();
