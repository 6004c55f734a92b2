/** The directory fixture the query suites share: the seed's customer 1, customers 2…5, numbers with ranges. */
import type { Knex } from 'knex';
import { migrate, seed, type DirectoryQuery } from '../../../services/directory';

export async function fillDirectory(knex: Knex): Promise<void> {
  await migrate(knex);
  await seed(knex); // customer 1: Netaxis NL / francesco, number 000112233
  await knex('registration.customers').insert([
    { name: 'Acme', username: 'acme', password: 's3cret', aor: 'acme@example.com' }, // 2
    { name: 'Beta_Corp', username: null, password: null, aor: null }, // 3
    { name: '100% Telecom', username: 'pct', password: 'p', aor: 'pct@example.com' }, // 4
    { name: 'Zulu', username: 'zulu', password: 'z', aor: 'zulu@example.com' }, // 5, no numbers
  ]);
  await knex('registration.customer_numbers').insert([
    { number: '0031', is_range: true, customer_id: 2 },
    { number: '003120', is_range: true, customer_id: 3 },
    { number: '0031201', is_range: true, customer_id: 4 },
    { number: '0032999', is_range: false, customer_id: 2 },
    { number: '00312012345', is_range: false, customer_id: 5 },
  ]);
}

/** A query on registration.customers (names, by id) with the given overrides. */
export function customersQuery(over: Partial<DirectoryQuery>): DirectoryQuery {
  return {
    tables: ['registration.customers'],
    fields: ['customers.name'],
    joins: [],
    joinType: 'JOIN',
    conditions: [],
    logic: 'and',
    orderBy: [{ field: 'customers.id', direction: 'asc' }],
    offset: 0,
    ...over,
  };
}
