import type { RecordRow } from '../../../engine/types';
import { createCachedDirectory, directoryCacheKey } from '../../../services/directory/cache';
import type { Directory } from '../../../services/directory/query';
import type { DirectoryQuery } from '../../../services/directory/types';

function fakeDirectory(rowsFor: (q: DirectoryQuery) => RecordRow[] | Error) {
  const calls: DirectoryQuery[] = [];
  const dir: Directory = {
    async query(q) {
      calls.push(q);
      await new Promise((r) => setImmediate(r));
      const r = rowsFor(q);
      if (r instanceof Error) throw r;
      return r.map((row) => ({ ...row }));
    },
    schema: async () => ({ 'registration.customers': { username: 'text', password: 'text' } }),
    refreshSchema: async () => ({}),
    close: async () => undefined,
  };
  return { dir, calls };
}

const q = (username: unknown, extra: Partial<DirectoryQuery> = {}): DirectoryQuery => ({
  tables: ['registration.customers'],
  fields: ['customers.password'],
  joins: [],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
  conditions: [{ field: 'customers.username', operator: 'is', value: username as string }],
  ...extra,
});

describe('directory cache', () => {
  let t = 1_000_000;
  const now = () => t;
  beforeEach(() => {
    t = 1_000_000;
  });

  it('reuses a result for the TTL, then reads again', async () => {
    const { dir, calls } = fakeDirectory(() => [{ 'customers.password': 'pw' }]);
    const c = createCachedDirectory(dir, { ttlSec: 10, now });
    expect(await c.query(q('alice'))).toEqual([{ 'customers.password': 'pw' }]);
    await c.query(q('alice'));
    expect(calls).toHaveLength(1);
    t += 9_999;
    await c.query(q('alice'));
    expect(calls).toHaveLength(1);
    t += 2;
    await c.query(q('alice'));
    expect(calls).toHaveLength(2);
    expect(c.stats()).toMatchObject({ hits: 2, misses: 2 });
  });

  it('keeps empty results a shorter time', async () => {
    const { dir, calls } = fakeDirectory(() => []);
    const c = createCachedDirectory(dir, { ttlSec: 60, negativeTtlSec: 2, now });
    await c.query(q('nobody'));
    t += 1_500;
    await c.query(q('nobody'));
    expect(calls).toHaveLength(1);
    t += 600;
    await c.query(q('nobody'));
    expect(calls).toHaveLength(2);
  });

  it('keys on the values and their types, and on the query shape', async () => {
    const { dir, calls } = fakeDirectory((x) => [{ 'customers.password': String(x.conditions[0].value) }]);
    const c = createCachedDirectory(dir, { ttlSec: 60, now });
    expect(await c.query(q('alice'))).toEqual([{ 'customers.password': 'alice' }]);
    expect(await c.query(q('bob'))).toEqual([{ 'customers.password': 'bob' }]);
    await c.query(q(1));
    await c.query(q('1'));
    await c.query(q(null));
    await c.query(q('null'));
    await c.query(q('alice', { fields: ['customers.username'] }));
    await c.query(q('alice', { limit: undefined }));
    expect(calls).toHaveLength(8);
    expect(directoryCacheKey(q(1))).not.toBe(directoryCacheKey(q('1')));
    expect(directoryCacheKey(q(['a', 'b'] as never))).not.toBe(directoryCacheKey(q('a,b')));
  });

  it('keys a query built around the same arrays by what they hold now, not by what they held', () => {
    // the shape is kept per fields array (the query node reuses its arrays): a change in place, or
    // another scalar part, must still give another key
    const shared = q('alice');
    const first = directoryCacheKey(shared);
    expect(directoryCacheKey({ ...shared })).toBe(first);
    shared.fields.push('customers.username');
    const widened = directoryCacheKey(shared);
    expect(widened).not.toBe(first);
    shared.tables[0] = 'registration.numbers';
    expect(directoryCacheKey(shared)).not.toBe(widened);
    for (const change of [{ offset: 5 }, { limit: undefined }, { logic: 'or' as const }, { joinType: 'LEFT JOIN' as const }])
      expect(directoryCacheKey({ ...shared, ...change })).not.toBe(directoryCacheKey(shared));
    const joined = { ...shared, joins: [{ left: 'customers.id', operator: 'is' as const, right: 'numbers.customer' }] };
    expect(directoryCacheKey(joined)).not.toBe(directoryCacheKey(shared));
    expect(directoryCacheKey({ ...joined, joins: [{ ...joined.joins[0], right: 'numbers.owner' }] })).not.toBe(directoryCacheKey(joined));
  });

  it('is bounded: the oldest entries are dropped first', async () => {
    const { dir, calls } = fakeDirectory(() => [{ 'customers.password': 'x' }]);
    const c = createCachedDirectory(dir, { ttlSec: 60, maxEntries: 3, now });
    for (const u of ['a', 'b', 'c', 'd']) await c.query(q(u));
    expect(c.stats().size).toBe(3);
    await c.query(q('d'));
    await c.query(q('b'));
    expect(calls).toHaveLength(4);
    await c.query(q('a')); // was evicted
    expect(calls).toHaveLength(5);
    expect(c.stats().size).toBe(3);
  });

  it('invalidate() forgets everything, including reads in flight', async () => {
    const { dir, calls } = fakeDirectory(() => [{ 'customers.password': 'old' }]);
    const c = createCachedDirectory(dir, { ttlSec: 60, now });
    await c.query(q('alice'));
    c.invalidate();
    const inFlight = c.query(q('alice'));
    c.invalidate();
    await inFlight;
    await c.query(q('alice'));
    expect(calls).toHaveLength(3);
    await c.refreshSchema();
    await c.query(q('alice'));
    expect(calls).toHaveLength(4);
  });

  it('shares one read between concurrent misses and never caches errors', async () => {
    let fail = true;
    const { dir, calls } = fakeDirectory(() => (fail ? new Error('down') : [{ 'customers.password': 'pw' }]));
    const c = createCachedDirectory(dir, { ttlSec: 60, now });
    const all = await Promise.allSettled([c.query(q('alice')), c.query(q('alice')), c.query(q('alice'))]);
    expect(all.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toHaveLength(1);
    fail = false;
    const rows = await c.query(q('alice'));
    expect(rows).toEqual([{ 'customers.password': 'pw' }]);
    expect(calls).toHaveLength(2);
    // rows are shared: frozen so no caller can alter what the next one reads
    expect(Object.isFrozen(rows[0])).toBe(true);
  });

  it('rejects a non-positive TTL', () => {
    const { dir } = fakeDirectory(() => []);
    expect(() => createCachedDirectory(dir, { ttlSec: 0 })).toThrow(/ttlSec/);
  });
});
