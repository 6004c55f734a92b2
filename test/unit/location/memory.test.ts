import v8 from 'node:v8';
import vm from 'node:vm';
import { createMemoryLocationStore } from '../../../services/location/memory';
import type { Binding } from '../../../services/location/types';

function binding(over: Partial<Binding> = {}): Binding {
  return {
    ruid: 'r1',
    username: 'john',
    domain: null,
    contact: 'sip:john@10.0.0.1:5060',
    received: null,
    path: null,
    expires: new Date(2_000_000),
    q: -1,
    callid: 'c',
    cseq: 1,
    last_modified: new Date(1_000_000),
    flags: 0,
    cflags: 0,
    user_agent: 'ua',
    socket: null,
    methods: null,
    instance: null,
    reg_id: 0,
    server_id: 0,
    connection_id: -1,
    keepalive: 0,
    partition: 0,
    ...over,
  };
}

describe('memory location store', () => {
  it('upserts, finds by AoR and replaces by ruid', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding());
    await s.upsert(binding({ ruid: 'r2', contact: 'sip:john@10.0.0.2' }));
    await s.upsert(binding({ ruid: 'r1', cseq: 2 }));
    const found = await s.find('john', null);
    expect(found.map((b) => [b.ruid, b.cseq]).sort()).toEqual([
      ['r1', 2],
      ['r2', 1],
    ]);
    expect(await s.find('jane', null)).toEqual([]);
  });

  it('keeps AoRs with and without a domain apart', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding({ ruid: 'a', domain: null }));
    await s.upsert(binding({ ruid: 'b', domain: 'netaxis.be' }));
    expect((await s.find('john', null)).map((b) => b.ruid)).toEqual(['a']);
    expect((await s.find('john', 'netaxis.be')).map((b) => b.ruid)).toEqual(['b']);
  });

  it('moves a ruid that changes AoR instead of duplicating it', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding({ ruid: 'x', username: 'john' }));
    await s.upsert(binding({ ruid: 'x', username: 'jane' }));
    expect(await s.find('john', null)).toEqual([]);
    expect((await s.find('jane', null)).map((b) => b.ruid)).toEqual(['x']);
  });

  it('removes by ruid, ignoring unknown ones', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding({ ruid: 'a' }));
    await s.upsert(binding({ ruid: 'b' }));
    await s.remove(['a', 'nope']);
    expect((await s.find('john', null)).map((b) => b.ruid)).toEqual(['b']);
  });

  it('hands out copies, so callers cannot alter stored rows', async () => {
    const s = createMemoryLocationStore();
    const b = binding();
    await s.upsert(b);
    b.cseq = 99;
    const [got] = await s.find('john', null);
    got.contact = 'changed';
    const [again] = await s.find('john', null);
    expect(again.cseq).toBe(1);
    expect(again.contact).toBe('sip:john@10.0.0.1:5060');
  });

  it('purges expired bindings only and counts them', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding({ ruid: 'old', expires: new Date(1000) }));
    await s.upsert(binding({ ruid: 'edge', expires: new Date(5000) }));
    await s.upsert(binding({ ruid: 'live', expires: new Date(9000) }));
    await s.upsert(binding({ ruid: 'other', username: 'jane', expires: new Date(2000) }));
    expect(await s.purgeExpired(new Date(5000))).toBe(3);
    expect((await s.find('john', null)).map((b) => b.ruid)).toEqual(['live']);
    expect(await s.find('jane', null)).toEqual([]);
    expect(await s.purgeExpired(new Date(5000))).toBe(0);
  });

  it('close empties the store', async () => {
    const s = createMemoryLocationStore();
    await s.upsert(binding());
    await s.close();
    expect(await s.find('john', null)).toEqual([]);
  });
});

describe('memory location store: what a stored binding keeps alive', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const N = 150;
  const SIZE = 256 * 1024;
  /** A binding whose strings are cut from a large message, as the registrar's are from a REGISTER (13 characters and more: V8 copies shorter pieces). */
  const cutFrom = (i: number, round: number): Binding => {
    const m =
      `${round}:${i}:`.padEnd(SIZE, 'x') +
      `|subscriber-number-${i}|sip:user${i}@10.0.0.1:5060|call-${i}-0123456789|agent/1.0 (sipflow test)|ruid-0123456789-${i}`;
    const [, username, contact, callid, ua, ruid] = m.split('|');
    return binding({ ruid, username, contact, callid, user_agent: ua });
  };
  /**
   * What N bindings hold on the heap (MB), stored and then refreshed `refreshes` times by new
   * messages of the same text: the heap after a full collection with them, less the heap after
   * `release` lets them go and another collection. Nothing runs between the two (no await), so
   * another suite's leftovers freed meanwhile in this jest worker cannot blur the difference.
   */
  const heldMb = async (store: (b: Binding) => Promise<void>, refreshes: number, release: () => void): Promise<number> => {
    for (let round = 0; round <= refreshes; round++) for (let i = 0; i < N; i++) await store(cutFrom(i, round));
    gc();
    const held = process.memoryUsage().heapUsed;
    release();
    gc();
    return (held - process.memoryUsage().heapUsed) / 1e6;
  };
  const messagesMb = (N * SIZE) / 1e6;

  it('keeps none of the messages its bindings were cut from, when stored and when refreshed with the same strings', async () => {
    // the control: bindings kept as given hold their messages
    let kept: Binding[] = [];
    expect(
      await heldMb(
        async (b) => void kept.push(b),
        0,
        () => (kept = []),
      ),
    ).toBeGreaterThan(messagesMb / 2);
    let s: ReturnType<typeof createMemoryLocationStore> | null = createMemoryLocationStore();
    let found: Binding[] = [];
    const storeAndRead = async (b: Binding): Promise<void> => {
      await s!.upsert(b);
      if (b.username === 'subscriber-number-7') found = await s!.find(b.username, null);
    };
    expect(await heldMb(storeAndRead, 2, () => (s = null))).toBeLessThan(messagesMb / 10);
    expect(found.map((b) => [b.ruid, b.contact, b.callid, b.user_agent])).toEqual([
      ['ruid-0123456789-7', 'sip:user7@10.0.0.1:5060', 'call-7-0123456789', 'agent/1.0 (sipflow test)'],
    ]);
  });
});
