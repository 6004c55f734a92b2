/**
 * Issue 15, accounting: the wiring of server/call-consumers.ts — with `accounting.enabled` a SIP
 * thread's consumers hold a CDR builder whose records reach the writer and its JSON-lines file;
 * disabled, no consumer follows calls.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callConsumers } from '../../../server/call-consumers';
import { parseConfig } from '../../../server/config';
import { createMetrics } from '../../../server/metrics';
import { openCdrWriter } from '../../../services/accounting';
import { testContext } from '../../support/context';
import { cdOf } from '../../unit/engine/helpers';

test('accounting on: call events → records in the JSON-lines file; off: no consumer', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-wiring-'));
  const file = path.join(dir, 'cdrs.jsonl');
  const config = parseConfig(JSON.stringify({ accounting: { enabled: true, database: false, file, variables: ['customer'], flushMs: 5 } }), 'test');
  const writer = openCdrWriter(config.accounting, {}); // database off: the file only
  const metrics = createMetrics({ defaultMetrics: false });
  const events = callConsumers(config, testContext(), undefined, { cdrs: (r) => writer.accept(r), metrics });
  if (!events) throw new Error('expected a consumer');
  const t0 = Date.now();
  events.setup({ callId: 'w1', at: t0, logic: 'route', outcome: 'relay', cd: cdOf({ calling: '+321', called: '+322', customer: 'acme' }) });
  events.attempt('w1', ['sip:gw1'], t0);
  events.attemptFailed('w1', 'sip:gw1', 503, 'Service Unavailable', t0 + 10);
  events.attempt('w1', ['sip:gw2'], t0 + 10);
  events.final('w1', 200, 'OK', 'sip:gw2', t0 + 20);
  events.inDialog('w1', 'BYE', t0 + 1020);
  await writer.idle();
  await writer.close();
  const lines = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.map((l) => [l.kind, l.destination, l.status])).toEqual([
    ['recurse', 'sip:gw1', 503],
    ['stop', 'sip:gw2', 200],
  ]);
  expect(lines[1]).toMatchObject({ duration: 1, variables: { customer: 'acme' }, calling: '+321' });

  const off = parseConfig('{}', 'test');
  expect(off.accounting).toMatchObject({ enabled: false, database: true, file: null, start: false, stop: true, reject: true, redirect: false, recurse: true });
  expect(callConsumers(off, testContext(), undefined, { cdrs: () => undefined })).toBeUndefined();
});

test('config: accounting.variables naming a secret is refused', () => {
  expect(() => parseConfig(JSON.stringify({ accounting: { variables: ['customerPassword'] } }), 'test')).toThrow(/accounting\.variables.*secret/s);
});
