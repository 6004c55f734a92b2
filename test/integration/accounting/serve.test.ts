/**
 * Issue 15, accounting end to end: `sipflow serve --workers 2` (built CLI: the records cross from
 * the SIP worker threads to the dispatching thread) with accounting on, the directory in PGlite
 * and a JSON-lines file; gateways and the caller played by test UAs over UDP.
 *  - gw1 answers 503, the call completes on gw2, the caller hangs up: a recurse record for gw1 and
 *    one stop record with gw2 as the destination, the duration, the customer variable and the
 *    action.accounting fields — in the table (GET /api/v1/cdrs) and in the file;
 *  - gw1 answers 486 (no failover code): one reject record; a hostile header value copied into a
 *    custom field is data in the CSV export (quoted, formula guarded);
 *  - /metrics counts the records written.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header, isRequest, type SipRequest } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, sipResponse, type Received } from '../sip/ua';

let flows = '';
let serve: ServeProcess;
let caller: UdpUa;
let gw1: UdpUa;
let gw2: UdpUa;
let file = '';

const HOSTILE = '=cmd|\' /C calc\'!A0, "Evil, Inc"';

beforeAll(async () => {
  [gw1, gw2] = [await UdpUa.open(0), await UdpUa.open(0)];
  flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-flows-'));
  const FLOW = {
    1: {
      name: 'pbx',
      description: 'a customer, CDR fields, gw1 then gw2',
      nodes: {
        0: node(0, 'enter.start', { next: 1 }),
        1: node(1, 'analysis.extractSipHeader', { extractions: [{ header: 'X-Note', part: 'value', storeInto: 'note' }], next: 2, ifNotFound: 2 }),
        2: node(2, 'action.setVariables', { variables: [{ variable: 'customer', value: 'acme' }], next: 3 }),
        3: node(3, 'action.accounting', {
          fields: [
            { name: 'plan', value: 'gold-[called]' },
            { name: 'note', value: '[note]' },
          ],
          next: 4,
        }),
        4: node(4, 'output.relay', { destination: `sip:[called]@127.0.0.1:${gw1.port}`, alternatives: [`sip:[called]@127.0.0.1:${gw2.port}`] }),
      },
    },
  };
  writeFileSync(path.join(flows, 'pbx.slid'), JSON.stringify(FLOW));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-file-'));
  file = path.join(dir, 'cdrs.jsonl');
  serve = await startServe({
    flows,
    workers: 2,
    logLevel: 'warn',
    // Record-Route: the BYE passes through sipflow, which ends the call's CDR
    config: { sip: { recordRoute: true }, accounting: { enabled: true, database: true, file, variables: ['customer'], flushMs: 20 } },
  });
  caller = await UdpUa.open(serve.sipPort);
}, 90_000);

afterAll(async () => {
  for (const ua of [caller, gw1, gw2]) await ua?.close();
  if (serve) expect((await serve.stop()).code).toBe(0);
  rmSync(flows, { recursive: true, force: true });
});

const request = (ua: UdpUa, method: string, callId: string) =>
  ua.next((r) => isRequest(r.msg) && r.msg.method === method && header(r.msg, 'call-id') === callId, 5000) as Promise<Received & { msg: SipRequest }>;

interface Cdr {
  kind: string;
  callId: string;
  destination: string | null;
  status: number | null;
  duration: number | null;
  calling: string | null;
  called: string | null;
  variables: Record<string, unknown>;
  fields: Record<string, unknown>;
}

/** The records of a call once `n` are in the table (written within flushMs; polled, bounded). */
async function cdrsOf(callId: string, n: number): Promise<Cdr[]> {
  for (let i = 0; i < 200; i++) {
    const page = (await (await serve.api(`/api/v1/cdrs?callId=${encodeURIComponent(callId)}`)).json()) as { rows: Cdr[] };
    if (page.rows.length >= n) return page.rows.reverse();
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${n} CDRs for ${callId}`);
}

/** The call's records in the JSON-lines file once `n` are there: the file is its own sink, written apart from the table (polled, bounded). */
async function fileCdrsOf(callId: string, n: number): Promise<Cdr[]> {
  let found: Cdr[] = [];
  for (let i = 0; i < 200; i++) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    found = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Cdr)
      .filter((r) => r.callId === callId);
    if (found.length >= n) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${n} CDRs for ${callId} in ${file}: ${JSON.stringify(found)}`);
}

function invite(callId: string, headers: Record<string, string> = {}): void {
  caller.send(
    sipRequest({ method: 'INVITE', uri: `sip:+3225559999@127.0.0.1:${serve.sipPort}`, ua: caller, callId, from: '<sip:+3225551234@example.test>', headers }),
  );
}

test('gw1 503 → the call completes on gw2 → a recurse record and one stop record with the final gateway and the duration', async () => {
  const callId = `${rand()}@cdr`;
  invite(callId);
  const { msg: first } = await request(gw1, 'INVITE', callId);
  gw1.sendTo(sipResponse(first, 503, 'Service Unavailable', { toTag: 'g1' }), serve.sipPort);
  const { msg: second } = await request(gw2, 'INVITE', callId);
  gw2.sendTo(
    sipResponse(second, 200, 'OK', {
      toTag: 'g2',
      headers: { Contact: `<sip:bob@127.0.0.1:${gw2.port}>`, 'Record-Route': header(second, 'record-route')! },
    }),
    serve.sipPort,
  );
  const ok = await caller.response(200);
  const inDialog = (method: string, cseq: number) =>
    sipRequest({
      method,
      uri: `sip:bob@127.0.0.1:${gw2.port}`,
      ua: caller,
      callId,
      cseq,
      fromTag: header(ok, 'from')!.replace(/.*;tag=/, ''),
      from: '<sip:+3225551234@example.test>',
      to: header(ok, 'to')!,
      headers: { Route: header(ok, 'record-route')! },
    });
  caller.send(inDialog('ACK', 1));
  await request(gw2, 'ACK', callId);
  caller.send(inDialog('BYE', 2));
  const { msg: bye } = await request(gw2, 'BYE', callId);
  gw2.sendTo(sipResponse(bye, 200, 'OK'), serve.sipPort);
  await caller.response(200);

  const [recurse, stop] = await cdrsOf(callId, 2);
  expect(recurse).toMatchObject({ kind: 'recurse', destination: `sip:+3225559999@127.0.0.1:${gw1.port}`, status: 503 });
  expect(stop).toMatchObject({
    kind: 'stop',
    destination: `sip:+3225559999@127.0.0.1:${gw2.port}`,
    status: 200,
    calling: '+3225551234',
    called: '+3225559999',
    variables: { customer: 'acme' },
    fields: { plan: 'gold-+3225559999' },
  });
  expect(stop.duration).toBeGreaterThanOrEqual(0);
  // the same records in the JSON-lines file
  const lines = await fileCdrsOf(callId, 2);
  expect(lines.map((r) => r.kind)).toEqual(['recurse', 'stop']);
  expect(await serve.metric('sipflow_cdrs_written_total', 'sink="database"')).toBeGreaterThanOrEqual(2);
}, 30_000);

test('486 from gw1 (no failover code) → one reject record; a hostile header value is data in the CSV export', async () => {
  const callId = `${rand()}@cdr`;
  invite(callId, { 'X-Note': HOSTILE });
  const { msg } = await request(gw1, 'INVITE', callId);
  gw1.sendTo(sipResponse(msg, 486, 'Busy Here', { toTag: 'g1' }), serve.sipPort);
  await caller.response(486);
  const [reject] = await cdrsOf(callId, 1);
  expect(reject).toMatchObject({ kind: 'reject', status: 486, fields: { note: HOSTILE } });
  const csv = await (await serve.api(`/api/v1/cdrs.csv?callId=${encodeURIComponent(callId)}`)).text();
  expect(csv).toContain(`,"'=cmd|' /C calc'!A0, ""Evil, Inc""",`);
  expect(csv.trim().split('\r\n')).toHaveLength(2);
}, 30_000);
