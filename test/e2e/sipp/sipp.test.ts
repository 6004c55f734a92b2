/**
 * sipflow's own SIP front end end to end, driven by SIPp 3.6 (issue "SIP front end", item 6).
 *
 * One real `sipflow serve` process (the built CLI, dist/cli/main.js) on a fresh temp data dir:
 * PGlite directory in <dataDir>/directory, the default SQL location store (Kamailio's `location`
 * table on it), random free SIP and HTTP ports, and the shipped flows copied to a temp folder with
 * one change: pbx.slid's `pstnTrunks` (node 1 of logic `pbx`) lists 127.0.0.2, the address the
 * PSTN trunk's SIPp binds to (127.0.0.0/8 is all loopback on Linux, no alias needed). Customers and
 * numbers are provisioned with `sipflow import` from CSV files written at run time.
 *
 * SIPp runs in the foreground with -nostdin and its exit code counts; every run keeps its
 * -trace_err, -trace_stat, -trace_msg files and screen output under test-artifacts/sipp/ (wiped at
 * the start of the suite) for diagnosis. Processes are killed by pid on failure and in afterAll.
 *
 * The call history records every call (history.mode all, written within a second): the last test
 * reads a registration and a call back from GET /api/v1/calls (issue 16).
 *
 * The scenarios are the .xml files beside this file.
 */
import { spawn, type ChildProcess } from 'child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { randomBytes } from 'crypto';
import os from 'os';
import path from 'path';
import {
  configureSipp,
  distinct,
  expectOk,
  firstLines,
  freeUdpPort,
  hdr,
  killAll,
  run,
  sippRun,
  startUas,
  traced,
  track,
  uasAfter,
  type SippResult,
} from '../../support/sipp';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const FLOWS = path.join(ROOT, 'flows');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/sipp');
const DOMAIN = 'nl.netaxis.be';
/** Where sipflow listens and the PBXs / destinations live. */
const HOST = '127.0.0.1';
/** The PSTN trunk's source address (configured as pbx.slid's pstnTrunks in the test's flow copy). */
const TRUNK = '127.0.0.2';

// ---------------------------------------------------------------- the directory the test provisions

const secret = () => randomBytes(6).toString('hex');
interface Pbx {
  name: string;
  username: string;
  password: string;
  numbers: Array<{ number: string; range?: boolean }>;
}

/** pbx001 … pbx100: each with its own password and a single number 0031550NNN. */
const PBXS: Pbx[] = Array.from({ length: 100 }, (_, i) => {
  const n = String(i + 1).padStart(3, '0');
  return { name: `PBX ${n}`, username: `pbx${n}`, password: `pw-${n}-${secret()}`, numbers: [{ number: `0031550${n}` }] };
});
/** Outgoing call: calls with one of its numbers as CLI (call screening). */
const CHARLIE: Pbx = { name: 'Charlie PBX', username: 'charlie', password: `charlie-${secret()}`, numbers: [{ number: '0031880100' }] };
/** Incoming call to an exact DID. */
const ALPHA: Pbx = { name: 'Alpha PBX', username: 'alpha', password: `alpha-${secret()}`, numbers: [{ number: '000112244' }] };
/** Incoming call into a range (longer than Idle's range, which must lose). */
const BRAVO: Pbx = { name: 'Bravo PBX', username: 'bravo', password: `bravo-${secret()}`, numbers: [{ number: '0032201', range: true }] };
/** Owns numbers but never registers: 480. */
const IDLE: Pbx = { name: 'Idle PBX', username: 'idle', password: `idle-${secret()}`, numbers: [{ number: '000999888' }, { number: '00322', range: true }] };
/** Only ever tries a wrong password. */
const DELTA: Pbx = { name: 'Delta PBX', username: 'delta', password: `delta-${secret()}`, numbers: [{ number: '0031990100' }] };
const ALL = [...PBXS, CHARLIE, ALPHA, BRAVO, IDLE, DELTA];

// ---------------------------------------------------------------- sipflow serve

interface Sipflow {
  proc: ChildProcess;
  sipPort: number;
  api: string;
  token: string;
  log(): string;
}

async function startSipflow(dataDir: string, flowsDir: string): Promise<Sipflow> {
  const args = [
    MAIN,
    'serve',
    '--data-dir',
    dataDir,
    '--directory-url',
    path.join(dataDir, 'directory'),
    '--location-url',
    'sql',
    '--flows',
    flowsDir,
    '--domain',
    DOMAIN,
    '--sip-host',
    HOST,
    '--sip-port',
    '0',
    '--http-host',
    HOST,
    '--http-port',
    '0',
    '--log-level',
    'warn',
    '--config',
    path.join(dataDir, '..', 'sipflow.json'),
  ];
  // every call recorded, written a second after its last message (the call history, services/history)
  writeFileSync(path.join(dataDir, '..', 'sipflow.json'), JSON.stringify({ history: { mode: 'all', idleFlushSec: 1, flushMs: 100 } }));
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  const onData = (d: Buffer) => {
    out += d;
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const { sipPort, httpPort } = await new Promise<{ sipPort: number; httpPort: number }>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`sipflow serve not listening within 90 s:\n${out}`));
    }, 90_000);
    const check = () => {
      const sip = /SIP default listening on \S+ udp:(\d+)/.exec(out);
      const http = /HTTP API on http:\/\/[^:]+:(\d+)\/api\/v1/.exec(out);
      if (sip && http) {
        cleanup();
        resolve({ sipPort: Number(sip[1]), httpPort: Number(http[1]) });
      }
    };
    const exited = (code: number | null) => {
      cleanup();
      reject(new Error(`sipflow serve exited (${code}) before listening:\n${out}`));
    };
    const cleanup = () => {
      clearTimeout(t);
      proc.stdout!.off('data', check);
      proc.off('exit', exited);
    };
    proc.stdout!.on('data', check);
    proc.once('exit', exited);
  });
  const token = readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
  return { proc, sipPort, api: `http://${HOST}:${httpPort}/api/v1`, token, log: () => out };
}

async function stopSipflow(s: Sipflow | undefined): Promise<number | null> {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return s?.proc.exitCode ?? null;
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        process.kill(s.proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
    s.proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    process.kill(s.proc.pid!, 'SIGTERM');
  });
}

interface Binding {
  username: string;
  contact: string;
  received: string | null;
  expiresIn: number;
  user_agent: string | null;
  callid: string;
}

/** GET on the API with the token; throws on any status but 200. */
async function apiGet<T>(pathAndQuery: string): Promise<T> {
  const r = await fetch(`${sipflow.api}${pathAndQuery}`, { headers: { authorization: `Bearer ${sipflow.token}` } });
  if (r.status !== 200) throw new Error(`GET ${pathAndQuery}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function registrations(query: Record<string, string>): Promise<{ rows: Binding[]; total: number }> {
  const qs = new URLSearchParams({ limit: '1000', ...query });
  const r = await fetch(`${sipflow.api}/registrations?${qs}`, { headers: { authorization: `Bearer ${sipflow.token}` } });
  if (r.status !== 200) throw new Error(`GET /registrations?${qs}: ${r.status} ${await r.text()}`);
  return (await r.json()) as { rows: Binding[]; total: number };
}

// ---------------------------------------------------------------- SIPp

const authField = (p: Pbx, password = p.password) => `[authentication username=${p.username} password=${password}]`;

/** A PBX registers from `port` (the Contact points there): REGISTER → 401 → REGISTER → 200. */
async function register(p: Pbx, port: number, name = `register-${p.username}`): Promise<SippResult> {
  const r = await sippRun({
    name,
    scenario: 'register.xml',
    csv: [`${p.username};${authField(p)}`],
    keys: { domain: DOMAIN, expires: '300' },
    authUri: DOMAIN,
    localPort: port,
    calls: 1,
    remote: `${HOST}:${sipflow.sipPort}`,
  });
  expectOk(r, 1, `register ${p.username}`);
  return r;
}

/** CHARLIE (registered from `pbxPort`) calls `called` at a SIPp UAS: 407, the call relayed, 180, 200, ACK, BYE; both sides checked OK. */
async function outgoingCall(
  name: string,
  called: string,
  pbxPort: number,
): Promise<{ caller: SippResult; callee: SippResult; dest: string; destPort: number }> {
  const destPort = await freeUdpPort();
  const dest = `${HOST}:${destPort}`;
  const uas = await startUas(`${name}-destination`, 'trunk', destPort);
  const caller = await sippRun({
    name: `${name}-call`,
    scenario: 'pbx-call.xml',
    csv: [`${CHARLIE.username};${authField(CHARLIE)};${CHARLIE.numbers[0].number}`],
    service: called,
    keys: { domain: DOMAIN, dest },
    authUri: `${called}@${dest}`,
    localPort: pbxPort,
    calls: 1,
    remote: `${HOST}:${sipflow.sipPort}`,
  });
  const callee = await uasAfter(uas, caller, `${name}: PBX outgoing call`);
  expectOk(caller, 1, `${name}: PBX outgoing call`);
  expectOk(callee, 1, `${name}: destination UAS`);
  return { caller, callee, dest, destPort };
}

// ---------------------------------------------------------------- fixture

let dir: string;
let sipflow: Sipflow;

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  configureSipp({ host: HOST, artifacts: ARTIFACTS, scenarios: __dirname, serverLog: () => sipflow?.log() ?? '' });
  await freeUdpPort(TRUNK).catch((e: Error) => {
    throw new Error(
      `cannot bind ${TRUNK}, the PSTN trunk's address (${e.message}): on Linux all of 127.0.0.0/8 is loopback; elsewhere add it, e.g. \`ip addr add ${TRUNK}/8 dev lo\``,
    );
  });
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-sipp-'));
  const dataDir = path.join(dir, 'data');

  // the shipped flows, with the PSTN trunk = the address the trunk's SIPp binds to
  const flowsDir = path.join(dir, 'flows');
  mkdirSync(flowsDir);
  for (const f of readdirSync(FLOWS).filter((x) => x.endsWith('.slid'))) copyFileSync(path.join(FLOWS, f), path.join(flowsDir, f));
  const pbx = JSON.parse(readFileSync(path.join(flowsDir, 'pbx.slid'), 'utf8'));
  const settings = pbx['1']?.nodes?.['1'];
  const trunks = settings?.values?.variables?.find((v: { variable: string }) => v.variable === 'pstnTrunks');
  if (settings?.type !== 'action.setVariables' || !trunks) throw new Error('flows/pbx.slid: logic 1 node 1 no longer sets pstnTrunks; update this test');
  trunks.value = TRUNK;
  writeFileSync(path.join(flowsDir, 'pbx.slid'), JSON.stringify(pbx, null, 2));

  // provisioning with the CLI, before the server opens the (single-process) PGlite directory
  const customers = path.join(dir, 'customers.csv');
  const numbers = path.join(dir, 'numbers.csv');
  writeFileSync(customers, ['name,username,password,aor', ...ALL.map((p) => `${p.name},${p.username},${p.password},${p.username}@${DOMAIN}`), ''].join('\n'));
  writeFileSync(
    numbers,
    ['number,is_range,customer', ...ALL.flatMap((p) => p.numbers.map((n) => `${n.number},${n.range ? 'true' : 'false'},${p.name}`)), ''].join('\n'),
  );
  const imported = await run(process.execPath, [MAIN, 'import', '--data-dir', dataDir, '--customers', customers, '--numbers', numbers], 90_000);
  expect(imported).toContain(`imported ${ALL.length} customer(s) and ${ALL.reduce((n, p) => n + p.numbers.length, 0)} number(s)`);

  sipflow = await startSipflow(dataDir, flowsDir);
}, 200_000);

afterAll(async () => {
  const code = await stopSipflow(sipflow);
  if (sipflow) writeFileSync(path.join(ARTIFACTS, 'sipflow.log'), sipflow.log());
  await killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (sipflow && code !== 0) throw new Error(`sipflow serve exited ${code} on SIGTERM:\n${sipflow.log().slice(-3000)}`);
}, 30_000);

// ---------------------------------------------------------------- tests

describe('SIPp against sipflow serve (flows/pbx.slid)', () => {
  test('100 PBXs register with digest auth (credentials from CSV): 100 successful calls, 100 bindings stored', async () => {
    const port = await freeUdpPort();
    const r = await sippRun({
      name: 'register-100',
      scenario: 'register.xml',
      csv: PBXS.map((p) => `${p.username};${authField(p)}`),
      keys: { domain: DOMAIN, expires: '300' },
      authUri: DOMAIN,
      localPort: port,
      calls: PBXS.length,
      rate: 50,
      limit: 20,
      remote: `${HOST}:${sipflow.sipPort}`,
      timeoutSec: 90,
    });
    expectOk(r, 100, 'register 100 PBXs');
    // one 200 per PBX; nothing but 100 / 401 / 200 came back
    const received = firstLines(r, 'received');
    expect(
      new Set(
        traced(r.messages)
          .filter((m) => m.firstLine.startsWith('SIP/2.0 200'))
          .map((m) => m.callId),
      ).size,
    ).toBe(100);
    expect(received.filter((l) => /^SIP\/2\.0 (?!(100|200|401) )/.test(l))).toEqual([]);

    const { rows, total } = await registrations({ search: 'pbx' });
    expect(total).toBe(100);
    const byUser = new Map(rows.map((b) => [b.username, b]));
    expect([...byUser.keys()].sort()).toEqual(PBXS.map((p) => p.username));
    for (const p of PBXS) {
      const b = byUser.get(p.username)!;
      expect(b.contact).toBe(`sip:${p.username}@${HOST}:${port}`);
      expect(b.received).toBeNull(); // the source is where the contact points
      expect(b.user_agent).toBe('SIPp PBX');
      expect(b.expiresIn).toBeGreaterThan(200);
      expect(b.expiresIn).toBeLessThanOrEqual(300);
    }
  }, 120_000);

  test('a wrong password is challenged again, never 200, and stores no binding', async () => {
    const wrong = `not-${DELTA.password}`;
    const csv = [`${DELTA.username};${authField(DELTA, wrong)}`];
    const rejected = await sippRun({
      name: 'register-wrong-password',
      scenario: 'register-rejected.xml',
      csv,
      keys: { domain: DOMAIN, expires: '300' },
      authUri: DOMAIN,
      localPort: await freeUdpPort(),
      calls: 1,
      remote: `${HOST}:${sipflow.sipPort}`,
    });
    expectOk(rejected, 1, 'register with a wrong password (expects 401, 401)');
    const received = firstLines(rejected, 'received').filter((l) => !l.startsWith('SIP/2.0 100'));
    expect(received.length).toBeGreaterThanOrEqual(2);
    expect(received.every((l) => l.startsWith('SIP/2.0 401'))).toBe(true);
    const sent = traced(rejected.messages).filter((m) => m.dir === 'sent' && m.firstLine.startsWith('REGISTER'));
    expect(hdr(sent[sent.length - 1].text, 'Authorization')).toMatch(new RegExp(`^Digest username="${DELTA.username}"`));

    // the same wrong password with the scenario that expects 200: SIPp fails the call
    const expecting200 = await sippRun({
      name: 'register-wrong-password-expecting-200',
      scenario: 'register.xml',
      csv,
      keys: { domain: DOMAIN, expires: '300' },
      authUri: DOMAIN,
      localPort: await freeUdpPort(),
      calls: 1,
      remote: `${HOST}:${sipflow.sipPort}`,
    });
    expect(expecting200.code).not.toBe(0);
    expect(expecting200.failed).toBe(1);
    expect(firstLines(expecting200, 'received').filter((l) => l.startsWith('SIP/2.0 200'))).toEqual([]);

    expect((await registrations({ aor: DELTA.username, expired: 'true' })).total).toBe(0);
    expect((await registrations({ search: DELTA.username, expired: 'true' })).total).toBe(0);
  }, 60_000);

  test('an outgoing call from a registered PBX: 407, then relayed to the destination (SIPp UAS); 180, 200, ACK, BYE', async () => {
    const pbxPort = await freeUdpPort();
    await register(CHARLIE, pbxPort);
    const called = '0044201234';
    const { caller, callee, dest } = await outgoingCall('outgoing', called, pbxPort);

    // caller: challenged once (407 with a Proxy-Authenticate of the domain's realm), then the call
    const got = distinct(traced(caller.messages)).filter((m) => m.dir === 'received' && !m.firstLine.startsWith('SIP/2.0 100'));
    expect(got.map((m) => m.firstLine)).toEqual(['SIP/2.0 407 Proxy Authentication Required', 'SIP/2.0 180 Ringing', 'SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
    expect(hdr(got[0].text, 'Proxy-Authenticate')).toMatch(new RegExp(`^Digest .*realm="${DOMAIN.replace(/\./g, '\\.')}"`));
    expect(hdr(got[3].text, 'CSeq')).toBe('3 BYE');

    // destination: exactly the authenticated INVITE, relayed by sipflow, then ACK and BYE
    const seen = distinct(traced(callee.messages)).filter((m) => m.dir === 'received');
    expect(seen.map((m) => m.firstLine.split(' ')[0])).toEqual(['INVITE', 'ACK', 'BYE']);
    const invite = seen[0].text;
    expect(seen[0].firstLine).toBe(`INVITE sip:${called}@${dest} SIP/2.0`);
    expect(hdr(invite, 'From')).toContain(`<sip:${CHARLIE.numbers[0].number}@${DOMAIN}>`);
    expect(hdr(invite, 'CSeq')).toBe('2 INVITE');
    expect(invite.match(/^Via:/gim)).toHaveLength(2); // sipflow's + the PBX's
    expect(hdr(invite, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/UDP ${HOST}:${sipflow.sipPort};branch=z9hG4bK`));
  }, 90_000);

  /** PSTN → DID: the PBX registers from `port`, a UAS takes the call there; the trunk calls from 127.0.0.2. */
  async function incomingCall(p: Pbx, did: string): Promise<void> {
    const port = await freeUdpPort();
    await register(p, port);
    const uas = await startUas(`incoming-${p.username}`, p.username, port);
    const trunk = await sippRun({
      name: `incoming-${did}`,
      scenario: 'pstn-call.xml',
      service: did,
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: 1,
      remote: `${HOST}:${sipflow.sipPort}`,
    });
    const pbx = await uasAfter(uas, trunk, `PSTN call to ${did}`);
    expectOk(trunk, 1, `PSTN call to ${did}`);
    expectOk(pbx, 1, `${p.username}'s UAS`);

    // no authentication asked of the trunk: 180, 200 (INVITE), 200 (BYE)
    const got = distinct(traced(trunk.messages))
      .filter((m) => m.dir === 'received' && !m.firstLine.startsWith('SIP/2.0 100'))
      .map((m) => m.firstLine);
    expect(got).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
    // the PBX got the call at the contact it registered, with the DID in To
    const seen = distinct(traced(pbx.messages)).filter((m) => m.dir === 'received');
    expect(seen.map((m) => m.firstLine.split(' ')[0])).toEqual(['INVITE', 'ACK', 'BYE']);
    expect(seen[0].firstLine).toBe(`INVITE sip:${p.username}@${HOST}:${port} SIP/2.0`);
    expect(hdr(seen[0].text, 'To')).toBe(`<sip:${did}@${DOMAIN}>`);
    expect(seen[0].text.match(/^Via:/gim)).toHaveLength(2);
    expect(hdr(seen[0].text, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/UDP ${HOST}:${sipflow.sipPort};`));
  }

  test('an incoming PSTN call to an exact DID reaches the PBX that registered it; 180, 200, ACK, BYE', async () => {
    await incomingCall(ALPHA, ALPHA.numbers[0].number);
  }, 90_000);

  test("an incoming PSTN call to a number inside a range reaches that range's PBX (longest prefix); 180, 200, ACK, BYE", async () => {
    // 00322015555: Bravo's range 0032201 beats Idle's 00322 (Idle is not registered: the wrong pick gives 480)
    await incomingCall(BRAVO, `${BRAVO.numbers[0].number}5555`);
  }, 90_000);

  /** The trunk calls each number; returns number → final status. */
  async function refused(name: string, dids: string[]): Promise<Record<string, number>> {
    const r = await sippRun({
      name,
      scenario: 'pstn-rejected.xml',
      csv: dids,
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: dids.length,
      remote: `${HOST}:${sipflow.sipPort}`,
    });
    expectOk(r, dids.length, name);
    const msgs = traced(r.messages);
    const out: Record<string, number> = {};
    for (const m of msgs) {
      if (m.dir !== 'received' || /^SIP\/2\.0 1\d\d/.test(m.firstLine)) continue;
      const invite = msgs.find((x) => x.dir === 'sent' && x.callId === m.callId && x.firstLine.startsWith('INVITE'))!;
      out[/^INVITE sip:([^@]+)@/.exec(invite.firstLine)![1]] = Number(m.firstLine.split(' ')[1]);
    }
    return out;
  }

  test('an incoming call to an unknown number gets 404', async () => {
    // 0001122445: Alpha's single number 000112244 is never used as a prefix
    expect(await refused('incoming-unknown', ['0099123456', '0001122445'])).toEqual({ '0099123456': 404, '0001122445': 404 });
  }, 60_000);

  test('an incoming call to a number whose PBX is not registered gets 480', async () => {
    // Idle's single number, and a number in Idle's range 00322 outside Bravo's 0032201
    expect((await registrations({ aor: IDLE.username, expired: 'true' })).total).toBe(0);
    expect(await refused('incoming-not-registered', [IDLE.numbers[0].number, '003229999'])).toEqual({ [IDLE.numbers[0].number]: 480, '003229999': 480 });
  }, 60_000);

  test('the scenarios of examples/sipp run as documented: OPTIONS 200, the sample PBX registers and calls out', async () => {
    const EXAMPLES = path.join(ROOT, 'examples/sipp');
    const remote = `${HOST}:${sipflow.sipPort}`;
    const options = await sippRun({
      name: 'example-options',
      scenario: path.join(EXAMPLES, 'options.xml'),
      keys: { domain: DOMAIN },
      localPort: await freeUdpPort(),
      calls: 1,
      remote,
    });
    expectOk(options, 1, 'examples/sipp/options.xml');

    // the note's sample subscriber, provisioned by `sipflow serve` (francesco / 123456, number 000112233)
    const francesco = { user: 'francesco', password: '123456' };
    const port = await freeUdpPort();
    const reg = await sippRun({
      name: 'example-pbx-register',
      scenario: path.join(EXAMPLES, 'pbx-register.xml'),
      service: 'francesco',
      auth: francesco,
      keys: { domain: DOMAIN },
      authUri: DOMAIN,
      localPort: port,
      calls: 1,
      remote,
    });
    expectOk(reg, 1, 'examples/sipp/pbx-register.xml');
    expect((await registrations({ aor: 'francesco' })).rows.map((b) => b.contact)).toContain(`sip:francesco@${HOST}:${port}`);

    // the outgoing call to SIPp's built-in UAS standing for the destination
    const destPort = await freeUdpPort();
    const uas = await startUas('example-destination', 'trunk', destPort, 'sn:uas');
    const call = await sippRun({
      name: 'example-pbx-outgoing-call',
      scenario: path.join(EXAMPLES, 'pbx-outgoing-call.xml'),
      service: '6756757',
      auth: francesco,
      keys: { domain: DOMAIN, cli: '000112233', dest: `${HOST}:${destPort}` },
      authUri: `6756757@${HOST}:${destPort}`,
      localPort: port,
      calls: 1,
      remote,
    });
    const callee = await uasAfter(uas, call, 'examples/sipp/pbx-outgoing-call.xml');
    expectOk(call, 1, 'examples/sipp/pbx-outgoing-call.xml');
    expectOk(callee, 1, 'sipp -sn uas (destination)');
    expect(
      distinct(traced(callee.messages))
        .filter((m) => m.dir === 'received')
        .map((m) => m.firstLine.split(' ')[0]),
    ).toEqual(['INVITE', 'ACK', 'BYE']);
  }, 90_000);
});

interface RecordedCall {
  callId: string;
  method: string;
  calling: string | null;
  called: string | null;
  aor: string | null;
  outcome: string;
  status: number | null;
  logic: string | null;
  messages: Array<{ direction: 'in' | 'out'; method: string; status: number | null; firstLine: string; src: string; dst: string; text: string }>;
  runs: Array<{ method: string; logic: string; outcome: string; status: number | null; path: Array<{ nodeId: string; type: string; exit: string }> }>;
}

/** The recorded call once `done` holds for it (the recorder writes a call a second after its last message; bounded wait). */
async function recorded(callId: string, done: (c: RecordedCall) => boolean): Promise<RecordedCall> {
  const deadline = Date.now() + 15_000;
  let last: RecordedCall | string = 'never listed';
  while (Date.now() < deadline) {
    const r = await fetch(`${sipflow.api}/calls/${encodeURIComponent(callId)}`, { headers: { authorization: `Bearer ${sipflow.token}` } });
    if (r.status === 200) {
      last = (await r.json()) as RecordedCall;
      if (done(last)) return last;
    } else if (r.status !== 404) throw new Error(`GET /calls/${callId}: ${r.status} ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`call ${callId} not recorded as expected within 15 s: ${JSON.stringify(last).slice(0, 3000)}`);
}

describe('the call history (history.mode all)', () => {
  test('a registration and a call placed by SIPp are returned by the API with their messages, in order, and their logic paths', async () => {
    const pbxPort = await freeUdpPort();
    const reg = await register(CHARLIE, pbxPort, 'history-register');
    const sentReg = distinct(traced(reg.messages)).filter((m) => m.dir === 'sent');
    const regCallId = hdr(sentReg[0].text, 'Call-ID')!;
    const digestResponse = /response="?([0-9a-f]{32})/i.exec(sentReg[1].text)?.[1];
    expect(digestResponse).toBeDefined();

    const called = '0044209999';
    const { caller, destPort } = await outgoingCall('history', called, pbxPort);
    const callId = hdr(distinct(traced(caller.messages)).find((m) => m.dir === 'sent')!.text, 'Call-ID')!;

    // the registration: REGISTER → 401 → REGISTER → 200, two runs of the registration logic
    const r = await recorded(regCallId, (c) => c.messages.some((m) => m.status === 200));
    const server = `${HOST}:${sipflow.sipPort}`;
    const pbx = `${HOST}:${pbxPort}`;
    expect(r.messages.map((m) => `${m.direction} ${m.status ?? m.method} ${m.src} > ${m.dst}`)).toEqual([
      `in REGISTER ${pbx} > ${server}`,
      `out 401 ${server} > ${pbx}`,
      `in REGISTER ${pbx} > ${server}`,
      `out 200 ${server} > ${pbx}`,
    ]);
    expect(r).toMatchObject({ method: 'REGISTER', aor: `${CHARLIE.username}@${DOMAIN}`, outcome: 'success', status: 200 });
    expect(r.runs.map((x) => [x.method, x.outcome, x.status])).toEqual([
      ['REGISTER', 'challenge', 401],
      ['REGISTER', 'register', 200],
    ]);
    // the path went through the authenticate node both times and saved the binding the second time
    for (const run of r.runs) expect(run.path.map((s) => s.type)).toContain('output.nit.registrar.authenticate');
    expect(r.runs[1].path.map((s) => s.type)).toContain('output.nit.registrar.saveLocationService');
    // the digest response the PBX sent is nowhere in what the API returns
    expect(JSON.stringify(r)).not.toContain(digestResponse!);
    expect(r.messages[2].text).toMatch(/response="?\[redacted\]/);

    // the call: 407, then the authenticated INVITE relayed to the destination; 180, 200, ACK, BYE through sipflow
    const c = await recorded(callId, (x) => x.messages.some((m) => m.method === 'BYE' && m.status === 200 && m.direction === 'out'));
    const dst = `${HOST}:${destPort}`;
    const lines = c.messages
      .filter((m) => m.status !== 100)
      .map((m) => `${m.direction} ${m.status ?? m.method} ${m.method} ${m.direction === 'in' ? m.src : m.dst}`);
    expect(lines).toEqual([
      `in INVITE INVITE ${pbx}`,
      `out 407 INVITE ${pbx}`,
      `in ACK ACK ${pbx}`,
      `in INVITE INVITE ${pbx}`,
      `out INVITE INVITE ${dst}`,
      `in 180 INVITE ${dst}`,
      `out 180 INVITE ${pbx}`,
      `in 200 INVITE ${dst}`,
      `out 200 INVITE ${pbx}`,
      `in ACK ACK ${pbx}`,
      `out ACK ACK ${dst}`,
      `in BYE BYE ${pbx}`,
      `out BYE BYE ${dst}`,
      `in 200 BYE ${dst}`,
      `out 200 BYE ${pbx}`,
    ]);
    expect(c).toMatchObject({ method: 'INVITE', calling: CHARLIE.numbers[0].number, called, outcome: 'success', status: 200, logic: 'pbx' });
    expect(c.runs.map((x) => [x.method, x.outcome])).toEqual([
      ['INVITE', 'challenge'],
      ['INVITE', 'relay'],
    ]);
    expect(c.runs[1].path.at(-1)).toMatchObject({ type: 'output.relay' });

    // listed by number and by AoR
    const byNumber = await apiGet<{ calls: Array<{ callId: string }> }>(`/calls?number=${called}`);
    expect(byNumber.calls.map((x) => x.callId)).toEqual([callId]);
    const byAor = await apiGet<{ calls: Array<{ callId: string }> }>(`/calls?aor=${encodeURIComponent(`${CHARLIE.username}@${DOMAIN}`)}&limit=500`);
    expect(byAor.calls.map((x) => x.callId)).toEqual(expect.arrayContaining([regCallId]));
  }, 120_000);
});
