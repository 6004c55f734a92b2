/**
 * A tiny SIP user agent for the front-end tests: sends raw SIP text over a real UDP or TCP
 * socket and collects what comes back, parsed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { StreamFramer } from '../../../sip/framing';
import { header, isRequest, type SipMessage, type SipRequest, type SipResponse } from '../../../sip/message';
import { parseMessage } from '../../../sip/parser';
import { answerChallenge } from '../../support/sip';

export interface Received {
  msg: SipMessage;
  raw: string;
  from: { address: string; port: number };
}

export abstract class Ua {
  readonly inbox: Received[] = [];
  private waiters: Array<{ pred: (r: Received) => boolean; resolve: (r: Received) => void }> = [];
  abstract readonly port: number;
  abstract readonly proto: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  /** The local address (what Via and the default Contact name). */
  host = '127.0.0.1';
  abstract send(text: string | Buffer): void;
  abstract close(): Promise<void>;

  protected deliver(buf: Buffer, from: { address: string; port: number }): void {
    const p = parseMessage(buf);
    if (!p.ok) return;
    const r: Received = { msg: p.message, raw: buf.toString('utf8'), from };
    const i = this.waiters.findIndex((w) => w.pred(r));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(r);
    } else this.inbox.push(r);
  }

  /** Next message (already received or coming) matching `pred`; rejects after `ms`. */
  next(pred: (r: Received) => boolean = () => true, ms = 3000): Promise<Received> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (r: Received) => {
          clearTimeout(t);
          resolve(r);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no matching message within ${ms} ms; inbox: ${this.inbox.map((r) => firstLine(r.raw)).join(' | ') || 'empty'}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  response(status?: number, ms?: number): Promise<SipResponse> {
    return this.next((r) => !isRequest(r.msg) && (status === undefined || (r.msg as SipResponse).status === status), ms).then((r) => r.msg as SipResponse);
  }

  request(method?: string, ms?: number): Promise<Received & { msg: SipRequest }> {
    return this.next((r) => isRequest(r.msg) && (method === undefined || r.msg.method === method), ms) as Promise<Received & { msg: SipRequest }>;
  }

  /** Nothing (matching) arrives within `ms`. */
  async silence(ms: number, pred: (r: Received) => boolean = () => true): Promise<void> {
    try {
      const r = await this.next(pred, ms);
      throw new Error(`unexpected message: ${firstLine(r.raw)}`);
    } catch (e) {
      if ((e as Error).message.startsWith('unexpected')) throw e;
    }
  }
}

export function firstLine(raw: string): string {
  return raw.slice(0, raw.indexOf('\r\n'));
}

export class UdpUa extends Ua {
  readonly proto = 'udp' as const;
  private constructor(
    private readonly sock: dgram.Socket,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    super();
    sock.on('message', (b, r) => this.deliver(b, { address: r.address, port: r.port }));
  }
  /** `localHost`: the source address (any of 127.0.0.0/8 is a distinct loopback source). */
  static async open(targetPort: number, targetHost = '127.0.0.1', localHost = net.isIPv6(targetHost) ? '::1' : '127.0.0.1'): Promise<UdpUa> {
    const sock = dgram.createSocket(net.isIPv6(localHost) ? 'udp6' : 'udp4');
    await new Promise<void>((r) => sock.bind(0, localHost, () => r()));
    const ua = new UdpUa(sock, sock.address().port, { host: targetHost, port: targetPort });
    ua.host = localHost;
    return ua;
  }
  send(text: string | Buffer): void {
    this.sock.send(typeof text === 'string' ? Buffer.from(text) : text, this.target.port, this.target.host);
  }
  sendTo(text: string, port: number, host = '127.0.0.1'): void {
    this.sock.send(Buffer.from(text), port, host);
  }
  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

export class TcpUa extends Ua {
  readonly proto = 'tcp' as const;
  private readonly framer = new StreamFramer();
  private constructor(
    readonly sock: net.Socket,
    readonly port: number,
  ) {
    super();
    sock.on('data', (chunk) => {
      for (const m of this.framer.push(chunk).messages) this.deliver(m, { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 });
    });
    sock.on('error', () => {
      /* closed by the server in some tests */
    });
  }
  static async open(targetPort: number, targetHost = '127.0.0.1', localHost?: string): Promise<TcpUa> {
    const sock = net.connect({ host: targetHost, port: targetPort, ...(localHost ? { localAddress: localHost } : {}) });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    const ua = new TcpUa(sock, sock.localPort!);
    ua.host = sock.localAddress!;
    return ua;
  }
  send(text: string | Buffer): void {
    this.sock.write(typeof text === 'string' ? Buffer.from(text) : text);
  }
  close(): Promise<void> {
    return new Promise((r) => {
      this.sock.end(() => r());
      this.sock.destroy();
      r();
    });
  }
}

/** Over TLS (node's client): `options` say what to trust and which certificate to offer. */
export class TlsUa extends Ua {
  readonly proto = 'tls' as const;
  private readonly framer = new StreamFramer();
  private constructor(
    readonly sock: tls.TLSSocket,
    readonly port: number,
  ) {
    super();
    sock.on('data', (chunk: Buffer) => {
      for (const m of this.framer.push(chunk).messages) this.deliver(m, { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 });
    });
    sock.on('error', () => {
      /* closed by the server in some tests */
    });
  }
  static async open(targetPort: number, options: tls.ConnectionOptions, targetHost = '127.0.0.1'): Promise<TlsUa> {
    const sock = tls.connect({ host: targetHost, port: targetPort, ...options });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve());
      sock.once('error', reject);
    });
    return new TlsUa(sock, sock.localPort!);
  }
  /** Resolves when the server closed the connection. */
  closed(): Promise<void> {
    return this.sock.closed ? Promise.resolve() : new Promise((r) => this.sock.once('close', () => r()));
  }
  send(text: string | Buffer): void {
    this.sock.write(typeof text === 'string' ? Buffer.from(text) : text);
  }
  close(): Promise<void> {
    this.sock.destroy();
    return Promise.resolve();
  }
}

export const rand = (): string => randomBytes(6).toString('hex');

export interface ReqSpec {
  method: string;
  uri: string;
  ua: { proto: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss'; port: number; host?: string };
  branch?: string;
  callId?: string;
  cseq?: number;
  from?: string;
  fromTag?: string;
  to?: string;
  contact?: string | null;
  headers?: Record<string, string>;
  body?: string;
  maxForwards?: number | null;
  rport?: boolean;
}

/** An address as a URI or Via host: IPv6 in brackets. */
export const hostPart = (a: string): string => (net.isIPv6(a) ? `[${a}]` : a);

/** SIP request text; Content-Length computed. */
export function sipRequest(s: ReqSpec): string {
  const branch = s.branch ?? 'z9hG4bK' + rand();
  const host = hostPart(s.ua.host ?? '127.0.0.1');
  const lines = [`${s.method} ${s.uri} SIP/2.0`, `Via: SIP/2.0/${s.ua.proto.toUpperCase()} ${host}:${s.ua.port};branch=${branch}${s.rport ? ';rport' : ''}`];
  if (s.maxForwards !== null) lines.push(`Max-Forwards: ${s.maxForwards ?? 70}`);
  lines.push(
    `From: ${s.from ?? '<sip:alice@example.test>'};tag=${s.fromTag ?? 'ft' + rand()}`,
    `To: ${s.to ?? '<sip:bob@example.test>'}`,
    `Call-ID: ${s.callId ?? rand() + '@test'}`,
    `CSeq: ${s.cseq ?? 1} ${s.method}`,
  );
  if (s.contact !== null) lines.push(`Contact: ${s.contact ?? `<sip:alice@${host}:${s.ua.port}${s.ua.proto === 'udp' ? '' : `;transport=${s.ua.proto}`}>`}`);
  for (const [k, v] of Object.entries(s.headers ?? {})) lines.push(`${k}: ${v}`);
  const body = s.body ?? '';
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

/** A response to a received request (UAS side of the tests): Via/From/To/Call-ID/CSeq copied. */
export function sipResponse(
  req: SipRequest,
  status: number,
  reason: string,
  opts: { toTag?: string; headers?: Record<string, string>; body?: string } = {},
): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of req.headers.via) lines.push(`Via: ${v}`);
  lines.push(`From: ${header(req, 'from')}`);
  const to = header(req, 'to')!;
  lines.push(`To: ${opts.toTag && !/;tag=/.test(to) ? `${to};tag=${opts.toTag}` : to}`);
  lines.push(`Call-ID: ${header(req, 'call-id')}`, `CSeq: ${header(req, 'cseq')}`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`);
  const body = opts.body ?? '';
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

/**
 * A subscriber's REGISTER answered with its digest credentials (one Call-ID, CSeq 1 then 2): the
 * final status, or null when the server stays silent for `ms` (a ban drops without answering).
 */
export async function registerStatus(
  ua: Ua,
  user: string,
  password: string,
  o: { domain?: string; ms?: number; userAgent?: string; expires?: number; contact?: string } = {},
): Promise<number | null> {
  const domain = o.domain ?? 'nl.netaxis.be';
  const callId = rand();
  const uri = `sip:${domain}`;
  const req = (cseq: number, authorization?: string) =>
    sipRequest({
      method: 'REGISTER',
      uri,
      ua,
      callId,
      cseq,
      from: `<sip:${user}@${domain}>`,
      to: `<sip:${user}@${domain}>`,
      contact: o.contact ?? `<sip:${user}@127.0.0.1:${ua.port}${ua.proto === 'udp' ? '' : `;transport=${ua.proto}`}>`,
      headers: {
        Expires: String(o.expires ?? 300),
        ...(o.userAgent ? { 'User-Agent': o.userAgent } : {}),
        ...(authorization ? { Authorization: authorization } : {}),
      },
    });
  const final = () =>
    ua
      .next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status >= 200, o.ms ?? 3000)
      .then(
        (r) => r.msg as SipResponse,
        () => null,
      );
  ua.send(req(1));
  const ch = await final();
  if (ch === null) return null;
  if (ch.status !== 401) return ch.status;
  ua.send(req(2, answerChallenge(header(ch, 'www-authenticate')!, { username: user, password, method: 'REGISTER', uri })));
  return (await final())?.status ?? null;
}
