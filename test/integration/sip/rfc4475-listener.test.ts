/**
 * RFC 4475 torture messages sent as datagrams to the real UDP listener of the SIP server running
 * the shipped flows: each gets the outcome its expectations.json entry allows, and the server stays
 * up. The parser-level verdicts are in test/unit/sip/rfc4475.test.ts; this is the listener's view.
 *
 * Responses go where each message's Via says (mostly port 5060 of the source address, which another
 * program may own): the transport's send is observed and not put on the wire. Each message meets a
 * fresh listener: several messages of the corpus share a Via branch and sent-by, so to one
 * listener the later ones are retransmissions of the first (RFC 3261 §17.2.3), answered with its
 * response.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import type { Peer, SendCallback } from '../../../sip/transport';
import { UdpUa, sipRequest } from './ua';

const DIR = path.resolve(__dirname, '../../../../shared/conformance/rfc4475');
const FLOWS = path.resolve(__dirname, '../../../flows');

interface Expectation {
  file: string;
  class: 'valid' | 'invalid' | 'semantic-error';
  expect: string;
}
const expectations: Expectation[] = JSON.parse(fs.readFileSync(path.join(DIR, 'expectations.json'), 'utf8'));

/**
 * Where sipflow's role makes another answer right, as the corpus notes say: INVITEs not addressed
 * to a user here are proxied, and the shipped pbx flow first challenges the caller (407).
 */
const ROLE_ANSWERS: Record<string, number[]> = {
  'invut.dat': [407], // "a proxy forwards it like any INVITE, a UAS answers 415"
  'sdp01.dat': [407, 400], // "preferred: 406 …; 400 is also appropriate" — a proxy does not look at Accept
};

let rt: Runtime;
let dataDir: string;
let flows: ReturnType<typeof loadFlows>;
let server: SipServer;
let sent: Array<{ text: string; peer: Peer }> = [];

/** A fresh listener on the shared runtime, its sends recorded instead of put on the wire. */
async function listen(): Promise<void> {
  await server?.close(0);
  server = await startSipServer({ service: flows.service, resolve: flows.resolve, ctx: rt.ctx, host: '127.0.0.1', port: 0, tcp: false });
  sent = [];
  server.transports.send = (buf: Buffer, peer: Peer, cb?: SendCallback) => {
    sent.push({ text: buf.toString('latin1'), peer });
    cb?.(null);
  };
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipflow-4475-'));
  rt = await openRuntime({ dataDir, directoryUrl: 'memory://', locationUrl: 'memory', provision: true, nonceSecret: 'sipflow-4475-test-secret' });
  flows = loadFlows(FLOWS);
}, 60_000);

afterAll(async () => {
  await server?.close(100);
  await rt?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const statusOf = (text: string) => Number(/^SIP\/2\.0 (\d{3})/.exec(text)?.[1] ?? NaN);
const callIdOf = (text: string) => /^(?:call-id|i)[ \t]*:[ \t]*(.*?)[ \t]*\r?$/im.exec(text)?.[1] ?? null;

/**
 * Sends the file's bytes from a fresh socket; the final statuses the server answered it with (by
 * Call-ID: an earlier INVITE's unacknowledged final is retransmitted meanwhile). Waits up to
 * `ms` for a first final response, then 100 ms more for others.
 */
async function outcome(file: string, ms: number): Promise<number[]> {
  await listen();
  const from = sent.length;
  const callId = callIdOf(fs.readFileSync(path.join(DIR, file), 'latin1'));
  const finals = () => [
    ...new Set(
      sent
        .slice(from)
        .filter((s) => callIdOf(s.text) === callId)
        .map((s) => statusOf(s.text))
        .filter((st) => st >= 200),
    ),
  ];
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    await new Promise<void>((resolve, reject) =>
      sock.send(fs.readFileSync(path.join(DIR, file)), server.udpPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
    for (const until = Date.now() + ms; Date.now() < until && finals().length === 0;) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    sock.close();
  }
  return finals();
}

test.each(expectations.map((e) => [e.file, e.class, e.expect, e] as const))('%s (%s, expect %s)', async (_f, cls, expect_, e) => {
  const isResponse = fs.readFileSync(path.join(DIR, e.file)).subarray(0, 8).toString('latin1') === 'SIP/2.0 ';
  // an answer is awaited up to 3 s; where dropping is allowed, 300 ms of silence is the drop
  const answerExpected = !isResponse && (cls === 'valid' || (cls === 'semantic-error' && /^\d{3}$/.test(expect_)));
  const finals = await outcome(e.file, answerExpected ? 3000 : 300);
  if (isResponse) {
    // a response is never answered (a stray one is dropped)
    expect(finals).toEqual([]);
  } else if (cls === 'valid') {
    // parsed and answered by the service: a final response, not a Bad Request
    expect(finals.length).toBeGreaterThan(0);
    expect(finals[0]).not.toBe(400);
  } else if (/^\d{3}$/.test(expect_)) {
    if (cls === 'invalid') {
      // 400 or dropped
      expect(finals.filter((s) => s !== Number(expect_))).toEqual([]);
    } else {
      expect([Number(expect_), ...(ROLE_ANSWERS[e.file] ?? [])]).toContain(finals[0]);
    }
  } else {
    // reject: dropped, or refused with an error status — never accepted with a 2xx
    expect(finals.every((s) => s >= 400)).toBe(true);
  }
});

test('one listener takes the whole corpus in a row and still answers', async () => {
  await listen();
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (const e of expectations) sock.send(fs.readFileSync(path.join(DIR, e.file)), server.udpPort, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 500));
  sock.close();
  expect(sent.length).toBeGreaterThan(20);
  const ua = await UdpUa.open(server.udpPort);
  try {
    const from = sent.length;
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, rport: true }));
    await new Promise((r) => setTimeout(r, 300));
    expect(sent.slice(from).map((s) => statusOf(s.text))).toContain(200);
  } finally {
    await ua.close();
  }
});
