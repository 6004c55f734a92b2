/**
 * An ENUM redirect server, end to end: `sipflow serve` with SIP worker threads (the logic runs in
 * a worker, whose run context gets its resolver from `nodes.enum.servers`), dnsmasq as the DNS
 * server, a UDP UA sending INVITEs. A number with a NAPTR record is answered 302 to the URI the
 * record gives; one without, 404.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header } from '../../../sip/message';
import { startDnsmasq, type DnsServer } from '../../support/dnsmasq';
import { startServe, type ServeProcess } from '../../support/serve';
import { docOf, reply, start } from '../../unit/engine/helpers';
import { UdpUa, sipRequest } from '../sip/ua';

let dnsmasq: DnsServer;
let server: ServeProcess;
let ua: UdpUa;
const flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-enum-flows-'));

beforeAll(async () => {
  dnsmasq = await startDnsmasq([
    {
      name: '0.0.0.1.5.5.5.2.2.3.e164.arpa',
      record: { order: 10, preference: 10, flags: 'u', service: 'E2U+sip', regexp: '!^\\+(.*)$!sip:\\1@gw.example.com!', replacement: '' },
    },
  ]);
  const doc = docOf([
    start(1),
    [1, 'query.enum', { number: 'called', storeInto: 'target', ifFound: 2, ifNotFound: 3, ifTimeout: 4 }],
    [2, 'output.redirect', { contacts: ['target'] }],
    reply(3, 404, 'No ENUM Record'),
    reply(4, 503, 'ENUM Unavailable'),
  ]);
  (doc['1'] as { name: string }).name = 'enum';
  writeFileSync(path.join(flows, 'enum.slid'), JSON.stringify(doc));
  server = await startServe({ flows, workers: 2, config: { defaultLogic: 'enum', nodes: { enum: { servers: [dnsmasq.address] } } } });
  ua = await UdpUa.open(server.sipPort);
}, 90_000);

afterAll(async () => {
  await ua?.close();
  const stopped = await server?.stop();
  await dnsmasq?.stop();
  expect(stopped?.code).toBe(0); // the workers closed their resolvers and stopped cleanly
  rmSync(flows, { recursive: true, force: true });
});

const invite = (number: string) => sipRequest({ method: 'INVITE', uri: `sip:${number}@127.0.0.1:${server.sipPort}`, ua, to: `<sip:${number}@127.0.0.1>` });

test('a number with a NAPTR record → 302 to its URI', async () => {
  ua.send(invite('+3225551000'));
  const r = await ua.response(302, 10_000);
  expect(header(r, 'contact')).toContain('sip:3225551000@gw.example.com');
});

test('a number without → 404', async () => {
  ua.send(invite('+3225559999'));
  expect((await ua.response(404, 10_000)).reason).toBe('No ENUM Record');
});
