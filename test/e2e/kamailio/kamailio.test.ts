/**
 * Kamailio as sipflow's SIP front end, end to end: real sipflow (the HTTP API with the execute
 * endpoint on a random port, PGlite `memory://` directory with provisioned subscribers, the SQL
 * location store = Kamailio's `location` table), real Kamailio 5.6 running
 * examples/kamailio/kamailio.cfg on a random UDP port (settings given as -A defines), and SIPp
 * registering a PBX with digest authentication through Kamailio.
 *
 * Kamailio, its modules and SIPp are Debian packages: scripts/install-system-deps.sh installs them
 * when missing. When Kamailio cannot be installed or started, the suite fails (never skips).
 */
import { spawn } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import type { FastifyInstance } from 'fastify';
import { parseConfig } from '../../../server/config';
import { createFlowsStore, type FlowsStore } from '../../../server/flows';
import { buildApi } from '../../../server/http';
import { createLogger } from '../../../server/logger';
import { createMetrics } from '../../../server/metrics';
import { openRuntime, runtimeOptionsFromConfig, type Runtime } from '../../../server/runtime';
import { createSubscribers } from '../../../services/directory';
import { header, headerList } from '../../../sip/message';
import { answerChallenge } from '../../support/sip';
import { UdpUa, rand, sipRequest } from '../../integration/sip/ua';
import { ensureKamailio, startKamailio, type Kamailio } from '../../support/kamailio';
import { freeUdpPort } from '../../support/sipp';

const ROOT = path.resolve(__dirname, '../../..');
const CFG = path.join(ROOT, 'examples/kamailio/kamailio.cfg');
const DOMAIN = 'nl.netaxis.be';
const TOKEN = 'kamailio-e2e-token-0123456789abcdef';
const ACME = { name: 'Acme PBX', username: 'acme', password: 'acme-pw' };

/** Starts Kamailio with the example config, invoking sipflow at `url` with `token`. */
function startExampleKamailio(o: { url: string; token: string; dir: string }): Promise<Kamailio> {
  return startKamailio({ cfg: CFG, dir: o.dir, defines: [`DOMAIN="${DOMAIN}"`, `SIPFLOW_URL="${o.url}"`, `SIPFLOW_TOKEN="${o.token}"`, 'KCHILDREN=2'] });
}

interface SippResult {
  code: number | null;
  output: string;
}

/** SIPp in the foreground, one call, credentials from the injection file; its exit code counts. */
function runSipp(o: { scenario: string; user: string; password: string; target: number; dir: string }): Promise<SippResult> {
  return freeUdpPort().then(
    (sippPort) =>
      new Promise((resolve) => {
        const tag = rand();
        const csv = path.join(o.dir, `users-${tag}.csv`);
        writeFileSync(csv, `SEQUENTIAL\n${o.user};[authentication username=${o.user} password=${o.password}]\n`);
        const messages = path.join(o.dir, `sipp-${tag}-messages.log`);
        const args = [
          '-sf',
          path.join(__dirname, o.scenario),
          '-inf',
          csv,
          '-key',
          'domain',
          DOMAIN,
          '-auth_uri',
          DOMAIN,
          '-i',
          '127.0.0.1',
          '-p',
          String(sippPort),
          '-m',
          '1',
          '-l',
          '1',
          '-nostdin',
          '-timeout',
          '20s',
          '-timeout_error',
          '-recv_timeout',
          '8000',
          '-trace_msg',
          '-message_file',
          messages,
          `127.0.0.1:${o.target}`,
        ];
        const p = spawn('sipp', args, { cwd: o.dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        p.stdout!.on('data', (d) => {
          output += d;
        });
        p.stderr!.on('data', (d) => {
          output += d;
        });
        p.on('error', (e) => resolve({ code: -1, output: `sipp could not start: ${e.message}` }));
        p.on('exit', (code) => {
          let trace = '';
          try {
            trace = readFileSync(messages, 'utf8');
          } catch {
            /* none */
          }
          resolve({ code, output: `${output.slice(-2000)}\n--- messages ---\n${trace.slice(-6000)}` });
        });
      }),
  );
}

// ---------------------------------------------------------------- fixture

let dir: string;
let runtime: Runtime;
let flows: FlowsStore;
let app: FastifyInstance;
let apiUrl: string;
let kamailio: Kamailio;

beforeAll(async () => {
  ensureKamailio({ modules: ['http_client.so', 'jansson.so'], commands: ['sipp'], deps: 'sipp kamailio' });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-kamailio-'));
  const config = parseConfig(
    JSON.stringify({
      dataDir: dir,
      directory: { url: 'memory://' },
      location: { url: 'sql' },
      auth: { nonceSecret: 'kamailio-e2e-secret-0123456789' },
      http: { token: TOKEN },
      log: { level: 'warn' },
    }),
    'kamailio e2e',
  );
  runtime = await openRuntime({ ...runtimeOptionsFromConfig(config), purgeIntervalSec: undefined });
  // the note's sample subscriber (francesco / 123456) is provisioned by the runtime; one more PBX:
  await createSubscribers(runtime.knex).addCustomer(ACME);
  flows = await createFlowsStore({ knex: runtime.knex, primary: 'pbx' });
  await flows.bootstrap(path.join(ROOT, 'flows'));
  app = await buildApi({ config, runtime, flows, metrics: createMetrics({ defaultMetrics: false }), logger: createLogger({ level: 'warn' }) });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  apiUrl = `${address}/api/v1/execute`;
  kamailio = await startExampleKamailio({ url: apiUrl, token: TOKEN, dir });
}, 180_000);

afterAll(async () => {
  await kamailio?.stop();
  await app?.close();
  flows?.close();
  await runtime?.close().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const explain = (r: SippResult) => `sipp exit ${r.code}\n${r.output}\n--- kamailio ---\n${kamailio.log().slice(-3000)}`;

// ---------------------------------------------------------------- tests

describe('Kamailio front end (examples/kamailio/kamailio.cfg)', () => {
  test("a PBX registers with digest auth through Kamailio: 200 OK, binding in sipflow's location store", async () => {
    const r = await runSipp({ scenario: 'register_auth.xml', user: 'francesco', password: '123456', target: kamailio.port, dir });
    if (r.code !== 0) throw new Error(explain(r));
    // the 200 OK lists the binding as sipflow decided it (expires from the REGISTER)
    expect(r.output).toMatch(/SIP\/2\.0 200 OK[\s\S]*Contact: <sip:francesco@127\.0\.0\.1:\d+;ob>;expires=(300|299)/);

    const bindings = await runtime.registrar.lookup('francesco', null, new Date());
    expect(bindings).toHaveLength(1);
    const b = bindings[0];
    expect(b.contact).toMatch(/^sip:francesco@127\.0\.0\.1:\d+;ob$/);
    expect(b.user_agent).toBe('SIPp PBX');
    // seen through Kamailio: socket = Kamailio's listening socket; no `received` (the source is
    // where the contact points, so no NAT: Kamailio's rule)
    expect(b.received).toBeNull();
    expect(b.socket).toBe(`udp:127.0.0.1:${kamailio.port}`);
    // stored as a row of Kamailio's usrloc `location` table
    const rows = await runtime.knex('location').where({ username: 'francesco' }).select('contact', 'received', 'socket', 'user_agent');
    expect(rows).toHaveLength(1);
    expect(rows[0].contact).toBe(b.contact);
  }, 40_000);

  test('a wrong password is challenged again: not registered', async () => {
    const r = await runSipp({ scenario: 'register_rejected.xml', user: ACME.username, password: 'not-the-password', target: kamailio.port, dir });
    if (r.code !== 0) throw new Error(explain(r));
    expect(r.output.match(/SIP\/2\.0 401 Unauthorized/g)).toHaveLength(2);
    expect(await runtime.registrar.lookup(ACME.username, null, new Date())).toEqual([]);
    // and the same scenario expecting 200 fails (SIPp's exit code counts)
    const ok = await runSipp({ scenario: 'register_auth.xml', user: ACME.username, password: 'not-the-password', target: kamailio.port, dir });
    expect(ok.code).not.toBe(0);
    expect(ok.output).not.toMatch(/SIP\/2\.0 200/);
    expect(await runtime.registrar.lookup(ACME.username, null, new Date())).toEqual([]);
  }, 60_000);

  test("reply outcome with headers: OPTIONS to a user gets the logic's 200 with Allow", async () => {
    const ua = await UdpUa.open(kamailio.port);
    try {
      ua.send(sipRequest({ method: 'OPTIONS', uri: `sip:francesco@${DOMAIN}`, ua, from: `<sip:probe@${DOMAIN}>`, to: `<sip:francesco@${DOMAIN}>` }));
      const r = await ua.response(undefined, 5000);
      expect(r.status).toBe(200);
      expect(header(r, 'allow')).toBe('INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER');
    } finally {
      await ua.close();
    }
  }, 20_000);

  test('relay outcome: an authenticated INVITE is challenged (407), then relayed with Record-Route', async () => {
    const caller = await UdpUa.open(kamailio.port);
    const callee = await UdpUa.open(kamailio.port);
    try {
      const callId = rand() + '@e2e';
      const ruri = `sip:0031201555@127.0.0.1:${callee.port}`;
      const invite = (cseq: number, extra: Record<string, string> = {}) =>
        sipRequest({
          method: 'INVITE',
          uri: ruri,
          ua: caller,
          callId,
          cseq,
          fromTag: 'caller1',
          rport: true,
          from: `<sip:000112233@${DOMAIN}>`,
          to: '<sip:0031201555@nl.netaxis.be>',
          contact: `<sip:000112233@127.0.0.1:${caller.port}>`,
          headers: extra,
        });
      caller.send(invite(1));
      const challenge = await caller.response(407, 5000);
      const pa = header(challenge, 'proxy-authenticate')!;
      expect(pa).toMatch(/^Digest .*realm="nl\.netaxis\.be"/);
      caller.send(
        sipRequest({
          method: 'ACK',
          uri: ruri,
          ua: caller,
          callId,
          cseq: 1,
          fromTag: 'caller1',
          from: `<sip:000112233@${DOMAIN}>`,
          to: `<sip:0031201555@nl.netaxis.be>;tag=${/tag=([^;>\s]+)/.exec(header(challenge, 'to')!)![1]}`,
          contact: null,
        }),
      );

      const auth = answerChallenge(pa, { username: 'francesco', password: '123456', method: 'INVITE', uri: ruri });
      caller.send(invite(2, { 'Proxy-Authorization': auth }));
      const relayed = await callee.request('INVITE', 5000);
      expect(relayed.msg.uri).toBe(ruri);
      expect(headerList(relayed.msg, 'record-route').join(',')).toContain(`127.0.0.1:${kamailio.port}`);
      expect(headerList(relayed.msg, 'via')).toHaveLength(2);

      // the callee's answer goes back through Kamailio's transaction
      const via = headerList(relayed.msg, 'via').join('\r\nVia: ');
      callee.sendTo(
        [
          'SIP/2.0 486 Busy Here',
          `Via: ${via}`,
          `From: ${header(relayed.msg, 'from')}`,
          `To: ${header(relayed.msg, 'to')};tag=callee1`,
          `Call-ID: ${callId}`,
          `CSeq: 2 INVITE`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
        kamailio.port,
      );
      const busy = await caller.response(486, 5000);
      expect(header(busy, 'call-id')).toBe(callId);
    } finally {
      await caller.close();
      await callee.close();
    }
  }, 30_000);

  test('sipflow unreachable: 503 with Retry-After', async () => {
    const deadPort = await freeUdpPort(); // nothing listens on this TCP port either, in all likelihood
    const down = await startExampleKamailio({ url: `http://127.0.0.1:${deadPort}/api/v1/execute`, token: TOKEN, dir });
    const ua = await UdpUa.open(down.port);
    try {
      ua.send(
        sipRequest({
          method: 'REGISTER',
          uri: `sip:${DOMAIN}`,
          ua,
          from: `<sip:francesco@${DOMAIN}>`,
          to: `<sip:francesco@${DOMAIN}>`,
          headers: { Expires: '300' },
        }),
      );
      const r = await ua.response(undefined, 8000);
      expect(r.status).toBe(503);
      expect(header(r, 'retry-after')).toBe('5');
    } finally {
      await ua.close();
      await down.stop();
    }
  }, 30_000);
});
