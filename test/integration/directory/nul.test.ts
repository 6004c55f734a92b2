/**
 * A NUL character in a condition value (a variable a logic passes to the directory: a digest
 * username, a Request-URI user `%00`, a header value) never reaches PostgreSQL, which refuses it
 * ("invalid byte sequence for encoding UTF8: 0x00": an error, so a 500 from the logic). No stored
 * text can hold a NUL, so such a condition matches no row, whatever its operator (isNot and
 * doesNotContain included: fail closed); in an `in` list only that element matches nothing.
 * Against PGlite (prepared statements and the knex builder) and a real PostgreSQL server.
 */
import type { Knex } from 'knex';
import { scratchDatabase } from '../../setup/servers';
import { openDirectory, createDirectory, type Directory, type DirectoryQuery } from '../../../services/directory';
import { customersQuery, fillDirectory } from './fixture';

type Op = DirectoryQuery['conditions'][0]['operator'];
const NUL = 'franc\u0000esco';

const where = (field: string, operator: Op, value: unknown, logic: 'and' | 'or' = 'and'): DirectoryQuery =>
  customersQuery({ conditions: [{ field, operator, value: value as never }], logic });

function suite(name: string, open: () => Promise<{ knex: Knex; dir: Directory; done(): Promise<void> }>): void {
  describe(name, () => {
    let env: Awaited<ReturnType<typeof open>>;
    beforeAll(async () => {
      env = await open();
    });
    afterAll(async () => {
      await env?.done();
    });
    const names = async (q: DirectoryQuery) => (await env.dir.query(q)).map((r) => r['customers.name']);

    it('the seed flow lookup with a NUL in the username: no row, no error', async () => {
      const q = (username: string): DirectoryQuery => ({
        tables: ['registration.customers'],
        fields: ['customers.password', 'customers.name'],
        joins: [],
        joinType: 'JOIN',
        conditions: [{ field: 'customers.username', operator: 'is', value: username }],
        logic: 'and',
        orderBy: [],
        offset: 0,
        limit: 1,
      });
      expect(await env.dir.query(q(NUL))).toEqual([]);
      expect(await env.dir.query(q('\u0000'))).toEqual([]);
      // the same statement still answers normal values (the NUL variant is a statement of its own)
      expect(await env.dir.query(q('francesco'))).toEqual([{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }]);
      expect(await env.dir.query(q(NUL))).toEqual([]);
    });

    it.each<Op>(['is', 'isNot', 'contains', 'doesNotContain', 'startsWith', 'endsWith', 'matches', 'greaterThan', 'lessOrEqual'])(
      'text operator %s with a NUL matches no row',
      async (op) => {
        expect(await names(where('customers.username', op, NUL))).toEqual([]);
      },
    );

    it('number, boolean and prefix conditions with a NUL: no row, no "not a number" error', async () => {
      expect(await names(where('customers.id', 'is', '1\u0000'))).toEqual([]);
      const numbers = (op: Op, value: unknown) =>
        env.dir.query({
          tables: ['registration.customer_numbers'],
          fields: ['customer_numbers.number'],
          joins: [],
          joinType: 'JOIN',
          conditions: [{ field: 'customer_numbers.number', operator: op, value: value as never }],
          logic: 'and',
          orderBy: [],
          offset: 0,
          limit: 1,
        });
      expect(await numbers('isLongestPrefixMatchOf', '0031201\u000012345')).toEqual([]);
      expect(await numbers('isLongestPrefixMatchOf', '00312012345')).toEqual([{ 'customer_numbers.number': '00312012345' }]);
      const flag = await env.dir.query({
        tables: ['registration.customer_numbers'],
        fields: ['customer_numbers.number'],
        joins: [],
        joinType: 'JOIN',
        conditions: [{ field: 'customer_numbers.is_range', operator: 'is', value: 'true\u0000' }],
        logic: 'and',
        orderBy: [],
        offset: 0,
      });
      expect(flag).toEqual([]);
    });

    it('in a list, only the NUL element matches nothing', async () => {
      expect(await names(where('customers.username', 'in', [NUL, 'acme']))).toEqual(['Acme']);
      expect(await names(where('customers.username', 'in', [NUL]))).toEqual([]);
      expect(await names(where('customers.username', 'in', [NUL, null]))).toEqual(['Beta_Corp']);
    });

    it('with `or`, the other conditions still select', async () => {
      const q = customersQuery({
        conditions: [
          { field: 'customers.username', operator: 'is', value: NUL as never },
          { field: 'customers.username', operator: 'is', value: 'zulu' as never },
        ],
        logic: 'or',
      });
      expect(await names(q)).toEqual(['Zulu']);
    });
  });
}

suite('PGlite, prepared statements', async () => {
  const knex = openDirectory('memory://');
  await fillDirectory(knex);
  return { knex, dir: createDirectory(knex), done: () => knex.destroy() };
});

suite('PGlite, knex builder', async () => {
  const knex = openDirectory('memory://');
  await fillDirectory(knex);
  return { knex, dir: createDirectory(knex, { mode: 'builder' }), done: () => knex.destroy() };
});

suite('PostgreSQL', async () => {
  const db = await scratchDatabase(`sipflow_nul_${process.pid}`);
  const knex = openDirectory(db.url, { poolMax: 2 });
  await fillDirectory(knex);
  return {
    knex,
    dir: createDirectory(knex),
    done: async () => {
      await knex.destroy();
      await db.drop();
    },
  };
});
