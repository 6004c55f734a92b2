/**
 * The secure transports' certificate files (sip/transports/certificates.ts) and their
 * configuration: errors name the configuration key and the file, never what the files hold; a
 * listener over TLS without certificate and key is a configuration error naming the keys; TLS
 * listeners default to port 5061; sips: and transport=tls next hops.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../../server/config';
import { hopOf } from '../../../sip/proxy';
import type { TlsSettings } from '../../../sip/transport';
import { Certificates } from '../../../sip/transports';
import { createPki, type Pki } from '../../support/pki';

let pki: Pki;
let a: { cert: string; key: string };
let b: { cert: string; key: string };
beforeAll(() => {
  pki = createPki();
  a = pki.issue('a', 'sipflow-a');
  b = pki.issue('b', 'sipflow-b');
});
afterAll(() => pki?.remove());

const settings = (o: Partial<TlsSettings>): TlsSettings => ({ verifyClient: 'off', verifyServer: true, handshakeTimeoutMs: 1000, reloadCheckSec: 0, ...o });

function openError(o: Partial<TlsSettings>): string {
  try {
    Certificates.open(settings(o)).close();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('opened');
}

test('a good pair opens: key, cert, CA and the client-certificate flags per verifyClient', () => {
  const c = Certificates.open(settings({ certFile: a.cert, keyFile: a.key, caFile: pki.ca, verifyClient: 'optional' }));
  try {
    expect(c.options.cert).toEqual(readFileSync(a.cert));
    expect(c.options.ca).toEqual(readFileSync(pki.ca));
    expect(c.options).toMatchObject({ requestCert: true, rejectUnauthorized: false });
    expect(c.description).toMatch(/^CN=sipflow-a, valid until \d{4}-/);
  } finally {
    c.close();
  }
  const required = Certificates.open(settings({ certFile: a.cert, keyFile: a.key, caFile: pki.ca, verifyClient: 'required' }));
  expect(required.options).toMatchObject({ requestCert: true, rejectUnauthorized: true });
  required.close();
});

test('errors name the key and the file, never the content', () => {
  expect(openError({})).toBe('TLS needs a certificate and its key: set sip.tls.certFile (--tls-cert) and sip.tls.keyFile (--tls-key)');
  expect(openError({ certFile: a.cert })).toBe('TLS needs a certificate and its key: set sip.tls.keyFile (--tls-key)');
  const missing = path.join(pki.dir, 'missing.pem');
  expect(openError({ certFile: missing, keyFile: a.key })).toBe(`sip.tls.certFile (${missing}): cannot read (ENOENT)`);
  expect(openError({ certFile: a.cert, keyFile: b.key })).toBe(
    `sip.tls.certFile (${a.cert}) does not match sip.tls.keyFile (${b.key}): not the certificate of this key`,
  );
  // the certificate given as the key (and the key as the certificate): nothing of either in the message
  const keyText = readFileSync(a.key, 'utf8');
  const swapped = openError({ certFile: a.key, keyFile: a.cert });
  expect(swapped).toBe(`sip.tls.certFile (${a.key}): not a PEM certificate`);
  const notKey = path.join(pki.dir, 'not-a-key.pem');
  writeFileSync(notKey, 'secret-looking text\n');
  const bad = openError({ certFile: a.cert, keyFile: notKey });
  expect(bad).toBe(`sip.tls.keyFile (${notKey}): not a PEM private key (encrypted keys are not supported)`);
  expect(bad).not.toContain('secret-looking');
  const badCa = path.join(pki.dir, 'bad-ca.pem');
  copyFileSync(notKey, badCa);
  expect(openError({ certFile: a.cert, keyFile: a.key, caFile: badCa })).toBe(`sip.tls.caFile (${badCa}): not PEM CA certificates`);
  for (const m of [swapped, bad]) expect(m).not.toContain(keyText.split('\n')[1]);
});

test('configuration: a tls listener without certificate and key is an error naming the keys; tls listeners default to 5061', () => {
  expect(() => parseConfig(JSON.stringify({ sip: { listeners: [{ transport: 'udp' }, { transport: 'tls' }] } }), 'test.json')).toThrow(
    'sip.tls: listener "default" has a tls socket on port 5061: set sip.tls.certFile (--tls-cert) and sip.tls.keyFile (--tls-key)',
  );
  const c = parseConfig(
    JSON.stringify({ sip: { listeners: [{ transport: 'udp' }, { transport: 'tls' }], tls: { certFile: a.cert, keyFile: a.key } } }),
    'test.json',
  );
  expect(c.sip.listeners.map((l) => `${l.transport}:${l.port}`)).toEqual(['udp:5060', 'tls:5061']);
  expect(c.sip.tls).toMatchObject({ verifyClient: 'off', verifyServer: true, handshakeTimeoutMs: 10_000, reloadCheckSec: 60 });
});

test('next hop: sips: and transport=tls go over TLS, to 5061 when no port is given', () => {
  expect(hopOf('sips:bob@example.test')).toEqual({ host: 'example.test', port: 5061, proto: 'tls' });
  expect(hopOf('sips:bob@example.test:5071;transport=tcp')).toEqual({ host: 'example.test', port: 5071, proto: 'tls' });
  expect(hopOf('sip:bob@192.0.2.1;transport=TLS')).toEqual({ host: '192.0.2.1', port: 5061, proto: 'tls' });
  expect(hopOf('sip:bob@[2001:db8::1];transport=tls')).toEqual({ host: '2001:db8::1', port: 5061, proto: 'tls' });
  expect(hopOf('sip:bob@example.test;transport=tcp')).toEqual({ host: 'example.test', port: 5060, proto: 'tcp' });
  expect(hopOf('sip:bob@example.test')).toEqual({ host: 'example.test', port: 5060, proto: 'udp' });
});
