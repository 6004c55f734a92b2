/**
 * SQL location store on Kamailio's usrloc tables, against the real PostgreSQL (globalSetup's
 * embedded server or the external PG_URL) and against PGlite (the embedded default).
 */
import type { Knex } from 'knex';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import { makeBinding, openTarget, storeContract, type Target } from './fixtures';

describe.each<Target>(['postgres', 'pglite'])('SQL location store on %s', (target) => {
  let knex: Knex;
  let done: () => Promise<void>;
  beforeAll(async () => {
    ({ knex, done } = await openTarget(target, 'loc', 2000));
    await ensureSchema(knex);
  });
  afterAll(() => done());

  describe('contract', () => {
    storeContract(async () => {
      await knex('location').truncate();
      return createSqlLocationStore(knex);
    });
  });

  test('ensureSchema is idempotent and concurrency-safe; version rows location=9, location_attrs=1', async () => {
    await Promise.all([ensureSchema(knex), ensureSchema(knex), ensureSchema(knex)]);
    const rows = await knex('version').select('table_name', 'table_version').orderBy('table_name');
    expect(rows).toEqual([
      { table_name: 'location', table_version: 9 },
      { table_name: 'location_attrs', table_version: 1 },
    ]);
  });

  test("tables have Kamailio's usrloc v9 columns and types", async () => {
    const cols = await knex('information_schema.columns')
      .select('column_name', 'data_type', 'character_maximum_length', 'is_nullable')
      .where({ table_name: 'location' })
      .andWhereRaw('table_schema = current_schema()')
      .orderBy('ordinal_position');
    const described = cols.map(
      (c) => `${c.column_name} ${c.data_type}${c.character_maximum_length ? `(${c.character_maximum_length})` : ''}${c.is_nullable === 'YES' ? ' null' : ''}`,
    );
    expect(described).toEqual([
      'id integer',
      'ruid character varying(64)',
      'username character varying(64)',
      'domain character varying(64) null',
      'contact character varying(512)',
      'received character varying(128) null',
      'path character varying(512) null',
      'expires timestamp without time zone',
      'q real',
      'callid character varying(255)',
      'cseq integer',
      'last_modified timestamp without time zone',
      'flags integer',
      'cflags integer',
      'user_agent character varying(255)',
      'socket character varying(64) null',
      'methods integer null',
      'instance character varying(255) null',
      'reg_id integer',
      'server_id integer',
      'connection_id integer',
      'keepalive integer',
      'partition integer',
    ]);
    const attrs = await knex('information_schema.columns')
      .pluck('column_name')
      .where({ table_name: 'location_attrs' })
      .andWhereRaw('table_schema = current_schema()')
      .orderBy('ordinal_position');
    expect(attrs).toEqual(['id', 'ruid', 'username', 'domain', 'aname', 'atype', 'avalue', 'last_modified']);
  });

  test("indexes as Kamailio's DDL; unique ruid is enforced", async () => {
    const { rows } = await knex.raw<{ rows: { indexname: string; indexdef: string }[] }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'location' AND schemaname = current_schema() ORDER BY indexname`,
    );
    const defs = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef.replace(/ ON \S+\.?location /, ' ON location ')]));
    expect(defs.location_ruid_idx).toMatch(/UNIQUE INDEX .* \(ruid\)/);
    expect(defs.location_account_contact_idx).toMatch(/\(username, domain, contact\)/);
    expect(defs.location_expires_idx).toMatch(/\(expires\)/);
    expect(defs.location_connection_idx).toMatch(/\(server_id, connection_id\)/);
    await knex('location').truncate();
    const b = makeBinding();
    await createSqlLocationStore(knex).upsert(b);
    const dup = { ...b, contact: 'sip:dup@x', expires: '2030-01-01 00:00:00', last_modified: '2024-01-01 00:00:00' };
    await expect(knex('location').insert(dup)).rejects.toMatchObject({ code: '23505' });
  });

  test("a row Kamailio wrote (the note's sample, Kamailio-style SQL) reads back as a Binding", async () => {
    await knex('location').truncate();
    await knex.raw(`INSERT INTO location (ruid, username, contact, received, path, expires, q, callid, cseq,
      last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive, partition)
      VALUES ('uloc-649e7b98-3595-2', 'john', 'sip:john-kbg8bf86fdlhf@172.18.2.111:5060;transport=tcp', NULL, NULL,
      '2024-02-22 08:54:06', -1, '13579672010112023113959@117.114.6.30', 119577, '2024-02-22 08:49:06', 0, 0, 'n/a',
      'tcp:172.16.3.82:5061', 7935, NULL, 0, 0, 776, 0, 0)`);
    const [b] = await createSqlLocationStore(knex).find('john', null);
    // timestamp without time zone is local time, as Kamailio writes it.
    expect(b).toEqual({
      ruid: 'uloc-649e7b98-3595-2',
      username: 'john',
      domain: null,
      contact: 'sip:john-kbg8bf86fdlhf@172.18.2.111:5060;transport=tcp',
      received: null,
      path: null,
      expires: new Date(2024, 1, 22, 8, 54, 6),
      q: -1,
      callid: '13579672010112023113959@117.114.6.30',
      cseq: 119577,
      last_modified: new Date(2024, 1, 22, 8, 49, 6),
      flags: 0,
      cflags: 0,
      user_agent: 'n/a',
      socket: 'tcp:172.16.3.82:5061',
      methods: 7935,
      instance: null,
      reg_id: 0,
      server_id: 0,
      connection_id: 776,
      keepalive: 0,
      partition: 0,
    });
  });
});
