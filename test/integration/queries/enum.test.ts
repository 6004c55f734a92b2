/**
 * query.enum against a real DNS server: dnsmasq started by this suite on loopback with NAPTR
 * records, and a UDP socket that never answers (timeout). The node runs in the engine with the
 * production resolver (services/enum/resolver.ts).
 */
import type { NaptrRecord } from '../../../engine/ports';
import type { RunContext } from '../../../engine/types';
import { createEnumResolver, type EnumResolver } from '../../../services/enum/resolver';
import { startBlackHole, startDnsmasq, type DnsServer } from '../../support/dnsmasq';
import { testContext } from '../../support/context';
import { reply, runNodes, start, type NodeSpec } from '../../unit/engine/helpers';

const naptr = (order: number, preference: number, regexp: string, extra: Partial<NaptrRecord> = {}): NaptrRecord => ({
  order,
  preference,
  flags: 'u',
  service: 'E2U+sip',
  regexp,
  replacement: '',
  ...extra,
});
/** The ENUM name of a number's digits under e164.arpa. */
const under = (digits: string, suffix = 'e164.arpa') => `${digits.split('').reverse().join('.')}.${suffix}`;

const RECORDS = [
  { name: under('3225551000'), record: naptr(100, 10, '!^.*$!sip:alice@example.com!') },
  // several records: order first, then preference; another service and a later order are ignored
  { name: under('3225551001'), record: naptr(100, 20, '!^.*$!sip:second@example.com!') },
  { name: under('3225551001'), record: naptr(100, 10, '!^.*$!sip:first@example.com!') },
  { name: under('3225551001'), record: naptr(50, 10, '!^.*$!mailto:info@example.com!', { service: 'E2U+email' }) },
  { name: under('3225551001'), record: naptr(200, 10, '!^.*$!sip:later@example.com!') },
  // backreference into the number
  { name: under('3225551002'), record: naptr(100, 10, '!^\\+32(.*)$!sip:\\1@gw.example.com;user=phone!') },
  // hostile records only: catastrophic regexp, non-SIP result, a result with a space, a backreference in the ERE
  { name: under('3225551003'), record: naptr(100, 10, '!^(\\+?[0-9]*)*$!sip:x@evil.example!') },
  { name: under('3225551003'), record: naptr(100, 20, '!^.*$!http://evil.example/!') },
  { name: under('3225551003'), record: naptr(100, 30, '!^.*$!sip:a b@evil.example!') },
  { name: under('3225551003'), record: naptr(100, 40, '!^(.)\\1$!sip:x@evil.example!') },
  // non-terminal rule continuing at another name
  { name: under('3225551004'), record: naptr(100, 10, '', { flags: '', replacement: 'redirected.e164.arpa' }) },
  { name: 'redirected.e164.arpa', record: naptr(100, 10, '!^\\+(.*)$!sip:\\1@redirected.example.com!') },
  // a private suffix
  { name: under('3225551005', 'enum.example.net'), record: naptr(10, 10, '!^.*$!tel:+3225551005!') },
];

const enumLogic = (values: Record<string, unknown>): NodeSpec[] => [
  start(1),
  [1, 'query.enum', { number: 'called', storeInto: 'target', ifFound: 2, ifNotFound: 3, ifTimeout: 4, ...values }],
  reply(2, 200, 'found'),
  reply(3, 404, 'not found'),
  reply(4, 504, 'timeout'),
];

let dnsmasq: DnsServer;
let blackHole: Awaited<ReturnType<typeof startBlackHole>>;
const resolvers: EnumResolver[] = [];

function ctxWith(servers: string[]): RunContext {
  const dns = createEnumResolver(servers);
  resolvers.push(dns);
  return { ...testContext(), dns };
}

beforeAll(async () => {
  [dnsmasq, blackHole] = await Promise.all([startDnsmasq(RECORDS), startBlackHole()]);
});
afterAll(async () => {
  for (const r of resolvers) r.close();
  await Promise.all([dnsmasq?.stop(), blackHole?.stop()]);
});

describe('query.enum against dnsmasq', () => {
  let ctx: RunContext;
  beforeAll(() => {
    ctx = ctxWith([dnsmasq.address]);
  });
  const run = (values: Record<string, unknown>, called: string) => runNodes(enumLogic(values), { called }, ctx, { trace: true });

  test('a number with a record: its URI stored, ifFound, the trace shows what the node wrote', async () => {
    const r = await run({}, '+3225551000');
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(r.cd.vars.target).toBe('sip:alice@example.com');
    expect(r.trace![1]).toMatchObject({ type: 'query.enum', exit: 'ifFound', set: { target: 'sip:alice@example.com', enumStatus: 'found' } });
  });

  test('the number without "+" or with spaces, dashes and parentheses is the same number; a placeholder works too', async () => {
    expect((await run({}, '3225551000')).cd.vars.target).toBe('sip:alice@example.com');
    expect((await run({}, '+32 (2) 555-1000')).cd.vars.target).toBe('sip:alice@example.com');
    expect((await run({ number: '+32[called]' }, '25551000')).cd.vars.target).toBe('sip:alice@example.com');
  });

  test('several records: the lowest order with an accepted service, then the lowest preference', async () => {
    const r = await run({}, '+3225551001');
    expect(r.cd.vars.target).toBe('sip:first@example.com');
    // accepting only the email service: order 50 is usable but its mailto: result is not a SIP URI, and later orders are not considered (RFC 3403 §4.1)
    const email = await run({ service: 'E2U+email' }, '+3225551001');
    expect(email.outcome).toMatchObject({ status: 404 });
    expect(email.cd.vars.enumStatus).toBe('notFound');
  });

  test('a backreference of the NAPTR regexp takes digits of the number', async () => {
    expect((await run({}, '+3225551002')).cd.vars.target).toBe('sip:25551002@gw.example.com;user=phone');
  });

  test('a non-terminal record is followed to its replacement name', async () => {
    expect((await run({}, '+3225551004')).cd.vars.target).toBe('sip:3225551004@redirected.example.com');
  });

  test('a private suffix, and a tel: result', async () => {
    expect((await run({ suffix: 'enum.example.net' }, '+3225551005')).cd.vars.target).toBe('tel:+3225551005');
  });

  test('no record (NXDOMAIN) → ifNotFound, nothing stored', async () => {
    const r = await run({}, '+3225559999');
    expect(r.outcome).toMatchObject({ status: 404 });
    expect(r.cd.vars.target).toBeUndefined();
    expect(r.cd.vars.enumStatus).toBe('notFound');
  });

  test('hostile records (catastrophic regexp, non-SIP or malformed result, backreference in the ERE) are skipped', async () => {
    const r = await run({}, '+3225551003');
    expect(r.outcome).toMatchObject({ status: 404 });
    expect(r.cd.vars.target).toBeUndefined();
  });

  test('a caller-controlled number cannot choose the DNS name: anything but digits is an invalid number, and no query is sent', async () => {
    const asked: string[] = [];
    const counting: RunContext = { ...ctx, dns: { naptr: (domain, timeoutMs) => (asked.push(domain), ctx.dns!.naptr(domain, timeoutMs)) } };
    const run = (values: Record<string, unknown>, called: string) => runNodes(enumLogic(values), { called }, counting, { trace: true });
    for (const called of ['1.evil.example.com', '3225551000.e164.arpa', '32255510*', '+3225551000\u0000x', '1'.repeat(16), '', '++32']) {
      const r = await run({}, called);
      expect(r.outcome).toMatchObject({ status: 404 });
      expect(r.cd.vars.enumStatus).toBe('invalidNumber');
    }
    expect(asked).toEqual([]);
    // control: a valid number goes through the same wrapper
    await run({}, '+3225551000');
    expect(asked).toEqual(['0.0.0.1.5.5.5.2.2.3.e164.arpa']);
  });

  test('a server failure (REFUSED: a name the server is not authoritative for) → ifTimeout with the failure in the status', async () => {
    const r = await run({ suffix: 'example.org' }, '+3225551000');
    expect(r.outcome).toMatchObject({ status: 504 });
    expect(r.cd.vars.enumStatus).toMatch(/^failure: .*EREFUSED/);
  });
});

describe('query.enum against a server that never answers', () => {
  test('→ ifTimeout with status timeout, after the query reached the server', async () => {
    const ctx = ctxWith([blackHole.address]);
    const before = blackHole.queries();
    const r = await runNodes(enumLogic({ timeoutMs: 300 }), { called: '+3225551000' }, ctx, { trace: true });
    expect(r.outcome).toMatchObject({ status: 504 });
    expect(r.cd.vars.enumStatus).toBe('timeout');
    expect(blackHole.queries()).toBeGreaterThan(before);
  });
});

describe('query.enum without a resolver in the context', () => {
  test('→ ifTimeout, the status says why', async () => {
    const r = await runNodes(enumLogic({}), { called: '+3225551000' }, testContext());
    expect(r.outcome).toMatchObject({ status: 504 });
    expect(r.cd.vars.enumStatus).toMatch(/no DNS resolver/);
  });
});
