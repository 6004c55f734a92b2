/**
 * The certificate, key and CA files of the secure transports (TLS, WSS: sip.tls), read at start
 * and read again when they change, without a restart: certbot and cert-manager replace them by
 * renaming (a symlink or a directory swap), editors by writing a new file and renaming it.
 *
 * Layout: `load()` reads and checks the three files (readable, PEM, the key matches the
 * certificate, OpenSSL accepts them together); `Certificates` holds the current result and
 * watches for changes three ways: fs.watch on each file's directory (it sees renames and symlink
 * swaps a watch on the file itself misses), a periodic stat (sip.tls.reloadCheckSec: watchers miss
 * events on some network and container file systems) and SIGHUP (forced). Changes are recognised
 * by the files' inode, size and modification time, debounced, then loaded: a file that does not
 * load keeps the previous context (one warning; the next change tries again), a good one is handed
 * to the subscribers (`server.setSecureContext`) and logged in one line (subject, expiry; never
 * the key).
 *
 * Limits: an encrypted private key is refused (no passphrase setting); only the first certificate
 * of the chain is described in the log line; connections already open keep the context they were
 * made with (TLS has no way to swap it under them).
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { TlsSettings } from '../transport';

/** Secure-context options of the current files. */
export type CertificateOptions = tls.SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };

type FileKey = 'certFile' | 'keyFile' | 'caFile';

/** Changes are looked for this long after the last file event (a rename sequence is one change). */
const DEBOUNCE_MS = 200;

const configKey = (k: FileKey) => `sip.tls.${k}`;

function readPem(k: FileKey, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${configKey(k)} (${file}): cannot read${code ? ` (${code})` : ''}`, { cause: e });
  }
}

interface Loaded {
  options: CertificateOptions;
  cert: X509Certificate;
}

/** Reads and checks the files; every error names the config key and the file, never their content. */
function load(s: TlsSettings): Loaded {
  if (!s.certFile || !s.keyFile) {
    const missing = [!s.certFile ? 'sip.tls.certFile (--tls-cert)' : null, !s.keyFile ? 'sip.tls.keyFile (--tls-key)' : null].filter((x) => x !== null);
    throw new Error(`TLS needs a certificate and its key: set ${missing.join(' and ')}`);
  }
  const certPem = readPem('certFile', s.certFile);
  const keyPem = readPem('keyFile', s.keyFile);
  const ca = s.caFile ? readPem('caFile', s.caFile) : undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new Error(`${configKey('certFile')} (${s.certFile}): not a PEM certificate`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new Error(`${configKey('keyFile')} (${s.keyFile}): not a PEM private key (encrypted keys are not supported)`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`${configKey('certFile')} (${s.certFile}) does not match ${configKey('keyFile')} (${s.keyFile}): not the certificate of this key`);
  }
  if (ca) {
    try {
      // OpenSSL skips what is not PEM: at least the first certificate must parse
      new X509Certificate(ca);
      tls.createSecureContext({ ca });
    } catch {
      throw new Error(`${configKey('caFile')} (${s.caFile}): not PEM CA certificates`);
    }
  }
  const options: CertificateOptions = {
    key: keyPem,
    cert: certPem,
    ...(ca ? { ca } : {}),
    requestCert: s.verifyClient !== 'off',
    rejectUnauthorized: s.verifyClient === 'required',
  };
  try {
    tls.createSecureContext(options);
  } catch (e) {
    // OpenSSL's reason (e.g. "ee key too small"), which never quotes the files
    throw new Error(`${configKey('certFile')} (${s.certFile}): not usable with its key: ${(e as Error).message}`, { cause: e });
  }
  return { options, cert };
}

/** `CN=sip.example.com, valid until 2027-03-01T12:00:00.000Z` (one line; the subject's lines joined). */
export function describeCertificate(cert: X509Certificate): string {
  return `${cert.subject.split('\n').join(', ')}, valid until ${new Date(cert.validTo).toISOString()}`;
}

/**
 * What is wrong with an inbound connection's client certificate per sip.tls.verifyClient, or null
 * when it may stay. The transports ask the server for a certificate without rejecting in OpenSSL
 * (rejectUnauthorized false) and decide here, so that a refused connection gets a log line saying
 * why; `optional` verifies a certificate when one is given.
 */
export function clientCertificateProblem(socket: tls.TLSSocket, verifyClient: TlsSettings['verifyClient']): string | null {
  if (verifyClient === 'off' || socket.authorized) return null;
  const given = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  if (!given) return verifyClient === 'required' ? 'no client certificate (sip.tls.verifyClient is required)' : null;
  return `client certificate not valid (${String(socket.authorizationError ?? 'unknown')})`;
}

export class Certificates {
  private current: Loaded;
  private stamp: string;
  private readonly subscribers = new Set<(options: tls.SecureContextOptions) => void>();
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly interval: NodeJS.Timeout | null;
  private debounce: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onHangup = () => this.check(true);

  private constructor(
    private readonly s: TlsSettings,
    private readonly warn: (m: string) => void,
  ) {
    this.current = load(s);
    this.stamp = this.fileStamp();
    this.checkValidity(this.current.cert);
    if (s.verifyClient !== 'off' && !s.caFile)
      warn(`sip.tls.verifyClient is ${s.verifyClient} without sip.tls.caFile: client certificates are checked against the bundled public CAs`);
    for (const dir of new Set(this.files().map(([, f]) => path.dirname(path.resolve(f))))) {
      try {
        const w = fs.watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', (e) => warn(`TLS certificates: cannot watch ${dir} (${e.message}); changes are found by sip.tls.reloadCheckSec`));
        this.watchers.push(w);
      } catch (e) {
        warn(`TLS certificates: cannot watch ${dir} (${(e as Error).message}); changes are found by sip.tls.reloadCheckSec`);
      }
    }
    const everySec = s.reloadCheckSec ?? 60;
    this.interval = everySec > 0 ? setInterval(() => this.check(false), everySec * 1000) : null;
    this.interval?.unref();
    process.on('SIGHUP', this.onHangup);
  }

  /** Reads the files; throws an Error naming the config key and file (never the key's content) when missing/unreadable/not matching. */
  static open(s: TlsSettings, onWarning?: (m: string) => void): Certificates {
    return new Certificates(s, onWarning ?? (() => undefined));
  }

  /** Current secure-context options (key, cert, ca, requestCert/rejectUnauthorized per verifyClient). */
  get options(): CertificateOptions {
    return this.current.options;
  }

  /** The current certificate, described in one line (subject, expiry). */
  get description(): string {
    return describeCertificate(this.current.cert);
  }

  /** Called with the new options after the files changed and loaded fine (server.setSecureContext(options)); a bad new file keeps the old context and warns. Returns an unsubscribe. */
  onReload(cb: (options: tls.SecureContextOptions) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('SIGHUP', this.onHangup);
    if (this.interval) clearInterval(this.interval);
    if (this.debounce) clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
    this.subscribers.clear();
  }

  private files(): Array<[FileKey, string]> {
    const out: Array<[FileKey, string]> = [];
    for (const k of ['certFile', 'keyFile', 'caFile'] as const) {
      const f = this.s[k];
      if (f) out.push([k, f]);
    }
    return out;
  }

  /** Inode, size and modification time of each file (through symlinks): what a replacement changes. */
  private fileStamp(): string {
    return this.files()
      .map(([, f]) => {
        try {
          const st = fs.statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.check(false);
    }, DEBOUNCE_MS);
    this.debounce.unref();
  }

  /** Loads the files again when they changed (or when forced: SIGHUP). */
  private check(force: boolean): void {
    if (this.closed) return;
    const stamp = this.fileStamp();
    if (!force && stamp === this.stamp) return;
    this.stamp = stamp;
    let next: Loaded;
    try {
      next = load(this.s);
    } catch (e) {
      this.warn(`TLS certificate not reloaded, the previous one stays in use: ${(e as Error).message}`);
      return;
    }
    const o = next.options;
    const same = this.current.options;
    if (!force && (o.cert as Buffer).equals(same.cert as Buffer) && (o.key as Buffer).equals(same.key as Buffer) && bufEq(o.ca, same.ca)) return;
    this.current = next;
    this.warn(`TLS certificate reloaded from ${configKey('certFile')} (${this.s.certFile}): ${describeCertificate(next.cert)}`);
    this.checkValidity(next.cert);
    for (const cb of this.subscribers) cb(o);
  }

  private checkValidity(cert: X509Certificate): void {
    const now = Date.now();
    if (new Date(cert.validTo).getTime() < now)
      this.warn(`${configKey('certFile')} (${this.s.certFile}): the certificate expired (${describeCertificate(cert)})`);
    else if (new Date(cert.validFrom).getTime() > now)
      this.warn(`${configKey('certFile')} (${this.s.certFile}): the certificate is not valid before ${cert.validFrom}`);
  }
}

function bufEq(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
}
