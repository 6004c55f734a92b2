/**
 * An LDAP server for the query.ldap tests: Debian's slapd (packages slapd, ldap-utils), run by the
 * test on 127.0.0.1 and a free port, from a throwaway folder holding a slapd.conf (core, cosine
 * and inetOrgPerson schemas, one mdb database), the database loaded with slapadd before start.
 * The root DN binds with ROOT_PASSWORD; anyone may read, except `description` (bound users only).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sbin, spawnUntil } from './spawned';

export const SUFFIX = 'dc=example,dc=com';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PASSWORD = 'slapd-test-Secret-42';

export interface LdapServer {
  url: string;
  /** Stops the server (its connections close) and starts it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * Resolves once 127.0.0.1:port accepts a connection. slapd logs "slapd starting" before its
 * daemon thread calls listen(), and nothing tells when that is done: connecting is the only sign.
 */
async function accepting(port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (attempt >= 250) throw new Error(`slapd does not accept connections on port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts slapd with these LDIF entries (the suffix entry is added first). */
export async function startSlapd(ldif: string): Promise<LdapServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipflow-slapd-'));
  fs.mkdirSync(path.join(dir, 'data'));
  const conf = path.join(dir, 'slapd.conf');
  fs.writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      `argsfile ${path.join(dir, 'slapd.args')}`,
      'database mdb',
      'maxsize 10485760',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw ${ROOT_PASSWORD}`,
      `directory ${path.join(dir, 'data')}`,
      // description is readable by bound users only: a test can tell a bound search from an anonymous one
      'access to attrs=description by users read by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  const base = `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n`;
  fs.writeFileSync(path.join(dir, 'data.ldif'), base + ldif);
  execFileSync(sbin('slapadd'), ['-f', conf, '-l', path.join(dir, 'data.ldif')], { stdio: 'pipe' });
  const launch = async (port: number) => {
    // -d 256 (stats): stays in the foreground and says "slapd starting" once its socket is bound
    const server = await spawnUntil(sbin('slapd'), ['-h', `ldap://127.0.0.1:${port}/`, '-f', conf, '-d', '256'], /slapd starting/, 'slapd');
    try {
      await accepting(port);
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  };
  for (let attempt = 0; ; attempt++) {
    const port = await freeTcpPort();
    try {
      let server = await launch(port);
      return {
        url: `ldap://127.0.0.1:${port}`,
        async restart() {
          await server.stop();
          server = await launch(port);
        },
        async stop() {
          await server.stop();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if (attempt < 3 && /Address already in use|errno=98/.test((e as Error).message)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }
}
