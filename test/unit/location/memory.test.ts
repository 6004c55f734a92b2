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
