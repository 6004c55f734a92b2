/**
 * query.ldap against a real directory: slapd started by this suite on loopback with a few
 * entries, reached through the production client (services/ldap/client.ts, ldapts).
 */
import net from 'node:net';
import type { RunContext } from '../../../engine/types';
import { createLdapClient, type LdapClient } from '../../../services/ldap/client';
import { freeTcpPort, ROOT_DN, ROOT_PASSWORD, startSlapd, SUFFIX, type LdapServer } from '../../support/slapd';
import { testContext } from '../../support/context';
import { reply, runNodes, start, type NodeSpec } from '../../unit/engine/helpers';

const PEOPLE = `ou=people,${SUFFIX}`;
const LDIF = `dn: ${PEOPLE}
objectClass: organizationalUnit
ou: people

dn: uid=alice,${PEOPLE}
objectClass: inetOrgPerson
uid: alice
cn: Alice Martin
sn: Martin
telephoneNumber: 3225551000
mail: alice@example.com
mail: alice.martin@example.com
displayName: Alice (sales)
description: internal note

dn: uid=bob,${PEOPLE}
objectClass: inetOrgPerson
uid: bob
cn: Bob Peeters
sn: Peeters
telephoneNumber: 3225551001

`;

const ldapLogic = (values: Record<string, unknown>): NodeSpec[] => [
  start(1),
  [
    1,
    'query.ldap',
    {
      base: PEOPLE,
      filter: '(telephoneNumber=[called])',
      attributes: [
        { attribute: 'cn', variable: 'name' },
        { attribute: 'mail', variable: 'email' },
      ],
      ifFound: 2,
      ifNotFound: 3,
      ifFailure: 4,
      ...values,
    },
  ],
  reply(2, 200, 'found'),
  reply(3, 404, 'not found'),
  reply(4, 503, 'failure'),
];

let slapd: LdapServer;
const clients: LdapClient[] = [];
function ctxWith(o: { url: string; bindDn?: string; bindPassword?: string }): RunContext {
  const ldap = createLdapClient(o);
  clients.push(ldap);
  return { ...testContext(), ldap };
}

beforeAll(async () => {
  slapd = await startSlapd(LDIF);
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await slapd?.stop();
});

describe('query.ldap against slapd, bound as the root DN', () => {
  let ctx: RunContext;
  beforeAll(() => {
    ctx = ctxWith({ url: slapd.url, bindDn: ROOT_DN, bindPassword: ROOT_PASSWORD });
  });
  const run = (values: Record<string, unknown>, input: Record<string, unknown>) => runNodes(ldapLogic(values), input, ctx, { trace: true });

  test('an entry matches: its attributes into variables, ifFound, the trace shows them', async () => {
    const r = await run({}, { called: '3225551001' });
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(r.trace![1]).toMatchObject({ type: 'query.ldap', exit: 'ifFound', set: { name: 'Bob Peeters', email: null, ldapStatus: 'found' } });
  });

  test('an attribute with several values: the first, or all joined', async () => {
    const first = await run({}, { called: '3225551000' });
    expect(first.cd.vars.email).toBe('alice@example.com');
    const all = await run(
      {
        attributes: [
          { attribute: 'mail', variable: 'email', multiple: 'join' },
          { attribute: 'dn', variable: 'entryDn' },
        ],
        separator: ';',
      },
      { called: '3225551000' },
    );
    expect(all.cd.vars).toMatchObject({ email: 'alice@example.com;alice.martin@example.com', entryDn: `uid=alice,${PEOPLE}` });
  });

  test('no entry → ifNotFound, nothing stored', async () => {
    const r = await run({}, { called: '3225559999' });
    expect(r.outcome).toMatchObject({ status: 404 });
    expect(r.cd.vars.name).toBeUndefined();
    expect(r.cd.vars.ldapStatus).toBe('notFound');
  });

  test('every entry into a list of records (sizeLimit bounds them)', async () => {
    const values = { filter: '(objectClass=inetOrgPerson)', attributes: [{ attribute: 'uid', variable: 'user' }], storeIntoRecordsList: 'people' };
    const r = await run({ ...values, sizeLimit: 10 }, {});
    expect(r.cd.vars.people).toEqual(expect.arrayContaining([{ user: 'alice' }, { user: 'bob' }]));
    expect((await run({ ...values, sizeLimit: 1 }, {})).cd.vars.people).toHaveLength(1);
  });

  test('LDAP injection: a caller-controlled value cannot widen the filter', async () => {
    const byUser = { filter: '(&(objectClass=inetOrgPerson)(uid=[fromUsername]))', attributes: [{ attribute: 'uid', variable: 'user' }] };
    // control: the same filter finds alice by her name, and a literal wildcard in the template does match
    expect((await run(byUser, { fromUsername: 'alice' })).cd.vars.user).toBe('alice');
    expect((await run({ ...byUser, filter: '(&(objectClass=inetOrgPerson)(uid=*))' }, {})).outcome).toMatchObject({ status: 200 });
    for (const fromUsername of ['*', '*)(uid=*', 'alice)(|(uid=*', '*)(|(objectClass=*)', 'al*', 'alice\\2a', 'x\u0000']) {
      const r = await run(byUser, { fromUsername });
      expect(r.outcome).toMatchObject({ status: 404 });
    }
  });

  test('DN injection: a placeholder of the base is one escaped value, it cannot move the base', async () => {
    const values = { base: `uid=[fromUsername],${PEOPLE}`, scope: 'base', filter: '(objectClass=*)', attributes: [{ attribute: 'uid', variable: 'user' }] };
    expect((await run(values, { fromUsername: 'alice' })).cd.vars.user).toBe('alice');
    // unescaped, `bob,ou=people` would make the base uid=bob,ou=people,ou=people… (no such entry either), and `x,uid=bob` a child lookup
    for (const fromUsername of ['bob,ou=people,dc=example,dc=com#', 'x+uid=bob', '*']) {
      expect((await run(values, { fromUsername })).outcome).toMatchObject({ status: 404 });
    }
  });
});

describe('query.ldap across a server restart', () => {
  test('the connection the restart closed is reopened and bound again by the next search', async () => {
    const ctx = ctxWith({ url: slapd.url, bindDn: ROOT_DN, bindPassword: ROOT_PASSWORD });
    // description is readable by bound users only: reading it after the restart shows the bind was made again
    const boundOnly = { filter: '(uid=alice)', attributes: [{ attribute: 'description', variable: 'note' }] };
    expect((await runNodes(ldapLogic(boundOnly), {}, ctx)).cd.vars.note).toBe('internal note');
    await slapd.restart();
    const r = await runNodes(ldapLogic(boundOnly), {}, ctx);
    expect(r.cd.vars).toMatchObject({ note: 'internal note', ldapStatus: 'found' });
  });
});

describe('query.ldap failures', () => {
  test('a server refusing the bind (wrong password) → ifFailure, the status says so without the password', async () => {
    const wrong = 'not-the-password-123';
    const ctx = ctxWith({ url: slapd.url, bindDn: ROOT_DN, bindPassword: wrong });
    const r = await runNodes(ldapLogic({}), { called: '3225551000' }, ctx, { trace: true });
    expect(r.outcome).toMatchObject({ status: 503 });
    const status = String(r.cd.vars.ldapStatus);
    expect(status).toMatch(/^failure: bind as cn=admin,dc=example,dc=com refused by ldap:\/\/127\.0\.0\.1:\d+: invalid credentials$/);
    expect(JSON.stringify(r)).not.toContain(wrong);
    // the next search tries the bind again (not cached), and fails the same way
    expect((await runNodes(ldapLogic({}), { called: '3225551000' }, ctx)).outcome).toMatchObject({ status: 503 });
  });

  test('anonymous reads work when no bind DN is configured', async () => {
    const ctx = ctxWith({ url: slapd.url });
    const r = await runNodes(
      ldapLogic({
        attributes: [
          { attribute: 'cn', variable: 'name' },
          { attribute: 'description', variable: 'note' },
        ],
      }),
      { called: '3225551000' },
      ctx,
    );
    // what anonymous users may not read is simply absent
    expect(r.cd.vars).toMatchObject({ name: 'Alice Martin', note: null });
  });

  test('a server that is down → ifFailure naming the server', async () => {
    const ctx = ctxWith({ url: `ldap://127.0.0.1:${await freeTcpPort()}`, bindDn: ROOT_DN, bindPassword: ROOT_PASSWORD });
    const r = await runNodes(ldapLogic({}), { called: '3225551000' }, ctx);
    expect(r.outcome).toMatchObject({ status: 503 });
    expect(String(r.cd.vars.ldapStatus)).toMatch(/^failure: .*ECONNREFUSED/);
    expect(String(r.cd.vars.ldapStatus)).not.toContain(ROOT_PASSWORD);
  });

  test('a server that accepts the connection and never answers → ifFailure after timeoutMs', async () => {
    const sockets: net.Socket[] = [];
    const hung = net.createServer((s) => void sockets.push(s.on('data', () => undefined)));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    try {
      const ctx = ctxWith({ url: `ldap://127.0.0.1:${(hung.address() as net.AddressInfo).port}`, bindDn: ROOT_DN, bindPassword: ROOT_PASSWORD });
      const r = await runNodes(ldapLogic({ timeoutMs: 300 }), { called: '3225551000' }, ctx);
      expect(r.outcome).toMatchObject({ status: 503 });
      expect(r.cd.vars.ldapStatus).toMatch(/^failure: no answer from ldap:\/\/127\.0\.0\.1:\d+ within 300 ms$/);
      expect(sockets.length).toBe(1);
    } finally {
      for (const c of clients.splice(0)) await c.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });

  test('no LDAP server configured → ifFailure', async () => {
    const r = await runNodes(ldapLogic({}), { called: '3225551000' }, testContext());
    expect(r.outcome).toMatchObject({ status: 503 });
    expect(r.cd.vars.ldapStatus).toMatch(/no LDAP server configured/);
  });
});
