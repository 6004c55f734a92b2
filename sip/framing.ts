/**
 * Message framing on stream transports (TCP, TLS): RFC 3261 §18.3. Feed socket chunks in,
 * get complete raw messages out (parse each with parseMessage). Content-Length is mandatory
 * on streams; a missing, bad or conflicting one, or a message beyond the size limit, makes the
 * framer fail for good: the connection must be closed, since the byte stream cannot be resynced.
 * CRLF keep-alives between messages are skipped and counted (RFC 5626 §3.5.1: each CRLFCRLF
 * "ping" deserves a CRLF "pong").
 */

export interface FramerOptions {
  /** Largest accepted message, headers plus body (default 65535). */
  maxMessageSize?: number;
}

export interface FrameResult {
  /** Complete messages, in order; each may share memory with the pushed chunks. */
  messages: Buffer[];
  /** CRLFCRLF pings seen between messages. */
  keepalives: number;
  /** Set once the stream is unrecoverable; later pushes return it again. */
  error?: string;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** Total size of the message being read, once its headers are complete; -1 before. */
  private need = -1;
  /** Where to resume looking for the end of the headers. */
  private scanFrom = 0;
  /** LFs seen in a row between messages (two make a ping). */
  private lfRun = 0;
  private failed: string | null = null;
  private readonly max: number;

  constructor(opts: FramerOptions = {}) {
    this.max = opts.maxMessageSize ?? 65535;
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): FrameResult {
    const messages: Buffer[] = [];
    let keepalives = 0;
    if (this.failed !== null) return { messages, keepalives, error: this.failed };
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.need < 0) {
        let i = 0;
        while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) {
          if (buf[i] === 10 && ++this.lfRun === 2) {
            keepalives++;
            this.lfRun = 0;
          }
          i++;
        }
        if (i > 0) {
          buf = buf.subarray(i);
          this.scanFrom = 0;
        }
        if (buf.length === 0) break;
        this.lfRun = 0;
        const he = buf.indexOf(CRLFCRLF, Math.max(0, this.scanFrom - 3));
        if (he < 0) {
          if (buf.length > this.max) return this.fail('headers exceed the maximum message size', messages, keepalives);
          this.scanFrom = buf.length;
          break;
        }
        const cl = contentLength(buf.toString('latin1', 0, he));
        if (typeof cl === 'string') return this.fail(cl, messages, keepalives);
        this.need = he + 4 + cl;
        if (this.need > this.max) return this.fail('message exceeds the maximum size', messages, keepalives);
      }
      if (buf.length < this.need) break;
      messages.push(buf.subarray(0, this.need));
      buf = buf.subarray(this.need);
      this.need = -1;
      this.scanFrom = 0;
    }
    this.buf = buf;
    return { messages, keepalives };
  }

  private fail(error: string, messages: Buffer[], keepalives: number): FrameResult {
    this.failed = error;
    this.buf = Buffer.alloc(0);
    return { messages, keepalives, error };
  }
}

/**
 * Content-Length from a header block (latin1 text, no final CRLFCRLF): the number, or an error
 * message when it is missing, malformed or given twice with different values.
 */
export function contentLength(head: string): number | string {
  let found: string | null = null;
  let p = head.indexOf('\n') + 1; // skip the start-line
  if (p === 0) return 'Content-Length missing on a stream transport';
  const n = head.length;
  while (p < n) {
    let e = head.indexOf('\n', p);
    if (e < 0) e = n;
    const colon = head.indexOf(':', p);
    if (colon > p && colon < e) {
      const name = head.slice(p, colon).trimEnd().toLowerCase();
      if (name === 'content-length' || name === 'l') {
        let value = head.slice(colon + 1, e);
        // folded continuation lines belong to this value
        while (e < n && (head.charCodeAt(e + 1) === 32 || head.charCodeAt(e + 1) === 9)) {
          const e2 = head.indexOf('\n', e + 1);
          const stop = e2 < 0 ? n : e2;
          value += ' ' + head.slice(e + 1, stop);
          e = stop;
        }
        value = value.trim();
        if (found !== null && found !== value) return 'conflicting Content-Length headers';
        found = value;
      }
    }
    p = e + 1;
  }
  if (found === null) return 'Content-Length missing on a stream transport';
  if (!/^\d{1,10}$/.test(found) || Number(found) > 0x7fffffff) return 'bad Content-Length';
  return Number(found);
}
