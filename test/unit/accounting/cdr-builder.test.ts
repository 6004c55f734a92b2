/**
 * Issue 15, accounting: the CDR builder fed call events directly (sip/call-events.ts order) with
 * an injected clock — each switch, each record kind, interim and timeout records from the sweep,
 * the bound on calls followed, no secret copied into a record.
 */
import { CdrBuilder, SETUP_MAX_MS, type CdrBuilderOptions, type CdrRecord } from '../../../services/accounting';
import type { CallEvents } from '../../../sip/call-events';
import { cdOf } from '../engine/helpers';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const DEFAULTS: Omit<CdrBuilderOptions, 'now'> = {
  start: false,
  stop: true,
  reject: true,
  redirect: false,
  recurse: true,
  interimSec: 0,
  timeoutSec: 0,
  variables: ['customer'],
  maxCalls: 100,
};

function builder(o: Partial<CdrBuilderOptions> = {}) {
  const records: CdrRecord[] = [];
  let now = T0;
  const b = new CdrBuilder({ ...DEFAULTS, now: () => now, ...o }, (r) => records.push(r));
  // the builder is a CallEvents consumer (structurally: services/ does not import sip/)
  const events: CallEvents = b;
  return {
    b,
    events,
    records,
    at: (ms: number) => (now = T0 + ms),
    kinds: () => records.map((r) => r.kind),
  };
}

const cd = (vars: Record<string, unknown> = {}, cdrFields?: Record<string, string>) => {
  const c = cdOf({ calling: '+3225551234', called: '+3225559999', sourceAddress: '192.0.2.7', sourcePort: 5062, customer: 'acme', ...vars });
  if (cdrFields) c.cdrFields = cdrFields;
  return c;
};

function setup(e: CallEvents, callId = 'c1', at = T0, outcome = 'relay', vars?: Record<string, unknown>) {
  e.setup({ callId, at, logic: 'route', cd: cd(vars, { plan: 'gold' }), outcome });
}

describe('CDR builder: records per switch', () => {
  test('connected call → stop record (start off by default) with every field', () => {
    const { events, records } = builder();
    setup(events);
    events.attempt('c1', ['sip:gw1.example.com'], T0 + 10);
    events.final('c1', 200, 'OK', 'sip:gw1.example.com', T0 + 2000);
    expect(records).toEqual([]);
    events.inDialog('c1', 'ACK', T0 + 2010);
    events.inDialog('c1', 'BYE', T0 + 62_000);
    expect(records).toEqual([
      {
        kind: 'stop',
        callId: 'c1',
        at: T0 + 62_000,
        setupAt: T0,
        connectAt: T0 + 2000,
        endAt: T0 + 62_000,
        duration: 60,
        calling: '+3225551234',
        called: '+3225559999',
        source: '192.0.2.7:5062',
        destination: 'sip:gw1.example.com',
        status: 200,
        reason: 'OK',
        logic: 'route',
        variables: { customer: 'acme' },
        fields: { plan: 'gold' },
      },
    ]);
  });

  test('start on: a start record at the connect, then the stop record', () => {
    const { events, records, kinds } = builder({ start: true });
    setup(events);
    events.final('c1', 200, 'OK', 'sip:gw', T0 + 1000);
    events.inDialog('c1', 'BYE', T0 + 3000);
    expect(kinds()).toEqual(['start', 'stop']);
    expect(records[0]).toMatchObject({ connectAt: T0 + 1000, endAt: null, duration: 0, status: 200 });
    expect(records[1]).toMatchObject({ duration: 2 });
  });

  test('stop off: a connected call ends without record', () => {
    const { events, records } = builder({ stop: false });
    setup(events);
    events.final('c1', 200, 'OK', null, T0 + 1);
    events.inDialog('c1', 'BYE', T0 + 2);
    expect(records).toEqual([]);
  });

  test('reject: 4xx/5xx/6xx final → reject record (487 after CANCEL too); off → none', () => {
    const { events, records, kinds } = builder();
    for (const [i, status] of [486, 503, 603, 487].entries()) {
      setup(events, `r${i}`);
      events.final(`r${i}`, status, 'No', null, T0 + 500);
    }
    expect(kinds()).toEqual(['reject', 'reject', 'reject', 'reject']);
    expect(records[0]).toMatchObject({ status: 486, reason: 'No', connectAt: null, endAt: T0 + 500, duration: null, destination: null });
    const off = builder({ reject: false });
    setup(off.events);
    off.events.final('c1', 486, 'Busy Here', null, T0 + 1);
    expect(off.records).toEqual([]);
  });

  test('401/407 challenges are not calls: no record; the authenticated retry is the call', () => {
    const { events, records, b } = builder();
    setup(events, 'c1', T0, 'challenge');
    events.final('c1', 407, 'Proxy Authentication Required', null, T0 + 1);
    expect(b.size).toBe(0);
    // a logic that relays and gets a 401 from downstream, forwarded upstream: still no record
    setup(events, 'c2');
    events.final('c2', 401, 'Unauthorized', 'sip:gw', T0 + 1);
    setup(events, 'c1', T0 + 100);
    events.final('c1', 486, 'Busy Here', null, T0 + 200);
    expect(records.map((r) => [r.callId, r.kind, r.setupAt])).toEqual([['c1', 'reject', T0 + 100]]);
  });

  test('redirect: off by default; on → a redirect record on a 3xx', () => {
    const off = builder();
    setup(off.events, 'c1', T0, 'redirect');
    off.events.final('c1', 302, 'Moved Temporarily', null, T0 + 1);
    expect(off.records).toEqual([]);
    expect(off.b.size).toBe(0);
    const on = builder({ redirect: true });
    setup(on.events, 'c1', T0, 'redirect');
    on.events.final('c1', 302, 'Moved Temporarily', null, T0 + 1);
    expect(on.records).toMatchObject([{ kind: 'redirect', status: 302 }]);
  });

  test('recurse: a record per failed attempt (crankback), then the final; off → only the final', () => {
    const { events, records } = builder();
    setup(events);
    events.attempt('c1', ['sip:gw1'], T0 + 1);
    events.attemptFailed('c1', 'sip:gw1', 503, 'Service Unavailable', T0 + 100);
    events.attempt('c1', ['sip:gw2'], T0 + 101);
    events.attemptFailed('c1', null, 408, 'Request Timeout', T0 + 32_000);
    events.attempt('c1', ['sip:gw3'], T0 + 32_001);
    events.final('c1', 200, 'OK', 'sip:gw3', T0 + 33_000);
    events.inDialog('c1', 'BYE', T0 + 43_000);
    expect(records.map((r) => [r.kind, r.destination, r.status, r.duration])).toEqual([
      ['recurse', 'sip:gw1', 503, null],
      ['recurse', 'sip:gw2', 408, null],
      ['stop', 'sip:gw3', 200, 10],
    ]);
    const off = builder({ recurse: false });
    setup(off.events);
    off.events.attemptFailed('c1', 'sip:gw1', 503, 'x', T0 + 1);
    off.events.final('c1', 503, 'Service Unavailable', 'sip:gw2', T0 + 2);
    expect(off.kinds()).toEqual(['reject']);
  });

  test('a location lookup attempt lists every binding as the destination until one answers', () => {
    const { events, records } = builder();
    setup(events);
    events.attempt('c1', ['sip:a@192.0.2.1', 'sip:a@192.0.2.2'], T0 + 1);
    events.final('c1', 480, 'Temporarily Unavailable', null, T0 + 2);
    expect(records[0].destination).toBe('sip:a@192.0.2.1,sip:a@192.0.2.2');
  });

  test('events of unknown calls, a second final and in-dialog requests before the connect are ignored', () => {
    const { events, records } = builder();
    events.final('nobody', 200, 'OK', null, T0);
    events.inDialog('nobody', 'BYE', T0);
    events.attemptFailed('nobody', 'sip:x', 503, 'x', T0);
    setup(events);
    events.inDialog('c1', 'BYE', T0 + 1);
    events.final('c1', 200, 'OK', null, T0 + 2);
    events.final('c1', 200, 'OK', null, T0 + 3);
    events.attemptFailed('c1', 'sip:x', 503, 'x', T0 + 4);
    events.inDialog('c1', 'BYE', T0 + 5);
    expect(records.map((r) => [r.kind, r.connectAt])).toEqual([['stop', T0 + 2]]);
  });

  test('an IPv6 source is bracketed', () => {
    const { events, records } = builder();
    setup(events, 'c1', T0, 'reply', { sourceAddress: '2001:db8::7', sourcePort: 5060 });
    events.final('c1', 403, 'Forbidden', null, T0);
    expect(records[0].source).toBe('[2001:db8::7]:5060');
  });
});

describe('CDR builder: interim and timeout (sweep, injected clock)', () => {
  test('interim records every interimSec of a connected call, none before the connect', () => {
    const { events, b, records, kinds } = builder({ interimSec: 60 });
    setup(events);
    b.sweep(T0 + 120_000); // not connected yet
    events.final('c1', 200, 'OK', 'sip:gw', T0 + 1000);
    b.sweep(T0 + 60_999);
    expect(records).toEqual([]);
    b.sweep(T0 + 61_000);
    b.sweep(T0 + 61_500);
    b.sweep(T0 + 121_000);
    events.inDialog('c1', 'BYE', T0 + 150_000);
    expect(kinds()).toEqual(['interim', 'interim', 'stop']);
    expect(records.map((r) => [r.at, r.endAt, r.duration])).toEqual([
      [T0 + 61_000, null, 60],
      [T0 + 121_000, null, 120],
      [T0 + 150_000, T0 + 150_000, 149],
    ]);
  });

  test('timeout: a connected call with no in-dialog request for timeoutSec ends with a timeout record; requests refresh it', () => {
    const { events, b, records, kinds } = builder({ timeoutSec: 300 });
    setup(events);
    events.final('c1', 200, 'OK', 'sip:gw', T0);
    b.sweep(T0 + 299_999);
    events.inDialog('c1', 'INVITE', T0 + 200_000); // re-INVITE (session refresh)
    b.sweep(T0 + 300_000);
    events.inDialog('c1', 'UPDATE', T0 + 450_000);
    b.sweep(T0 + 749_999);
    expect(records).toEqual([]);
    b.sweep(T0 + 750_000);
    expect(kinds()).toEqual(['timeout']);
    expect(records[0]).toMatchObject({ endAt: T0 + 750_000, duration: 750, status: 200 });
    expect(b.size).toBe(0);
    events.inDialog('c1', 'BYE', T0 + 800_000); // too late: the call is gone
    expect(kinds()).toEqual(['timeout']);
  });

  test('a call that never gets a final is forgotten after SETUP_MAX_MS, without record', () => {
    const { events, b, records } = builder();
    setup(events);
    b.sweep(T0 + SETUP_MAX_MS - 1);
    expect(b.size).toBe(1);
    b.sweep(T0 + SETUP_MAX_MS);
    expect(b.size).toBe(0);
    expect(records).toEqual([]);
  });

  test('the sweep interval runs on its own and stops', async () => {
    let emitted: (r: CdrRecord) => void = () => undefined;
    const first = new Promise<CdrRecord>((resolve) => (emitted = resolve));
    const b = new CdrBuilder({ ...DEFAULTS, timeoutSec: 1, now: () => T0 + 5000 }, (r) => emitted(r));
    setup(b);
    b.final('c1', 200, 'OK', null, T0);
    b.startSweeping();
    const r = await first;
    b.stopSweeping();
    expect(r).toMatchObject({ kind: 'timeout', endAt: T0 + 5000 });
  });
});

describe('CDR builder: bounds and secrets', () => {
  test('at most maxCalls calls followed; the next get no CDR, counted, logged once per episode', () => {
    const logs: string[] = [];
    let untracked = 0;
    const { events, b, records } = builder({ maxCalls: 3, log: { log: (_l, m) => logs.push(m) }, onUntracked: () => untracked++ });
    for (let i = 0; i < 10; i++) setup(events, `c${i}`);
    expect(b.size).toBe(3);
    expect(b.untracked).toBe(7);
    expect(untracked).toBe(7);
    expect(logs.filter((l) => /maxCalls/.test(l))).toHaveLength(1);
    for (let i = 0; i < 10; i++) events.final(`c${i}`, 486, 'Busy Here', null, T0 + 1);
    expect(records.map((r) => r.callId)).toEqual(['c0', 'c1', 'c2']);
    b.sweep(T0 + 2);
    expect(logs.filter((l) => /again/.test(l))).toHaveLength(1);
    // a second episode is logged again
    for (let i = 0; i < 5; i++) setup(events, `d${i}`);
    expect(logs.filter((l) => /maxCalls/.test(l))).toHaveLength(2);
  });

  test('no secret in a record: password variables, names matching the secret pattern, digest credentials, even when configured', () => {
    const { events, records } = builder({ variables: ['customer', 'pin', 'password', 'auth', 'plan'] });
    events.setup({
      callId: 'c1',
      at: T0,
      logic: 'route',
      outcome: 'reply',
      cd: cd({ pin: '4321', password: 'hunter2', auth: 'Digest username="a", realm="r", nonce="n", uri="sip:x", response="0123"', plan: 'x'.repeat(5000) }),
      isSecret: (n) => n === 'pin',
    });
    events.final('c1', 403, 'Forbidden', null, T0);
    const json = JSON.stringify(records);
    expect(json).not.toMatch(/4321|hunter2|0123/);
    expect(records[0].variables).toEqual({ customer: 'acme', plan: 'x'.repeat(1024) });
  });

  test('caller-chosen values stay data: CR LF, quotes, commas and =cmd are kept verbatim in the record', () => {
    const evil = '"Evil, Inc"\r\nX-Injected: 1 =cmd|\' /C calc\'!A0';
    const { events, records } = builder();
    setup(events, 'c1', T0, 'reply', { calling: evil });
    events.final('c1', 404, 'Not Found', null, T0);
    expect(records[0].calling).toBe(evil);
  });
});
