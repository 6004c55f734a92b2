import { runLogic } from '../../../engine/run';
import { createMemoryDirectory, type MemoryTables } from '../../../services/directory/memory';
import { DirectoryChanges } from '../../../services/directory/changes';
import type { DirectoryPort, DirectoryQuery } from '../../../services/directory/types';
import { testContext } from '../../support/context';
import { cdOf, compile, docOf, reply, type NodeSpec } from './helpers';

const TABLES: MemoryTables = {
  'routing.numbers': [
    { number: '3225551000', owner: 'alice', tier: 'gold' },
    { number: '3225551001', owner: 'bob', tier: 'silver' },
    { number: '3225551002', owner: 'alice', tier: 'bronze' },
  ],
};

/** A directory that records every query it receives. */
function counting(inner: DirectoryPort): DirectoryPort & { queries: DirectoryQuery[] } {
  const queries: DirectoryQuery[] = [];
  return {
    queries,
    query: async (q) => {
      queries.push(q);
      return inner.query(q);
    },
    schema: () => inner.schema(),
  };
}

const query = (values: Record<string, unknown>): NodeSpec[] => [
  [0, 'enter.start', { next: 1 }],
  [1, 'query.queryDatabaseGeneric', { tables: ['routing.numbers'], ifRecordFound: 2, ifnoRecordFound: 3, ...values }],
  reply(2, 200, 'found'),
  reply(3, 404),
];

function setup(values: Record<string, unknown>) {
  const directory = counting(createMemoryDirectory(TABLES));
  const ctx = testContext({ directory });
  const service = compile(docOf(query(values)));
  const run = (input: Record<string, unknown>) => runLogic(service, '1', cdOf(input), ctx, { trace: true });
  return { directory, ctx, run };
}

describe('query.queryDatabaseGeneric on the in-memory directory', () => {
  test("stores the first row's fields and takes ifRecordFound; the query is built from the values", async () => {
    const { directory, run } = setup({
      fields: [
        { field: 'numbers.owner', storeInto: 'owner' },
        { field: 'numbers.tier', storeInto: 'tier' },
      ],
      conditions: [{ field: 'numbers.number', operator: 'is', value: 'called' }],
      logic: 'and',
      orderBy: [],
      offset: '',
      joinType: 'JOIN',
      fetch: 'first',
      storeIntoRecordsList: '',
      caching: 0,
    });
    const r = await run({ called: '3225551001' });
    expect(r.outcome).toMatchObject({ status: 200, reason: 'found' });
    expect(r.cd.vars).toMatchObject({ owner: 'bob', tier: 'silver' });
    expect(r.trace![1]).toMatchObject({ exit: 'ifRecordFound', set: { owner: 'bob', tier: 'silver' } });
    expect(directory.queries).toEqual([
      {
        tables: ['routing.numbers'],
        fields: ['numbers.owner', 'numbers.tier'],
        joins: [],
        joinType: 'JOIN',
        conditions: [{ field: 'numbers.number', operator: 'is', value: '3225551001' }],
        logic: 'and',
        orderBy: [],
        offset: 0,
        limit: 1,
      },
    ]);
  });

  test('no row → ifnoRecordFound, nothing written', async () => {
    const { run } = setup({
      fields: [{ field: 'numbers.owner', storeInto: 'owner' }],
      conditions: [{ field: 'numbers.number', operator: 'is', value: 'called' }],
    });
    const r = await run({ called: '999' });
    expect(r.outcome).toMatchObject({ status: 404 });
    expect(r.trace![1].exit).toBe('ifnoRecordFound');
    expect('owner' in r.cd.vars).toBe(false);
  });

  test('a literal condition value; a missing referenced variable matches no row and sends no query', async () => {
    const { directory, run } = setup({
      fields: [{ field: 'numbers.number', storeInto: 'num' }],
      conditions: [{ field: 'numbers.owner', operator: 'is', value: 'alice' }],
    });
    expect((await run({})).cd.vars.num).toBe('3225551000');
    expect(directory.queries[0].conditions[0].value).toBe('alice');
    const s2 = setup({
      fields: [{ field: 'numbers.number', storeInto: 'num' }],
      conditions: [{ field: 'numbers.owner', operator: 'is', value: 'authUsername' }],
    });
    expect((await s2.run({})).outcome.status).toBe(404);
    expect(s2.directory.queries).toHaveLength(0);
    // with `or`, the null condition drops out and the others still query
    const s3 = setup({
      fields: [{ field: 'numbers.number', storeInto: 'num' }],
      logic: 'or',
      conditions: [
        { field: 'numbers.owner', operator: 'is', value: 'authUsername' },
        { field: 'numbers.owner', operator: 'is', value: 'alice' },
      ],
    });
    expect((await s3.run({})).cd.vars.num).toBe('3225551000');
    expect(s3.directory.queries[0].conditions).toEqual([{ field: 'numbers.owner', operator: 'is', value: 'alice' }]);
  });

  test('fetch all + storeIntoRecordsList: every row as a record keyed by storeInto, first row into the variables', async () => {
    const { directory, run } = setup({
      fields: [
        { field: 'numbers.number', storeInto: 'num' },
        { field: 'numbers.tier', storeInto: '' },
      ],
      conditions: [{ field: 'numbers.owner', operator: 'is', value: 'calling' }],
      fetch: 'all',
      storeIntoRecordsList: 'numbers',
      orderBy: [{ field: 'numbers.number', direction: 'DESC' }],
      offset: '0',
    });
    const r = await run({ calling: 'alice' });
    expect(r.cd.vars.numbers).toEqual([
      { num: '3225551000', 'numbers.tier': 'gold' },
      { num: '3225551002', 'numbers.tier': 'bronze' },
    ]);
    expect(r.cd.vars.num).toBe('3225551000');
    expect(directory.queries[0]).toMatchObject({ limit: undefined, offset: 0, orderBy: [{ field: 'numbers.number', direction: 'desc' }] });
  });

  test('an `in` condition sends a list (comma text or a list-of-records variable)', async () => {
    const { directory, run } = setup({
      fields: [{ field: 'numbers.owner', storeInto: 'owner' }],
      conditions: [{ field: 'numbers.tier', operator: 'in', value: 'silver, platinum' }],
    });
    expect((await run({})).cd.vars.owner).toBe('bob');
    expect(directory.queries[0].conditions[0].value).toEqual(['silver', 'platinum']);
    const json = setup({
      fields: [{ field: 'numbers.owner', storeInto: 'owner' }],
      conditions: [{ field: 'numbers.tier', operator: 'in', value: '["platinum", "bronze"]' }],
    });
    expect((await json.run({})).cd.vars.owner).toBe('alice');
    expect(json.directory.queries[0].conditions[0].value).toEqual(['platinum', 'bronze']);
    const list = setup({ fields: [{ field: 'numbers.owner', storeInto: 'owner' }], conditions: [{ field: 'numbers.tier', operator: 'in', value: ['gold'] }] });
    expect((await list.run({})).cd.vars.owner).toBe('alice');
    expect(list.directory.queries[0].conditions[0].value).toEqual(['gold']);
  });

  test('an operator the in-memory directory does not support is an error 500 naming the node', async () => {
    const { run } = setup({
      fields: [{ field: 'numbers.owner', storeInto: 'owner' }],
      conditions: [{ field: 'numbers.number', operator: 'isLongestPrefixMatchOf', value: 'called' }],
    });
    const r = await run({ called: '32255510009' });
    expect(r.outcome).toEqual({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (operator isLongestPrefixMatchOf is not supported by the in-memory directory)',
      where: 'logic 1 "test" › node 1 "n1"',
    });
  });

  describe('caching', () => {
    const values = {
      fields: [{ field: 'numbers.owner', storeInto: 'owner' }],
      conditions: [{ field: 'numbers.number', operator: 'is', value: 'called' }],
      caching: 60,
    };

    test('a second run within `caching` seconds does not hit the directory; after expiry it does', async () => {
      const { directory, ctx, run } = setup(values);
      expect((await run({ called: '3225551000' })).cd.vars.owner).toBe('alice');
      expect(directory.queries).toHaveLength(1);
      ctx.clockMs.value += 59_000;
      const cached = await run({ called: '3225551000' });
      expect(cached.cd.vars.owner).toBe('alice');
      expect(cached.trace![1]).toMatchObject({ exit: 'ifRecordFound', set: { owner: 'alice' } });
      expect(directory.queries).toHaveLength(1);
      ctx.clockMs.value += 2_000; // 61 s after the first query
      expect((await run({ called: '3225551000' })).cd.vars.owner).toBe('alice');
      expect(directory.queries).toHaveLength(2);
    });

    test('the cache is keyed by the resolved condition values; "no record" is cached too', async () => {
      const { directory, run } = setup(values);
      await run({ called: '3225551000' });
      expect((await run({ called: '3225551001' })).cd.vars.owner).toBe('bob');
      expect(directory.queries).toHaveLength(2);
      expect((await run({ called: '999' })).outcome.status).toBe(404);
      expect((await run({ called: '999' })).outcome.status).toBe(404);
      expect(directory.queries).toHaveLength(3);
    });

    test('caching 0 (or "") queries every time', async () => {
      for (const caching of [0, '']) {
        const { directory, run } = setup({ ...values, caching });
        await run({ called: '3225551000' });
        await run({ called: '3225551000' });
        expect(directory.queries).toHaveLength(2);
      }
    });

    test("a directory change (ctx.directoryChanges) empties the node's cache", async () => {
      const { directory, ctx, run } = setup(values);
      const changes = new DirectoryChanges();
      ctx.directoryChanges = changes;
      await run({ called: '3225551000' });
      await run({ called: '3225551000' });
      expect(directory.queries).toHaveLength(1);
      changes.changed();
      expect((await run({ called: '3225551000' })).cd.vars.owner).toBe('alice');
      expect(directory.queries).toHaveLength(2);
      await run({ called: '3225551000' });
      expect(directory.queries).toHaveLength(2);
    });

    test('caching given as a string of seconds', async () => {
      const { directory, ctx, run } = setup({ ...values, caching: '1.5' });
      await run({ called: '3225551000' });
      ctx.clockMs.value += 1_400;
      await run({ called: '3225551000' });
      expect(directory.queries).toHaveLength(1);
      ctx.clockMs.value += 200;
      await run({ called: '3225551000' });
      expect(directory.queries).toHaveLength(2);
    });
  });
});
