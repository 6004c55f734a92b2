/**
 * The manipulation nodes (issue 14) in one service file, loaded from disk and run by the real
 * engine: the CLI from P-Asserted-Identity (regex) or the From URI (URI parse), the called number
 * to E.164 (default country from the run context), a trunk group (string manipulation), the
 * gateway URI (URI build) → relay. Then `sipflow run --default-country` on the same file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import { builtinRegistry } from '../../../nodes';
import { testContext } from '../../support/context';
import { cdOf } from './support';
import { runCli } from '../../support/cli';

const FILE = path.join(__dirname, '../../fixtures/slid/valid/manipulation.slid');
const loaded = loadSlidText(readFileSync(FILE, 'utf8'), 'manipulation.slid', builtinRegistry());
const ctx = { ...testContext(), numbers: { defaultCountry: 'FR' } };

function invite(requestURI: string, headers: Record<string, string> = {}, from = '<sip:+3227001234@pbx.example>;tag=a') {
  return cdOf({ requestMethod: 'INVITE', requestURI, headers: { From: from, To: `<${requestURI}>`, 'Call-ID': 'c1', CSeq: '1 INVITE', ...headers } });
}

test('the file loads without problems', () => {
  expect(loaded.problems).toEqual([]);
});

test('PAI number, national called number → E.164, trunk group, gateway URI, relay; every step traced', async () => {
  const r = await runLogic(loaded.service!, 'trunk routing', invite('sip:01.23.45.67.89@sipflow.example;user=phone', { 'P-Asserted-Identity': '"Acme" <tel:+3227005555>' }), ctx, {
    trace: true,
  });
  expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:+33123456789@gw.example.net;user=phone;tgrp=tg0033;cli=+3227005555' }] });
  expect(r.cd.vars).toMatchObject({ cli: '+3227005555', cliSource: 'matched', calledE164: '+33123456789', calledType: 'FIXED_LINE', calledStatus: 'valid', tgrp: '0033' });
  expect(r.trace!.map((t) => [t.type, t.exit])).toEqual([
    ['enter.start', 'next'],
    ['analysis.regexExtract', 'ifMatched'],
    ['action.normalizeNumber', 'next'],
    ['action.stringManipulation', 'next'],
    ['action.uriManipulation', 'next'],
    ['output.relay', 'relay'],
  ]);
});

test('no PAI: the CLI is the From URI user; a hostile From user stays inside its parameter value', async () => {
  const plain = await runLogic(loaded.service!, '1', invite('sip:0612345678@sipflow.example'), ctx);
  expect(plain.outcome).toMatchObject({ targets: [{ uri: 'sip:+33612345678@gw.example.net;user=phone;tgrp=tg0033;cli=+3227001234' }] });
  const hostile = await runLogic(loaded.service!, '1', invite('sip:0612345678@sipflow.example', {}, '<sip:x%3Bmaddr%3Devil.example%3Fa%3Db@pbx.example>;tag=a'), ctx);
  expect(hostile.cd.vars.cli).toBe('x;maddr=evil.example?a=b');
  expect(hostile.outcome).toMatchObject({ targets: [{ uri: 'sip:+33612345678@gw.example.net;user=phone;tgrp=tg0033;cli=x%3Bmaddr%3Devil.example%3Fa%3Db' }] });
});

test('a called number that is no valid number → 484 with the reason in the trace', async () => {
  const r = await runLogic(loaded.service!, '1', invite('sip:12@sipflow.example'), ctx, { trace: true });
  expect(r.outcome).toEqual({ kind: 'reply', status: 484, reason: 'Address Incomplete' });
  expect(r.trace!.find((t) => t.type === 'action.normalizeNumber')).toMatchObject({ exit: 'ifInvalid', set: { calledStatus: 'invalid' } });
});

describe('sipflow run --default-country', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-manip-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function sipflowRun(...extra: string[]): Promise<Record<string, unknown>> {
    const cd = path.join(dir, 'invite.json');
    writeFileSync(cd, JSON.stringify({ requestMethod: 'INVITE', requestURI: 'sip:025551234@sipflow.example', headers: { From: '<sip:100@pbx.example>;tag=a' } }));
    const run = await runCli('run', FILE, '--logic', '1', '--cd', cd, '--data-dir', dir, '--directory-url', 'memory://', ...extra);
    expect(run.code).toBe(0);
    return JSON.parse(run.out) as Record<string, unknown>;
  }

  // one run: each opens the CLI's runtime (an embedded PGlite directory), seconds of start-up
  test('the national number is read in the country given on the command line', async () => {
    const be = await sipflowRun('--default-country', 'be');
    expect(be.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:+3225551234@gw.example.net;user=phone;tgrp=tg0032;cli=100' }] });
  }, 60_000);
});
