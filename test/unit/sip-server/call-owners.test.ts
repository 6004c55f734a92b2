import { CallOwners } from '../../../server/sip-threads/call-owners';
import { callIdHash, callIdKey } from '../../../sip/dispatch';

const msg = (startLine: string, callId: string, to = '<sip:bob@example.test>') =>
  Buffer.from(`${startLine}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: 1 X\r\n\r\n`);
const register = (callId: string) => msg('REGISTER sip:example.test SIP/2.0', callId);
const invite = (callId: string) => msg('INVITE sip:bob@example.test SIP/2.0', callId);
const options = (callId: string, to?: string) => msg('OPTIONS sip:example.test SIP/2.0', callId, to);
const response = (callId: string) => msg('SIP/2.0 200 OK', callId);
const workerOf = (callId: string, workers: number) => callIdHash(register(callId)) % workers;

describe('callIdKey', () => {
  test('its low 32 bits are callIdHash; Call-IDs of one 32-bit FNV-1a hash keep distinct keys', () => {
    for (const [a, b] of [
      ['costarring', 'liquid'],
      ['declinate', 'macallums'],
    ]) {
      expect(callIdHash(register(a))).toBe(callIdHash(register(b)));
      expect(callIdKey(register(a))).not.toBe(callIdKey(register(b)));
      expect(callIdKey(register(a)) % 2 ** 32).toBe(callIdHash(register(a)));
      expect(Number.isSafeInteger(callIdKey(register(a)))).toBe(true);
    }
    expect(callIdKey(Buffer.from('REGISTER sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n'))).toBe(0);
  });
});

describe('CallOwners', () => {
  test('low load: a REGISTER and an OPTIONS outside a dialog start inline, and every later message of their Call-ID follows; INVITEs and in-dialog requests go to the Call-ID’s worker', () => {
    const o = new CallOwners({ workers: 2, maxRate: 1000, warmEvery: 0 });
    expect(o.inline).toBe(2);
    let t = 1_000;
    expect(o.route(register('r1'), t)).toBe(2);
    expect(o.route(response('r1'), ++t)).toBe(2);
    // the same Call-ID keeps its thread, whatever the method
    expect(o.route(invite('r1'), ++t)).toBe(2);
    expect(o.route(options('o1'), ++t)).toBe(2);
    expect(o.route(options('o2', '<sip:bob@example.test>;tag=abc'), ++t)).toBe(workerOf('o2', 2));
    expect(o.route(invite('i1'), ++t)).toBe(workerOf('i1', 2));
    expect(o.route(response('i1'), t + 1)).toBe(workerOf('i1', 2));
    expect(o.size).toBe(2);
    expect(o.mode).toBe('inline');
  });

  test('past maxRate new Call-IDs go to the workers at once, held ones stay inline; inline again after 2 s under 60 % of the rate, except Call-IDs a worker had in the last keepMs', () => {
    const keepMs = 32_000;
    const o = new CallOwners({ workers: 3, maxRate: 400, keepMs, warmEvery: 0 });
    let t = 10_000;
    expect(o.route(register('held'), t)).toBe(3);
    // 100 messages per 250 ms window = 400/s: the 101st of the window spreads
    for (let i = 0; i < 99; i++) o.route(invite(`load${i}`), t);
    expect(o.mode).toBe('inline');
    expect(o.route(register('busy'), t)).toBe(workerOf('busy', 3));
    expect(o.mode).toBe('spread');
    expect(o.route(register('held'), ++t)).toBe(3);
    // 1.75 s of quiet is not enough (the busy window counts as one)
    t += 1750;
    expect(o.route(register('fresh1'), t)).toBe(workerOf('fresh1', 3));
    t += 500;
    expect(o.route(register('fresh2'), t)).toBe(3);
    expect(o.mode).toBe('inline');
    // 'busy' and 'fresh1' went to a worker within keepMs: their retransmissions find it there
    expect(o.route(register('busy'), ++t)).toBe(workerOf('busy', 3));
    expect(o.route(register('fresh1'), ++t)).toBe(workerOf('fresh1', 3));
    // after two periods nothing of them is remembered: they start inline
    t += 2 * keepMs;
    expect(o.route(register('busy'), t)).toBe(3);
  });

  test('a dispatching thread busy over 75 % of a window spreads at low rates; back inline only after 2 s under 60 %', () => {
    let busy = 0.1;
    const o = new CallOwners({ workers: 2, maxRate: 10_000, utilization: () => busy, warmEvery: 0 });
    let t = 0;
    expect(o.route(register('a'), t)).toBe(2);
    busy = 0.9; // e.g. directory reads on PGlite
    t += 300;
    expect(o.route(register('b'), t)).toBe(workerOf('b', 2));
    expect(o.mode).toBe('spread');
    // 2 s of windows, still two thirds busy: spread
    busy = 0.65;
    for (let i = 0; i < 9; i++) expect(o.route(invite(`i${i}`), (t += 250))).toBe(workerOf(`i${i}`, 2));
    expect(o.route(register('c'), (t += 250))).toBe(workerOf('c', 2));
    busy = 0.55;
    for (let i = 0; i < 9; i++) o.route(invite(`j${i}`), (t += 250));
    expect(o.mode).toBe('inline');
    expect(o.route(register('d'), t + 250)).toBe(2);
  });

  test('a Call-ID leaves the inline front end keepMs after its last message; it is pruned from the table', () => {
    const o = new CallOwners({ workers: 2, maxRate: 1000, keepMs: 10_000, warmEvery: 0 });
    let t = 0;
    o.route(register('a'), t);
    t += 9_000;
    expect(o.route(invite('a'), t)).toBe(2); // refreshed here
    t += 9_000;
    expect(o.route(response('a'), t)).toBe(2);
    o.route(register('b'), t);
    t += 10_001;
    expect(o.route(invite('a'), t)).toBe(workerOf('a', 2));
    expect(o.size).toBe(0);
  });

  test('at most maxInline Call-IDs inline: the next go to their worker', () => {
    const o = new CallOwners({ workers: 2, maxRate: 100_000, maxInline: 3, warmEvery: 0 });
    const routed = ['c1', 'c2', 'c3', 'c4', 'c5'].map((id, i) => o.route(register(id), i));
    expect(routed).toEqual([2, 2, 2, workerOf('c4', 2), workerOf('c5', 2)]);
    expect(o.size).toBe(3);
  });

  test('while inline over half of maxRate, one new Call-ID in 16 goes to its worker (kept warm) and its later messages follow; under half, none', () => {
    // maxRate 4,000/s: 1,000 messages a window; one every 0.4 ms is 2,500/s, over half
    const o = new CallOwners({ workers: 2, maxRate: 4000 });
    const ids = Array.from({ length: 4000 }, (_, i) => `warm-${i}@10.0.0.1`);
    let t = 0;
    const first = ids.map((id) => o.route(register(id), (t += 0.4)));
    expect(o.mode).toBe('inline');
    // the first window's came before any window was judged: all inline
    expect(first.slice(0, 600).every((w) => w === 2)).toBe(true);
    const toWorkers = ids.filter((_, i) => i >= 700 && first[i] !== 2);
    // 1 in 16 of 3,300 is 206; FNV's upper bits spread them (binomial: 206 ± 42 at 3σ)
    expect(toWorkers.length).toBeGreaterThan(160);
    expect(toWorkers.length).toBeLessThan(250);
    for (const id of toWorkers) expect(o.route(register(id), (t += 0.4))).toBe(workerOf(id, 2));
    // both workers get their share
    expect(new Set(toWorkers.map((id) => workerOf(id, 2)))).toEqual(new Set([0, 1]));
    // the others stay inline, their retransmissions too
    for (const id of ids.filter((_, i) => first[i] === 2).slice(0, 100)) expect(o.route(register(id), (t += 0.4))).toBe(2);

    // under half of maxRate (1,000/s): every new Call-ID starts inline
    const calm = new CallOwners({ workers: 2, maxRate: 4000 });
    const others = ids.map((id) => `calm-${id}`);
    expect(others.filter((id, i) => calm.route(register(id), i) !== 2)).toEqual([]);
    // control: over half with warmEvery 0, none either
    const none = new CallOwners({ workers: 2, maxRate: 4000, warmEvery: 0 });
    t = 0;
    expect(ids.filter((id) => none.route(register(id), (t += 0.4)) !== 2)).toEqual([]);
  });

  test('a message without a Call-ID goes to worker 0, never inline', () => {
    const o = new CallOwners({ workers: 2, maxRate: 1000, warmEvery: 0 });
    expect(o.route(Buffer.from('REGISTER sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n'), 0)).toBe(0);
  });
});
