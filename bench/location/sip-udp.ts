/**
 * A minimal SIP-over-UDP client for bench/location/scale.ts: sends a request, matches the answer
 * by Call-ID, times the round trip, and retransmits like a UAC (timer T1 = 500 ms, doubling to 4 s,
 * 7 sends at most, then a timeout). Loopback only; no transactions, no parsing beyond the status
 * line, the Call-ID and the Contact headers.
 */
import * as dgram from 'dgram';

export interface SipAnswer {
  /** Status code; 0 when every retransmission went unanswered. */
  status: number;
  /** First send to answer, microseconds (a retransmitted request counts from its first send, as SIPp does). */
  us: number;
  /** The answer's Contact header values (one per header line). */
  contacts: string[];
}

interface Pending {
  msg: Buffer;
  first: bigint;
  next: number;
  interval: number;
  sends: number;
  resolve: (a: SipAnswer) => void;
}

const T1 = 500;
const T2 = 4000;
const MAX_SENDS = 7;

export class UdpSipClient {
  private readonly sock = dgram.createSocket('udp4');
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  /** Requests sent again for want of an answer. */
  retransmissions = 0;
  localPort = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.sock.once('error', reject);
      this.sock.bind(0, '127.0.0.1', () => {
        this.sock.off('error', reject);
        resolve();
      });
    });
    this.localPort = this.sock.address().port;
    for (const set of [(n: number) => this.sock.setRecvBufferSize(n), (n: number) => this.sock.setSendBufferSize(n)]) {
      try {
        set(4 * 1024 * 1024);
      } catch {
        // the kernel's limit (net.core.rmem_max) applies; the default is enough at the windows used here
      }
    }
    this.sock.on('message', (buf) => this.answer(buf));
    this.timer = setInterval(() => this.resend(), 50);
  }

  /** Sends `text` (its Call-ID header must be `callId`) and resolves with the first final answer. */
  request(callId: string, text: string): Promise<SipAnswer> {
    return new Promise((resolve) => {
      const msg = Buffer.from(text, 'latin1');
      const now = Date.now();
      this.pending.set(callId, { msg, first: process.hrtime.bigint(), next: now + T1, interval: T1, sends: 1, resolve });
      this.sock.send(msg, this.port, this.host);
    });
  }

  private answer(buf: Buffer): void {
    const text = buf.toString('latin1');
    const status = Number(text.slice(8, 11));
    if (!(status >= 200)) return; // provisional (none expected: Kamailio answers these statelessly)
    const m = /\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)/i.exec(text);
    if (!m) return;
    const p = this.pending.get(m[1].trim());
    if (!p) return; // an answer to a retransmission already answered
    this.pending.delete(m[1].trim());
    const contacts: string[] = [];
    const re = /\r\n(?:Contact|m)[ \t]*:[ \t]*([^\r\n]+)/gi;
    for (let c = re.exec(text); c; c = re.exec(text)) contacts.push(c[1]);
    p.resolve({ status, us: Number(process.hrtime.bigint() - p.first) / 1e3, contacts });
  }

  private resend(): void {
    const now = Date.now();
    for (const [callId, p] of this.pending) {
      if (now < p.next) continue;
      if (p.sends >= MAX_SENDS) {
        this.pending.delete(callId);
        p.resolve({ status: 0, us: Number(process.hrtime.bigint() - p.first) / 1e3, contacts: [] });
        continue;
      }
      p.sends++;
      this.retransmissions++;
      p.interval = Math.min(p.interval * 2, T2);
      p.next = now + p.interval;
      this.sock.send(p.msg, this.port, this.host);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pending.values()) p.resolve({ status: 0, us: 0, contacts: [] });
    this.pending.clear();
    this.sock.close();
  }
}
