/**
 * Issue 15, accounting: a graceful stop writes what waits. `sipflow serve --workers 2` with a
 * flush interval far longer than the test (accounting.flushMs 60 s) and the JSON-lines file as
 * the only sink: a call rejected by its gateway, then SIGTERM — the process exits 0 and the file
 * holds the call's record (it crossed from the worker thread and was flushed at shutdown).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header, isRequest, type SipRequest } from '../../../sip/message';
import { startServe } from '../../support/serve';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, sipResponse, type Received } from '../sip/ua';

test('SIGTERM flushes the CDR backlog before the exit', async () => {
  const gw = await UdpUa.open(0);
  const flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-flows-'));
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-file-')), 'cdrs.jsonl');
  writeFileSync(
    path.join(flows, 'pbx.slid'),
    JSON.stringify({
      1: {
        name: 'pbx',
        description: 'relay to the gateway',
        nodes: { 0: node(0, 'enter.start', { next: 1 }), 1: node(1, 'output.relay', { destination: `sip:[called]@127.0.0.1:${gw.port}` }) },
      },
    }),
  );
  const serve = await startServe({
    flows,
    workers: 2,
    logLevel: 'warn',
    config: { accounting: { enabled: true, database: false, file, flushMs: 60_000 } },
  });
  const caller = await UdpUa.open(serve.sipPort);
  try {
    const callId = `${rand()}@shutdown`;
    caller.send(sipRequest({ method: 'INVITE', uri: `sip:+3225559999@127.0.0.1:${serve.sipPort}`, ua: caller, callId }));
    const { msg } = (await gw.next((r) => isRequest(r.msg) && r.msg.method === 'INVITE' && header(r.msg, 'call-id') === callId, 5000)) as Received & {
      msg: SipRequest;
    };
    gw.sendTo(sipResponse(msg, 486, 'Busy Here', { toTag: 'g1' }), serve.sipPort);
    await caller.response(486);
    expect((await serve.stop()).code).toBe(0);
    const records = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; callId: string; status: number });
    expect(records).toEqual([expect.objectContaining({ kind: 'reject', callId, status: 486 })]);
  } finally {
    await caller.close();
    await gw.close();
    if (serve.child.exitCode === null) await serve.stop();
    rmSync(flows, { recursive: true, force: true });
  }
}, 60_000);
