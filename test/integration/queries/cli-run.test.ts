/**
 * `sipflow run --config`: the query nodes get their DNS and LDAP servers from the configuration's
 * `nodes.*` section (server/query-ports.ts through server/runtime.ts), against dnsmasq and slapd
 * started here; the bind password shows nowhere in what the command prints. (A refused bind and
 * its status without the password: test/integration/queries/ldap.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { startDnsmasq, type DnsServer } from '../../support/dnsmasq';
import { ROOT_DN, ROOT_PASSWORD, startSlapd, SUFFIX, type LdapServer } from '../../support/slapd';
import { docOf, reply, start } from '../../unit/engine/helpers';
import { runCli as sipflow } from '../../support/cli';

let dnsmasq: DnsServer;
let slapd: LdapServer;
const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-queries-cli-'));

beforeAll(async () => {
  [dnsmasq, slapd] = await Promise.all([
    startDnsmasq([
      {
        name: '0.0.0.1.5.5.5.2.2.3.e164.arpa',
        record: { order: 10, preference: 10, flags: 'u', service: 'E2U+sip', regexp: '!^\\+(.*)$!sip:\\1@gw.example.com!', replacement: '' },
      },
    ]),
    startSlapd(`dn: uid=alice,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Martin\nsn: Martin\ntelephoneNumber: +3225551000\n\n`),
  ]);
});
afterAll(async () => {
  await Promise.all([dnsmasq?.stop(), slapd?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

// one run: opening the embedded directory of `sipflow run` takes seconds on a loaded machine
test('sipflow run --config: ENUM and LDAP servers from nodes.*, the bind password printed nowhere', async () => {
  const flow = path.join(dir, 'q.slid');
  writeFileSync(
    flow,
    JSON.stringify(
      docOf([
        start(1),
        [1, 'query.enum', { number: 'called', storeInto: 'target', ifFound: 2, ifNotFound: 9, ifTimeout: 9 }],
        [
          2,
          'query.ldap',
          { base: SUFFIX, filter: '(telephoneNumber=[called])', attributes: [{ attribute: 'cn', variable: 'name' }], ifFound: 3, ifNotFound: 9, ifFailure: 9 },
        ],
        reply(3, 200, 'found'),
        reply(9, 500, 'failed'),
      ]),
    ),
  );
  const cd = path.join(dir, 'cd.json');
  writeFileSync(cd, JSON.stringify({ called: '+3225551000', requestMethod: 'INVITE' }));
  const config = path.join(dir, 'sipflow.yaml');
  writeFileSync(
    config,
    [
      'nodes:',
      '  enum:',
      `    servers: ["${dnsmasq.address}"]`,
      '  ldap:',
      `    url: ${slapd.url}`,
      `    bindDn: "${ROOT_DN}"`,
      `    bindPassword: "${ROOT_PASSWORD}"`,
      '',
    ].join('\n'),
  );
  const common = ['run', flow, '--logic', '1', '--cd', cd, '--trace', '--data-dir', path.join(dir, 'data'), '--directory-url', 'memory://'];
  const r = await sipflow(...common, '--config', config);
  expect(r.code).toBe(0);
  const result = JSON.parse(r.out);
  expect(result.outcome).toMatchObject({ status: 200 });
  expect(result.cd).toMatchObject({ target: 'sip:3225551000@gw.example.com', name: 'Alice Martin', enumStatus: 'found', ldapStatus: 'found' });
  expect(r.out + r.err).not.toContain(ROOT_PASSWORD);
}, 120_000);
