/**
 * A throwaway certificate authority for the TLS suites: openssl (EC P-256, fast) in a temporary
 * directory; one per suite (beforeAll), removed with `remove()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Issued {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (PEM file). */
  ca: string;
  /** A certificate signed by the CA: `cn` as subject, `san` (default DNS:localhost, IP:127.0.0.1) as names. */
  issue(name: string, cn: string, o?: { san?: string; client?: boolean }): Issued;
  /** A self-signed certificate (not from the CA). */
  selfSigned(name: string, cn: string): Issued;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createPki(): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=sipflow test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ],
    dir,
  );
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    issue(name, cn, o = {}) {
      const ext = path.join(dir, `${name}.ext`);
      writeFileSync(
        ext,
        `subjectAltName=${o.san ?? 'DNS:localhost,IP:127.0.0.1'}\nextendedKeyUsage=${o.client ? 'clientAuth' : 'serverAuth,clientAuth'}\nbasicConstraints=CA:FALSE\n`,
      );
      openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
      openssl(
        ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext],
        dir,
      );
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    },
    selfSigned(name, cn) {
      openssl(
        [
          'req',
          '-x509',
          ...ec,
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.pem`,
          '-days',
          '2',
          '-subj',
          `/CN=${cn}`,
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
        ],
        dir,
      );
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
