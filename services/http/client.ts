/**
 * The HttpPort of query.httpRequest over undici: one Agent per process (each SIP worker thread
 * builds its own), keeping up to `connectionsPerOrigin` keep-alive connections per origin.
 *
 * Limits, each ending the exchange early: `timeoutMs` for the whole exchange (connection,
 * headers, body: HttpQueryError 'timeout'); a body longer than `maxResponseBytes` (announced by
 * Content-Length or counted while reading: 'failure', the connection dropped). Redirects are not
 * followed. Bodies are decoded as UTF-8.
 *
 * It speaks undici's dispatch API (handler callbacks) rather than request(): no Readable stream
 * and no AbortController per call, which costs less CPU per request than request() itself
 * (bench/engine/http-overhead.ts).
 *
 * HTTPS trust: Node's bundled CAs, plus the certificates of `caFile` (a private CA, or a server's
 * self-signed certificate) when given; there is no switch to skip verification.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, util, type Dispatcher } from 'undici';
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

/** undici's own timeouts (connection, headers, body): timeouts too, whichever timer fires first. */
const UNDICI_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Lower-case name → value (repeated headers joined with ", "), from undici's raw name/value pairs. */
function responseHeaders(raw: Buffer[] | string[] | null): Record<string, string> {
  const parsed = util.parseHeaders(raw ?? []) as Record<string, string | string[]>;
  const out: Record<string, string> = {};
  for (const k in parsed) out[k] = Array.isArray(parsed[k]) ? (parsed[k] as string[]).join(', ') : (parsed[k] as string);
  return out;
}

export function createHttpClient(o: HttpClientOptions): HttpClient {
  const ca = o.caFile ? [...rootCertificates, readCaFile(o.caFile)] : undefined;
  const agent = new Agent({ connections: o.connectionsPerOrigin, connect: ca ? { ca } : undefined });
  const cap = o.maxResponseBytes;

  return {
    request(q: HttpQuery): Promise<HttpAnswer> {
      return new Promise<HttpAnswer>((resolve, reject) => {
        const started = performance.now();
        let settled = false;
        let abort: ((err: Error) => void) | null = null;
        const settle = (err: HttpQueryError | null, answer?: HttpAnswer) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) {
            // a request still queued for a connection is aborted when its turn comes (onConnect)
            abort?.(err);
            reject(err);
          } else resolve(answer!);
        };
        const timer = setTimeout(() => settle(new HttpQueryError(`no complete answer within ${q.timeoutMs} ms`, 'timeout')), q.timeoutMs);
        let url: URL;
        try {
          url = new URL(q.url);
        } catch {
          settle(new HttpQueryError(`invalid URL ${q.url}`, 'failure'));
          return;
        }
        let status = 0;
        let headers: Record<string, string> = {};
        const chunks: Buffer[] = [];
        let size = 0;
        const handler: Dispatcher.DispatchHandlers = {
          onConnect(a) {
            if (settled) a(new Error('abandoned'));
            else abort = a;
          },
          onHeaders(statusCode, raw) {
            status = statusCode;
            headers = responseHeaders(raw);
            const announced = Number(headers['content-length'] ?? 0);
            if (announced > cap) settle(new HttpQueryError(`response body of ${announced} bytes, over nodes.http.maxResponseBytes (${cap})`, 'failure'));
            return true;
          },
          onData(chunk) {
            size += chunk.length;
            if (size > cap) settle(new HttpQueryError(`response body over nodes.http.maxResponseBytes (${cap})`, 'failure'));
            else chunks.push(chunk);
            return true;
          },
          onComplete() {
            settle(null, { status, headers, body: Buffer.concat(chunks, size).toString('utf8'), elapsedMs: performance.now() - started });
          },
          onError(err) {
            const code = (err as Error & { code?: string }).code;
            if (code !== undefined && UNDICI_TIMEOUTS.has(code)) settle(new HttpQueryError(`no complete answer within ${q.timeoutMs} ms (${code})`, 'timeout'));
            else settle(new HttpQueryError(reason(err), 'failure'));
          },
        };
        try {
          agent.dispatch(
            {
              origin: url.origin,
              path: url.pathname + url.search,
              method: q.method as 'GET',
              headers: q.headers,
              body: q.body,
              // backstops: a connection of the pool is not held past the exchange's own timeout
              headersTimeout: q.timeoutMs,
              bodyTimeout: q.timeoutMs,
            },
            handler,
          );
        } catch (e) {
          // arguments undici refuses before sending (a header value it rejects)
          settle(new HttpQueryError(reason(e), 'failure'));
        }
      });
    },
    close: () => agent.destroy(),
  };
}
