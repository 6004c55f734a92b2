/**
 * Shared by the shipped-flow suites: loading a flows/ file, a real embedded PostgreSQL (PGlite)
 * directory provisioned like an operator would, SIP requests as call descriptors, and the
 * UA side of a digest challenge.
 */
import { readFileSync } from 'fs';
import path from 'path';
import type { Knex } from 'knex';
import { buildCallDescriptor } from '../../../engine/cd';
import { loadSlidText, type CompiledService, type LoadResult } from '../../../engine/load';
import { runLogic, type RunResult } from '../../../engine/run';
import type { CallDescriptor } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import { createDirectory, createSubscribers, migrate, openDirectory, seed, type Directory } from '../../../services/directory';
import { testContext, type TestContext } from '../../support/context';
import { answerChallenge } from '../../support/sip';

export const FLOWS_DIR = path.join(__dirname, '../../../flows');
export const SHIPPED = ['registration.slid', 'outgoing-call.slid', 'incoming-call.slid', 'call-screening.slid', 'pbx.slid'];

export function loadFlow(file: string): LoadResult & { text: string; service: CompiledService } {
  const text = readFileSync(path.join(FLOWS_DIR, file), 'utf8');
  const loaded = loadSlidText(text, file, builtinRegistry());
  if (!loaded.service) throw new Error(`${file} does not load: ${JSON.stringify(loaded.problems)}`);
  return { ...loaded, text, service: loaded.service };
}

export const cdOf = (input: unknown): CallDescriptor =>
  buildCallDescriptor(input, { credentials: parseDigestCredentials });

/** Provisioned subscribers (besides the note's francesco / 123456 / 000112233). */
export const ACME = { name: 'Acme PBX', username: 'acme', password: 'acme-pw', aor: 'acme@nl.netaxis.be' };
export const BETA = { name: 'Beta PBX', username: 'beta', password: 'beta-pw', aor: 'beta@nl.netaxis.be' };
export const IDLE = { name: 'Idle PBX', username: 'idle', password: 'idle-pw', aor: 'idle@nl.netaxis.be' };

export interface TestDirectory { knex: Knex; directory: Directory; close(): Promise<void> }

/**
 * memory:// PGlite, migrated, with the note's sample subscriber (seed) and:
 *   Acme  range 0031201 · Beta  00312015555 (a single number inside Acme's range)
 *   Idle  000999888 and range 003120 (shorter than Acme's) — never registers.
 */
export async function provisionedDirectory(): Promise<TestDirectory> {
  const knex = openDirectory('memory://');
  await migrate(knex);
  await seed(knex);
  const subs = createSubscribers(knex);
  for (const c of [ACME, BETA, IDLE]) await subs.addCustomer(c);
  await subs.addNumber({ number: '0031201', is_range: true, customer: ACME.name });
  await subs.addNumber({ number: '00312015555', is_range: false, customer: BETA.name });
  await subs.addNumber({ number: '000999888', is_range: false, customer: IDLE.name });
  await subs.addNumber({ number: '003120', is_range: true, customer: IDLE.name });
  const directory = createDirectory(knex);
  return { knex, directory, close: () => knex.destroy() };
}

export const context = (d: TestDirectory): TestContext => testContext({ directory: d.directory });

/** Stores a binding for an AoR user straight through the registrar (what a REGISTER's save does). */
export async function registerBinding(ctx: TestContext, username: string, contact: string, source = '10.1.10.89:57806'): Promise<void> {
  const r = await ctx.location.register({
    username, domain: null, contacts: [`<${contact}>`], expiresHeader: '3600', callId: `reg-${username}-${contact}`, cseq: 1,
    userAgent: 'test PBX', received: `sip:${source}`, socket: 'udp:10.1.10.163:5060', path: null, now: new Date(ctx.clock.now()),
  });
  if (r.status !== 200) throw new Error(`register ${username}: ${r.status} ${r.reason}`);
}

let callSeq = 0;
export interface RequestOptions {
  method?: string;
  requestURI?: string;
  from?: string;
  to?: string;
  sourceAddress?: string;
  headers?: Record<string, string>;
}

/** A SIP request from a PBX (or the PSTN side) as the front end hands it to the engine. */
export function request(o: RequestOptions = {}): Record<string, unknown> {
  const method = o.method ?? 'INVITE';
  const requestURI = o.requestURI ?? 'sip:6756757@nl.netaxis.be';
  return {
    requestMethod: method,
    requestURI,
    sourceAddress: o.sourceAddress ?? '10.1.10.89', sourcePort: 57806, transport: 'udp', destinationAddress: '10.1.10.163', destinationPort: 5060,
    headers: {
      Via: 'SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bK-524287-1---f726055e5bd50f2a',
      'Max-Forwards': '70',
      From: o.from ?? '<sip:francesco@nl.netaxis.be>;tag=db3e0038',
      To: o.to ?? `<${requestURI}>`,
      'Call-ID': `flow-test-${++callSeq}`,
      CSeq: `1 ${method}`,
      Contact: '<sip:francesco@10.1.10.89:57806>',
      ...o.headers,
    },
  };
}

/**
 * The UA side of §4.2: sends the request, answers the 407 with Proxy-Authorization for
 * (username, password) and sends it again. Returns the challenge and the second run.
 */
export async function withCredentials(
  service: CompiledService, logic: string, ctx: TestContext, req: Record<string, unknown>, creds: { username: string; password: string },
): Promise<{ challenge: RunResult; result: RunResult }> {
  const challenge = await runLogic(service, logic, cdOf(req), ctx);
  if (challenge.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(challenge.outcome)}`);
  const method = String(req.requestMethod);
  const authorization = answerChallenge(challenge.outcome.challenges[0], { ...creds, method, uri: String(req.requestURI) });
  const headers = { ...(req.headers as Record<string, string>), 'Proxy-Authorization': authorization, CSeq: `2 ${method}` };
  const result = await runLogic(service, logic, cdOf({ ...req, headers }), ctx, { trace: true });
  return { challenge, result };
}

export const FRANCESCO = { username: 'francesco', password: '123456' };
