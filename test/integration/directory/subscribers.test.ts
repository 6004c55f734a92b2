/**
 * Subscriber repository: single additions, listings, CSV parsing and the all-or-nothing batch import.
 */
import type { Knex } from 'knex';
import { openDirectory, migrate, seed, createSubscribers, parseCsv, CsvError, DirectoryError, Subscribers } from '../../../services/directory';

let knex: Knex;
let subs: Subscribers;

beforeAll(async () => {
  knex = openDirectory('memory://');
  await migrate(knex);
  await seed(knex);
  subs = createSubscribers(knex);
});
afterAll(async () => {
  await knex.destroy();
});

const count = async (table: string) => Number((await knex(table).count({ n: '*' }))[0].n);

describe('customers and numbers', () => {
  it('adds and lists customers, with search and paging', async () => {
    const c = await subs.addCustomer({ name: ' Acme ', username: 'acme', password: ' pw ', aor: 'acme@example.com' });
    expect(c).toEqual({ id: expect.any(Number), name: 'Acme', username: 'acme', password: ' pw ', aor: 'acme@example.com' });
    await subs.addCustomer({ name: 'Beta_Corp', username: '', password: null });
    const all = await subs.listCustomers({ limit: 10 });
    expect(all.total).toBe(3);
    expect(all.rows.map((r) => r.name)).toEqual(['Netaxis NL', 'Acme', 'Beta_Corp']);
    expect(all.rows[2]).toMatchObject({ username: null, password: null, aor: null });
    expect((await subs.listCustomers({ limit: 1, offset: 1 })).rows.map((r) => r.name)).toEqual(['Acme']);
    const found = await subs.listCustomers({ search: 'NETAXIS' });
    expect([found.total, found.rows.map((r) => r.name)]).toEqual([1, ['Netaxis NL']]);
    expect((await subs.listCustomers({ search: '_' })).rows.map((r) => r.name)).toEqual(['Beta_Corp']);
  });

  it('rejects invalid or duplicate customers as invalid', async () => {
    await expect(subs.addCustomer({ name: '' })).rejects.toMatchObject({ kind: 'invalid', message: expect.stringMatching(/name must not be empty/) });
    const dup = await subs.addCustomer({ name: 'Acme' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(DirectoryError);
    expect((dup as DirectoryError).message).toMatch(/already exists/);
  });

  it('adds numbers for a customer named or by id, and lists them with the customer name', async () => {
    const n = await subs.addNumber({ number: '0031', is_range: 'true', customer: 'Acme' });
    expect(n).toEqual({ id: expect.any(Number), number: '0031', is_range: true, customer_id: 2, customer_name: 'Acme' });
    await subs.addNumber({ number: '0032', is_range: false, customer: 1 });
    await subs.addNumber({ number: '0033', customer: '3' }); // no customer named "3": id 3
    await expect(subs.addNumber({ number: '0034', customer: 'Nobody' })).rejects.toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/unknown customer "Nobody"/),
    });
    await expect(subs.addNumber({ number: '0031', customer: 'Acme' })).rejects.toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/already exists/),
    });
    const list = await subs.listNumbers({});
    expect(list.total).toBe(4);
    expect(list.rows.map((r) => [r.number, r.is_range, r.customer_name])).toEqual([
      ['000112233', false, 'Netaxis NL'],
      ['0031', true, 'Acme'],
      ['0032', false, 'Netaxis NL'],
      ['0033', false, 'Beta_Corp'],
    ]);
    expect((await subs.listNumbers({ customer: 'Netaxis NL' })).rows.map((r) => r.number)).toEqual(['000112233', '0032']);
    expect((await subs.listNumbers({ customer: 2 })).rows.map((r) => r.number)).toEqual(['0031']);
    expect((await subs.listNumbers({ search: '003' })).total).toBe(3);
  });
});

describe('parseCsv', () => {
  it('reads rows by header, keeping cell text as is', () => {
    expect(parseCsv('name,username,password,aor\r\n"Gamma, Inc",gamma," p,w ",gamma@x\n\n', 'customers')).toEqual([
      { name: 'Gamma, Inc', username: 'gamma', password: ' p,w ', aor: 'gamma@x' },
    ]);
    expect(parseCsv('\uFEFFNumber,Customer\n0044,Gamma\n', 'numbers')).toEqual([{ number: '0044', customer: 'Gamma' }]);
  });

  it('reports malformed CSV and bad headers with the line number', () => {
    const err = (text: string, file: 'customers' | 'numbers') => {
      try {
        parseCsv(text, file);
      } catch (e) {
        return e as CsvError;
      }
      throw new Error('no error');
    };
    const e1 = err('number,is_range,customer\n1,false,A\n2,true\n', 'numbers');
    expect(e1).toBeInstanceOf(CsvError);
    expect([e1.line, e1.message]).toEqual([3, expect.stringMatching(/numbers CSV, line 3:/)]);
    expect(err('name\nok\n"unclosed\n', 'customers').line).toBe(3);
    const e3 = err('name,email\nx,y\n', 'customers');
    expect([e3.line, e3.message]).toEqual([1, expect.stringMatching(/unknown column\(s\) email/)]);
    expect(err('number,is_range\n1,true\n', 'numbers').message).toMatch(/missing column\(s\) customer/);
    expect(err('', 'numbers').message).toMatch(/missing header row/);
  });
});

describe('importBatch', () => {
  it('reports every bad row (validation, duplicates in batch and in DB, unknown customers) and writes nothing', async () => {
    const before = [await count('registration.customers'), await count('registration.customer_numbers')];
    const result = await subs.importBatch({
      customers: [
        { name: 'Delta', username: 'delta', password: 'secret-delta', aor: 'delta@x' }, // 1 ok
        { name: '', username: 'x' }, // 2 empty name
        { name: 'Delta' }, // 3 duplicate within batch
        { name: 'Acme' }, // 4 already in DB
        { name: 'Eps', email: 'e@x' }, // 5 unknown column
      ],
      numbers: [
        { number: '0050', is_range: 'false', customer: 'Delta' }, // 1 ok (customer of this batch)
        { number: '0051', is_range: 'maybe', customer: 'Delta' }, // 2 bad boolean
        { number: '0050', is_range: '', customer: 'Acme' }, // 3 duplicate within batch
        { number: '0031', customer: 'Acme' }, // 4 already in DB
        { number: '0052', customer: 'Nobody' }, // 5 unknown customer
        { number: '00 53', customer: 1 }, // 6 space in number
        { number: '0054' }, // 7 no customer
      ],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => [e.file, e.row, e.column])).toEqual([
      ['customers', 2, 'name'],
      ['customers', 3, 'name'],
      ['customers', 4, 'name'],
      ['customers', 5, 'email'],
      ['numbers', 2, 'is_range'],
      ['numbers', 3, 'number'],
      ['numbers', 4, 'number'],
      ['numbers', 5, 'customer'],
      ['numbers', 6, 'number'],
      ['numbers', 7, 'customer'],
    ]);
    expect(result.errors[1].message).toBe('duplicate name "Delta" (already in row 1)');
    expect(result.errors[2].message).toMatch(/"Acme" already exists/);
    expect(result.errors[7].message).toMatch(/unknown customer "Nobody"/);
    expect(JSON.stringify(result.errors)).not.toContain('secret-delta');
    expect([await count('registration.customers'), await count('registration.customer_numbers')]).toEqual(before);
  });

  it('writes a valid batch in one go, numbers referring to new and existing customers', async () => {
    const customers = parseCsv('name,username,password,aor\nDelta,delta,pw-d,delta@x\nEpsilon,eps,,\n', 'customers');
    const numbers = parseCsv('number,is_range,customer\n0050,false,Delta\n00501,true,Epsilon\n0060,,Acme\n0061,no,1\n', 'numbers');
    expect(await subs.importBatch({ customers, numbers })).toEqual({ ok: true, customers: 2, numbers: 4 });
    const rows = await knex('registration.customer_numbers as n')
      .join('registration.customers as c', 'c.id', 'n.customer_id')
      .whereIn('n.number', ['0050', '00501', '0060', '0061'])
      .orderBy('n.number')
      .select('n.number', 'n.is_range', 'c.name');
    expect(rows).toEqual([
      { number: '0050', is_range: false, name: 'Delta' },
      { number: '00501', is_range: true, name: 'Epsilon' },
      { number: '0060', is_range: false, name: 'Acme' },
      { number: '0061', is_range: false, name: 'Netaxis NL' },
    ]);
    expect(await knex('registration.customers').where({ name: 'Epsilon' }).first('password', 'aor')).toEqual({ password: null, aor: null });
  });

  it('is all-or-nothing when the database itself refuses a row', async () => {
    const before = await count('registration.customers');
    // Passes validation, then the FK/unique check is done by PostgreSQL itself: a NUL byte is refused in text.
    const result = await subs.importBatch({ customers: [{ name: 'Zeta' }, { name: 'Eta\u0000' }], numbers: [] }).catch((e: unknown) => e);
    expect(result).toBeInstanceOf(DirectoryError);
    expect(result).toMatchObject({ kind: 'invalid' });
    expect(await count('registration.customers')).toBe(before);
  });
});
