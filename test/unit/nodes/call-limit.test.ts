/**
 * analysis.callLimit (call admission control), the per-instance limiter (services/call-limit/memory.ts)
 * and the releaser that follows call events (services/call-limit/releaser.ts): limits reached,
 * keys from a sender's values, idempotence across the restart and the challenge, the rate window
 * and slot expiry on an injected clock, the bound on keys held.
 */
import { slotHolder } from '../../../engine/call-slots';
import { loadSlid } from '../../../engine/load';
import type { CallLimitPort } from '../../../engine/ports';
import type { CallDescriptor } from '../../../engine/types';
import { runLogic } from '../../../engine/run';
import { createCallSlotReleaser, createMemoryCallLimiter } from '../../../services/call-limit';
import { rateWindow } from '../../../services/call-limit/window';
import type { CallEvents } from '../../../sip/call-events';
import { acceptingAuth, testContext } from '../../support/context';
import { cdOf, compile, docOf, problemsOf, registry, reply, setVars, start, type NodeSpec } from '../engine/helpers';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** An INVITE's call descriptor input: Call-ID, From tag, variables. */
function invite(callId: string, fromTag = 'f1', vars: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return {
    headers: { 'Call-ID': callId, From: `<sip:alice@nl.netaxis.be>;tag=${fromTag}`, To: '<sip:bob@nl.netaxis.be>', CSeq: '1 INVITE', ...headers },
    customer: 'acme',
    ...vars,
  };
}

/** The variables the tests' calls bring (customer, maxCalls), declared so placeholders name them. */
const declare = (id: number, next: number): NodeSpec =>
  setVars(
    id,
    ['customer', 'maxCalls'].map((variable) => ({ variable, onlyIfNotSet: true })),
    next,
  );

/** start → call limit (values) → 200 allowed / 486 rejected. */
const limitNodes = (values: Record<string, unknown>): NodeSpec[] => [
  start(9),
  declare(9, 1),
  [1, 'analysis.callLimit', { key: 'customer:[customer]', ifAllowed: 2, ifRejected: 3, ...values }],
  reply(2, 200, 'allowed'),
  reply(3, 486, 'rejected'),
];

function harness(values: Record<string, unknown>, limiter: CallLimitPort = createMemoryCallLimiter()) {
  const service = compile(docOf(limitNodes(values)));
  const ctx = { ...testContext(), callLimits: limiter };
  return {
    ctx,
    run: (input: Record<string, unknown>) => runLogic(service, '1', cdOf(input), ctx, { trace: true }),
  };
}

const statusOf = (r: { trace?: Array<{ set?: Record<string, unknown> }> }) => r.trace!.find((t) => t.set?.callLimitStatus !== undefined)?.set?.callLimitStatus;

describe('analysis.callLimit: validation', () => {
  test('maxConcurrent or maxPerSecond is required, located', () => {
    const r = loadSlid(docOf([start(1), [1, 'analysis.callLimit', { key: 'k', ifAllowed: 2, ifRejected: 2 }], reply(2, 200)]), 't.slid', registry);
    expect(problemsOf(r).join('\n')).toMatch(/node 1.*maxConcurrent.*set maxConcurrent, maxPerSecond or both/);
  });

  test('negative or non-integer maxConcurrent and a zero rate are refused by the schema', () => {
    for (const values of [{ maxConcurrent: -1 }, { maxConcurrent: 1.5 }, { maxPerSecond: 0 }, { maxPerSecond: 20000 }]) {
      const r = loadSlid(docOf([start(1), [1, 'analysis.callLimit', { key: 'k', ifAllowed: 2, ifRejected: 2, ...values }], reply(2, 200)]), 't.slid', registry);
      expect(r.problems.some((p) => p.severity === 'error')).toBe(true);
    }
  });
});

describe('analysis.callLimit: admission', () => {
  test('concurrent calls of a key up to maxConcurrent; the next is rejected, status concurrent; another key is apart', async () => {
    const limiter = createMemoryCallLimiter();
    const h = harness({ maxConcurrent: 2 }, limiter);
    expect((await h.run(invite('c1'))).outcome).toMatchObject({ status: 200 });
    const second = await h.run(invite('c2'));
    expect(second.outcome).toMatchObject({ status: 200 });
    expect(second.cd.callSlots).toEqual(['customer:acme']);
    expect(statusOf(second)).toBe('allowed');
    const third = await h.run(invite('c3'));
    expect(third.outcome).toMatchObject({ status: 486 });
    expect(statusOf(third)).toBe('concurrent');
    expect(third.cd.callSlots).toBeUndefined();
    expect((await h.run(invite('c4', 'f1', { customer: 'other' }))).outcome).toMatchObject({ status: 200 });
    expect(limiter.slots('customer:acme')).toBe(2);
    await limiter.release(slotHolder(second.cd), ['customer:acme']);
    expect((await h.run(invite('c5'))).outcome).toMatchObject({ status: 200 });
  });

  test('maxConcurrent 0 admits none', async () => {
    const h = harness({ maxConcurrent: 0 });
    const r = await h.run(invite('c1'));
    expect(statusOf(r)).toBe('concurrent');
  });

  test('new calls per second: the limit reached → status rate; a second later calls pass again', async () => {
    const h = harness({ maxPerSecond: 3 });
    for (const id of ['a', 'b', 'c']) expect(statusOf(await h.run(invite(id)))).toBe('allowed');
    expect(statusOf(await h.run(invite('d')))).toBe('rate');
    h.ctx.clockMs.value += 999;
    expect(statusOf(await h.run(invite('e')))).toBe('rate');
    h.ctx.clockMs.value += 1;
    expect(statusOf(await h.run(invite('f')))).toBe('allowed');
  });

  test('limits read from variables (e.g. from the directory); a non-number → ifRejected, invalid limit', async () => {
    const h = harness({ maxConcurrent: 'maxCalls' });
    expect(statusOf(await h.run(invite('c1', 'f', { maxCalls: '1' })))).toBe('allowed');
    expect(statusOf(await h.run(invite('c2', 'f', { maxCalls: 1 })))).toBe('concurrent');
    expect(statusOf(await h.run(invite('c3', 'f', { maxCalls: 'lots' })))).toBe('invalid limit');
    expect(statusOf(await h.run(invite('c4', 'f', { maxCalls: null })))).toBe('invalid limit');
  });

  test('only an initial INVITE takes a slot: other methods and in-dialog INVITEs pass, not counted', async () => {
    const limiter = createMemoryCallLimiter();
    const h = harness({ maxConcurrent: 0 }, limiter);
    const bye = await h.run(invite('c1', 'f', {}, { CSeq: '2 BYE' }));
    expect(bye.outcome).toMatchObject({ status: 200 });
    expect(statusOf(bye)).toBe('not counted');
    const reInvite = await h.run(invite('c1', 'f', {}, { To: '<sip:bob@nl.netaxis.be>;tag=t9' }));
    expect(statusOf(reInvite)).toBe('not counted');
    expect(limiter.keys).toBe(0);
  });

  test('no limiter in the run (one-shot run, dry run): admitted, unlimited, no slot', async () => {
    const service = compile(docOf(limitNodes({ maxConcurrent: 0 })));
    const r = await runLogic(service, '1', cdOf(invite('c1')), testContext(), { trace: true });
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(statusOf(r)).toBe('unlimited');
    expect(r.cd.callSlots).toBeUndefined();
  });

  test('the limiter unavailable (shared database down) → ifRejected, status unavailable (fail closed)', async () => {
    const down: CallLimitPort = { acquire: () => Promise.reject(new Error('connection refused')), release: async () => undefined };
    const r = await harness({ maxConcurrent: 5 }, down).run(invite('c1'));
    expect(r.outcome).toMatchObject({ status: 486 });
    expect(statusOf(r)).toBe('unavailable');
  });
});

describe('analysis.callLimit: keys from a sender', () => {
  test('a key that resolves to empty, or one of whose variables is empty → ifRejected, status no key, nothing taken', async () => {
    const limiter = createMemoryCallLimiter();
    for (const key of ['customer', '[customer]', 'customer:[customer]', '[calling]/[customer]']) {
      const h = harness({ key, maxConcurrent: 5 }, limiter);
      for (const customer of ['', null]) {
        const r = await h.run(invite('c1', 'f', { customer, calling: '+3222' }));
        expect(r.outcome).toMatchObject({ status: 486 });
        expect(statusOf(r)).toBe('no key');
      }
      expect(statusOf(await h.run(invite('c1', 'f', { customer: 'acme', calling: '+3222' })))).toBe('allowed');
    }
    // acme (the variable alone, or its placeholder alone), customer:acme, +3222/acme
    expect(limiter.keys).toBe(3);
  });

  test('an oversized key (a From user of 300 bytes) or one holding a control character → no key', async () => {
    const limiter = createMemoryCallLimiter();
    const h = harness({ key: 'user:[fromUsername]', maxConcurrent: 5 }, limiter);
    const long = await h.run(invite('c1', 'f', { fromUsername: 'x'.repeat(300) }));
    expect(statusOf(long)).toBe('no key');
    const atCap = await h.run(invite('c2', 'f', { fromUsername: 'x'.repeat(251) }));
    expect(statusOf(atCap)).toBe('allowed');
    for (const evil of ['a\r\nb', 'a\u0000b', 'a\u007fb', 'a\tb']) expect(statusOf(await h.run(invite('c3', 'f', { fromUsername: evil })))).toBe('no key');
    expect(limiter.keys).toBe(1);
  });

  test('a flood of distinct keys stops at maxKeys: new keys → unavailable, live slots kept; expired keys make room', async () => {
    const limiter = createMemoryCallLimiter({ maxKeys: 50, slotTimeoutSec: 60 });
    const h = harness({ key: 'user:[fromUsername]', maxConcurrent: 1 }, limiter);
    for (let i = 0; i < 50; i++) expect(statusOf(await h.run(invite(`c${i}`, 'f', { fromUsername: `u${i}` })))).toBe('allowed');
    for (let i = 50; i < 60; i++) expect(statusOf(await h.run(invite(`c${i}`, 'f', { fromUsername: `u${i}` })))).toBe('unavailable');
    expect(limiter.keys).toBe(50);
    expect(statusOf(await h.run(invite('again', 'f', { fromUsername: 'u0' })))).toBe('concurrent');
    h.ctx.clockMs.value += 60_000;
    expect(statusOf(await h.run(invite('later', 'f', { fromUsername: 'new' })))).toBe('allowed');
    expect(limiter.keys).toBe(1);
  });
});

describe('analysis.callLimit: one slot per call and key', () => {
  test('the restart after authentication runs the node again: still one slot, the key once in callSlots', async () => {
    const limiter = createMemoryCallLimiter();
    const service = compile(
      docOf([
        start(9),
        declare(9, 1),
        [1, 'analysis.callLimit', { key: 'customer:[customer]', maxConcurrent: 1, maxPerSecond: 1, ifAllowed: 2, ifRejected: 4 }],
        [2, 'analysis.sequentialConditions', { conditions: [{ variable: 'authStatus', operator: 'is', value: 1, ifTrue: 5 }], fallback: 3 }],
        [3, 'output.nit.registrar.authenticate', { password: 'pw' }],
        reply(4, 486, 'rejected'),
        reply(5, 200, 'in'),
      ]),
    );
    const ctx = { ...testContext(), auth: acceptingAuth, callLimits: limiter };
    const r = await runLogic(service, '1', cdOf(invite('c1', 'f1', {}, { 'Proxy-Authorization': 'Digest username="u"' })), ctx, { trace: true });
    expect(r.restarts).toBe(1);
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(r.cd.callSlots).toEqual(['customer:acme']);
    expect(limiter.slots('customer:acme')).toBe(1);
  });

  test('the INVITE answering a challenge (same Call-ID and From tag) finds its slot; another From tag on the Call-ID is another call', async () => {
    const limiter = createMemoryCallLimiter();
    const h = harness({ maxConcurrent: 1, maxPerSecond: 1 }, limiter);
    expect(statusOf(await h.run(invite('c1', 'f1')))).toBe('allowed');
    expect(statusOf(await h.run(invite('c1', 'f1', {}, { CSeq: '2 INVITE' })))).toBe('allowed');
    expect(limiter.slots('customer:acme')).toBe(1);
    expect(statusOf(await h.run(invite('c1', 'other-tag')))).toBe('concurrent');
  });
});

describe('memory limiter', () => {
  const rule = { maxConcurrent: 2 };

  test('slots expire after slotTimeoutSec (a dialog never ended)', async () => {
    const l = createMemoryCallLimiter({ slotTimeoutSec: 100 });
    expect(await l.acquire('a', 'k', rule, T0)).toBe('allowed');
    expect(await l.acquire('b', 'k', rule, T0 + 1000)).toBe('allowed');
    expect(await l.acquire('c', 'k', rule, T0 + 99_999)).toBe('concurrent');
    expect(await l.acquire('c', 'k', rule, T0 + 100_000)).toBe('allowed');
    expect(await l.acquire('d', 'k', rule, T0 + 100_000)).toBe('concurrent');
    expect(await l.acquire('d', 'k', rule, T0 + 101_000)).toBe('allowed');
  });

  test('release is idempotent and frees only the holder named', async () => {
    const l = createMemoryCallLimiter();
    await l.acquire('a', 'k', rule, T0);
    await l.acquire('b', 'k', rule, T0);
    await l.release('a', ['k']);
    await l.release('a', ['k']);
    await l.release('nobody', ['k', 'unknown']);
    expect(l.slots('k')).toBe(1);
    expect(await l.acquire('c', 'k', rule, T0)).toBe('allowed');
    expect(await l.acquire('d', 'k', rule, T0)).toBe('concurrent');
    await l.release('b', ['k']);
    await l.release('c', ['k']);
    expect(l.keys).toBe(0);
  });

  test('rate window: whole and fractional rates', async () => {
    expect(rateWindow(10)).toEqual({ count: 10, windowMs: 1000 });
    expect(rateWindow(0.5)).toEqual({ count: 1, windowMs: 2000 });
    expect(rateWindow(2.5)).toEqual({ count: 2, windowMs: 800 });
    const l = createMemoryCallLimiter();
    const half = { maxPerSecond: 0.5 };
    expect(await l.acquire('a', 'k', half, T0)).toBe('allowed');
    expect(await l.acquire('b', 'k', half, T0 + 1999)).toBe('rate');
    expect(await l.acquire('b', 'k', half, T0 + 2000)).toBe('allowed');
    // a burst never exceeds the count, whatever the quiet time before
    const r5 = { maxPerSecond: 5 };
    const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => l.acquire(`h${i}`, 'burst', r5, T0 + 10_000)));
    expect(verdicts.filter((v) => v === 'allowed')).toHaveLength(5);
    // sliding: 5 spread over the second, the 6th inside it refused, admitted once the first leaves
    const s = createMemoryCallLimiter();
    for (let i = 0; i < 5; i++) expect(await s.acquire(`h${i}`, 'k', r5, T0 + i * 200)).toBe('allowed');
    expect(await s.acquire('x', 'k', r5, T0 + 999)).toBe('rate');
    expect(await s.acquire('x', 'k', r5, T0 + 1000)).toBe('allowed');
    expect(await s.acquire('y', 'k', r5, T0 + 1100)).toBe('rate');
  });

  test('a rejected acquire takes nothing (the rate is not charged for a call over the concurrency limit)', async () => {
    const l = createMemoryCallLimiter();
    const both = { maxConcurrent: 1, maxPerSecond: 2 };
    expect(await l.acquire('a', 'k', both, T0)).toBe('allowed');
    expect(await l.acquire('b', 'k', both, T0)).toBe('concurrent');
    await l.release('a', ['k']);
    expect(await l.acquire('c', 'k', both, T0)).toBe('allowed');
    await l.release('c', ['k']);
    expect(await l.acquire('d', 'k', both, T0)).toBe('rate');
  });
});

/** The releaser as the SIP thread sees it (server/call-consumers.ts): a CallEvents consumer. */
function releaser(...args: Parameters<typeof createCallSlotReleaser>): CallEvents & { readonly size: number } {
  return createCallSlotReleaser(...args);
}

describe('releaser', () => {
  /** A limiter that records releases. */
  function recording() {
    const inner = createMemoryCallLimiter();
    const released: Array<[string, string[]]> = [];
    const limiter: CallLimitPort = {
      acquire: inner.acquire,
      release: async (holder, keys) => {
        released.push([holder, [...keys]]);
        await inner.release(holder, keys);
      },
    };
    return { inner, limiter, released };
  }

  async function admitted(limiter: CallLimitPort, callId: string, tag = 'f1'): Promise<CallDescriptor> {
    const r = await harness({ maxConcurrent: 10 }, limiter).run(invite(callId, tag));
    expect(r.cd.callSlots).toEqual(['customer:acme']);
    return r.cd;
  }
  const setup = (callId: string, cd: CallDescriptor, at = T0) => ({ callId, at, logic: 'test', cd, outcome: 'relay' });

  test('a final failure (reject, 487 after CANCEL, 3xx) releases once; a retransmitted final releases nothing more', async () => {
    for (const status of [486, 487, 302, 503]) {
      const { inner, limiter, released } = recording();
      const rel = releaser(limiter);
      const cd = await admitted(limiter, 'c1');
      rel.setup(setup('c1', cd));
      rel.attempt('c1', ['sip:gw1'], T0);
      rel.attemptFailed('c1', 'sip:gw1', 503, 'Service Unavailable', T0);
      rel.final('c1', status, 'x', null, T0);
      rel.final('c1', status, 'x', null, T0);
      await Promise.resolve();
      expect(released).toEqual([[slotHolder(cd), ['customer:acme']]]);
      expect(inner.slots('customer:acme')).toBe(0);
      expect(rel.size).toBe(0);
    }
  });

  test('a 2xx keeps the slot; re-INVITE keeps it; BYE releases; a second BYE nothing', async () => {
    const { inner, limiter, released } = recording();
    const rel = releaser(limiter);
    const cd = await admitted(limiter, 'c1');
    rel.setup(setup('c1', cd));
    rel.final('c1', 200, 'OK', 'sip:gw1', T0);
    rel.inDialog('c1', 'INVITE', T0);
    rel.inDialog('c1', 'UPDATE', T0);
    expect(released).toEqual([]);
    expect(inner.slots('customer:acme')).toBe(1);
    rel.inDialog('c1', 'BYE', T0);
    rel.inDialog('c1', 'BYE', T0);
    await Promise.resolve();
    expect(released).toHaveLength(1);
    expect(inner.slots('customer:acme')).toBe(0);
  });

  test('a challenge: the 407 releases, the answering INVITE takes the slot again and its BYE releases it', async () => {
    const { inner, limiter, released } = recording();
    const rel = releaser(limiter);
    const first = await admitted(limiter, 'c1');
    rel.setup(setup('c1', first));
    rel.final('c1', 407, 'Proxy Authentication Required', null, T0);
    const second = await admitted(limiter, 'c1');
    rel.setup(setup('c1', second));
    rel.final('c1', 200, 'OK', 'sip:gw', T0);
    expect(inner.slots('customer:acme')).toBe(1);
    rel.inDialog('c1', 'BYE', T0);
    await Promise.resolve();
    expect(released).toHaveLength(2);
    expect(inner.slots('customer:acme')).toBe(0);
  });

  test('calls without slots, and events of Call-IDs never set up here, release nothing (no caller frees another call)', async () => {
    const { inner, limiter, released } = recording();
    const rel = releaser(limiter);
    const victim = await admitted(limiter, 'victim');
    rel.setup(setup('victim', victim));
    rel.final('victim', 200, 'OK', 'sip:gw', T0);
    rel.setup(setup('c2', cdOf(invite('c2'))));
    rel.final('c2', 486, 'Busy', null, T0);
    rel.final('unknown', 486, 'Busy', null, T0);
    rel.inDialog('unknown', 'BYE', T0);
    await Promise.resolve();
    expect(released).toEqual([]);
    expect(inner.slots('customer:acme')).toBe(1);
  });

  test('records of calls that never end are forgotten after slotTimeoutSec; maxCalls bounds them', async () => {
    const { limiter } = recording();
    const rel = releaser(limiter, { slotTimeoutSec: 60, maxCalls: 3 });
    const cd = await admitted(limiter, 'c1');
    for (let i = 0; i < 5; i++) rel.setup(setup(`c${i}`, cd, T0 + i));
    expect(rel.size).toBe(3);
    rel.setup(setup('late', cd, T0 + 61_000));
    expect(rel.size).toBe(1);
  });

  test('a failing release is logged, never thrown', async () => {
    const logs: string[] = [];
    const rel = releaser({ acquire: async () => 'allowed', release: () => Promise.reject(new Error('db down')) }, { log: { log: (_l, m) => logs.push(m) } });
    const cd = cdOf(invite('c1'));
    cd.callSlots = ['k'];
    rel.setup(setup('c1', cd));
    expect(() => rel.final('c1', 500, 'x', null, T0)).not.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(logs).toEqual(['call slot release failed: db down']);
  });
});
