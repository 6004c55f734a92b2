/**
 * The HttpPort of query.httpRequest over undici: one Agent per process (each SIP worker thread
 * builds its own), keeping up to `connectionsPerOrigin` keep-alive connections per origin.
 *
 * Limits, each ending the exchange early: `timeoutMs` for the whole exchange (connection,
 * headers, body: HttpQueryError 'timeout'); a body longer than `maxResponseBytes` (announced by
 * Content-Length or counted while reading: 'failure', the connection dropped). Redirects are not
 * followed. Bodies are decoded as UTF-8.
 *
 * HTTPS trust: Node's bundled CAs, plus the certificates of `caFile` (a private CA, or a server's
 * self-signed certificate) when given; there is no switch to skip verification.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { HttpQueryError, type HttpAnswer, type HttpPort, type HttpQuery } from '../../engine/ports';

export interface HttpClientOptions {
  maxResponseBytes: number;
  connectionsPerOrigin: number;
  /** PEM file of certificates trusted in addition to Node's bundled CAs. */
  caFile?: string;
}

export interface HttpClient extends HttpPort {
  /** Closes the pooled connections; requests still under way fail (shutdown comes after the drain). */
  close(): Promise<void>;
}

/** One short reason: `connect ECONNREFUSED 127.0.0.1:9`, `self-signed certificate`, with the error code when the message lacks it. */
function reason(e: unknown): string {
  const err = e as Error & { code?: string };
  const code = err.code && !err.message.includes(err.code) ? `${err.code}: ` : '';
  return `${code}${err.message || String(e)}`;
}

/** The certificates of `caFile`; throws naming the key when it cannot be read or holds none. */
function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`nodes.http.caFile (${file}): cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`nodes.http.caFile (${file}): not PEM certificates`);
  return pem;
}

/** Stops reading a body and drops its connection (the abort error it emits has nowhere to go). */
function drop(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

export function createHttpClient(o: HttpClientOptions): HttpClient {
  const ca = o.caFile ? [...rootCertificates, readCaFile(o.caFile)] : undefined;
  const agent = new Agent({ connections: o.connectionsPerOrigin, connect: ca ? { ca } : undefined });
  const cap = o.maxResponseBytes;

  return {
    async request(q: HttpQuery): Promise<HttpAnswer> {
      const started = performance.now();
      const abort = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, q.timeoutMs);
      try {
        const res = await request(q.url, {
          dispatcher: agent,
          method: q.method as 'GET',
          headers: q.headers,
          body: q.body ?? undefined,
          signal: abort.signal,
        });
        const announced = Number(res.headers['content-length'] ?? 0);
        if (announced > cap) {
          drop(res.body);
          throw new HttpQueryError(`response body of ${announced} bytes, over nodes.http.maxResponseBytes (${cap})`, 'failure');
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > cap) {
            drop(res.body);
            throw new HttpQueryError(`response body over nodes.http.maxResponseBytes (${cap})`, 'failure');
          }
          chunks.push(chunk as Buffer);
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        return { status: res.statusCode, headers, body: Buffer.concat(chunks, size).toString('utf8'), elapsedMs: performance.now() - started };
      } catch (e) {
        if (timedOut) throw new HttpQueryError(`no complete answer within ${q.timeoutMs} ms`, 'timeout');
        if (e instanceof HttpQueryError) throw e;
        throw new HttpQueryError(reason(e), 'failure');
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => agent.destroy(),
  };
}
