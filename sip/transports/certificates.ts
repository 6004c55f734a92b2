/**
 * The certificates of the secure transports (TLS, WSS) from `sip.tls`: the PEM files read once,
 * as `tls.createServer` / `https.createServer` options. Minimal version (no reload: `onReload`
 * never fires); the TLS module's version watches the files and calls `onReload` with the new
 * context, which a server applies with `setSecureContext`. Its API is this one.
 *
 * Errors name the configuration key and the file, never the key material.
 */
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { TlsSettings } from '../transport';

export class Certificates {
  private readonly listeners = new Set<(options: tls.SecureContextOptions) => void>();

  private constructor(readonly options: tls.SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean }) {}

  /** Reads the files of `sip.tls`; throws naming the config key and the file that cannot be read. */
  static open(s: TlsSettings, onWarning?: (m: string) => void): Certificates {
    void onWarning;
    if (s.certFile === undefined || s.keyFile === undefined) throw new Error('sip.tls.certFile and sip.tls.keyFile are required by a tls or wss listener');
    const read = (key: string, file: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (e) {
        throw new Error(`${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
      }
    };
    const cert = read('sip.tls.certFile', s.certFile);
    const key = read('sip.tls.keyFile', s.keyFile);
    const ca = s.caFile !== undefined ? read('sip.tls.caFile', s.caFile) : undefined;
    return new Certificates({
      cert,
      key,
      ...(ca !== undefined ? { ca } : {}),
      requestCert: s.verifyClient !== 'off',
      rejectUnauthorized: s.verifyClient === 'required',
    });
  }

  /** Follows reloads of the files (never, in this version); returns the unsubscribe. */
  onReload(cb: (options: tls.SecureContextOptions) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  close(): void {
    this.listeners.clear();
  }
}
