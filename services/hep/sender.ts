/**
 * The HEP v3 capture (hep.* in the configuration): copies every SIP message a SIP thread
 * receives and sends (the MessageTap of server/message-consumers.ts `hepTap`) to a collector (Homer's heplify-server, a
 * Kamailio sipcapture node), as Kamailio's siptrace does with `hep_mode_on` and `duplicate_uri`.
 *
 * Why fire and forget over UDP: capture is for looking at calls, never a reason to slow or fail
 * one. The tap encodes (services/hep/encode.ts) and hands the datagram to the kernel; it never
 * waits, never throws, and a collector that is down, unknown or slow costs the call nothing.
 *
 * Layout: one sender per SIP thread (server/message-consumers.ts), with one unconnected dgram
 * socket per address family, created when first needed and unref'd (it never keeps a process or
 * a draining thread alive). The destination is the configured collector and nothing else: no
 * part of a SIP message chooses where a datagram goes.
 *
 * Resolution: an IP literal is used as it is. A host name is resolved once at start
 * (dns.lookup, as the system resolves it) and again after a resolution or send failure, at most
 * every `resolveEverySec` seconds; until a first answer, messages are dropped and counted
 * (reason `unresolved`).
 *
 * Limits: at most `maxInFlight` datagrams handed to the socket and not yet sent; beyond, a
 * message is dropped (reason `overload`). A message whose datagram would exceed 65,535 bytes, or
 * whose peer is not an IP address, is dropped (`too_large`, `address`). Send errors are counted
 * (`send_error`); an ICMP port unreachable from the collector is not even seen by an unconnected
 * socket. Failures are logged at most once per minute with what was dropped since; the
 * authentication key is never in a log line.
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { LogPort } from '../../engine/ports';
import { parseCollectorAddress } from '../collector-address';
import { encodeHep, type HepAgent, type HepMessage } from './encode';

export const HEP_DEFAULT_PORT = 9060;

/** Why a message was not sent (sipflow_hep_dropped_total{reason}). */
export type HepDropReason = 'unresolved' | 'overload' | 'send_error' | 'too_large' | 'address';

/** `host:port`, `[v6]:port`, `v6` or `host` (port 9060) → parts; throws naming the text when it is not one. */
export const parseHepCollector = (target: string): { host: string; port: number } => parseCollectorAddress(target, HEP_DEFAULT_PORT);

export interface HepSenderOptions extends HepAgent {
  /** The collector, as parseHepCollector reads it. */
  collector: string;
  log?: LogPort;
  /** Counters (server/metrics.ts sipflow_hep_*); absent: only `stats`. */
  onSent?: () => void;
  onDropped?: (reason: HepDropReason) => void;
  /** Datagrams handed to the socket and not yet sent, at most (default 1000). */
  maxInFlight?: number;
  /** A failed name is resolved again at most this often (default 30 s). */
  resolveEverySec?: number;
  /** Failures are logged at most this often (default 60 s). */
  logEverySec?: number;
  /** The resolver (default dns.lookup). */
  lookup?: (host: string, cb: (err: Error | null, address: string, family: number) => void) => void;
}

export interface HepSender {
  /** Copies one message to the collector (never waits, never throws). */
  capture(m: HepMessage): void;
  readonly stats: { sent: number; dropped: Record<HepDropReason, number> };
  /** Resolves once the first resolution of the collector's name is over (at once for an IP literal). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export function createHepSender(o: HepSenderOptions): HepSender {
  const { host, port } = parseHepCollector(o.collector);
  const agent: HepAgent = { captureId: o.captureId, password: o.password };
  const maxInFlight = o.maxInFlight ?? 1000;
  const resolveEveryMs = (o.resolveEverySec ?? 30) * 1000;
  const logEveryMs = (o.logEverySec ?? 60) * 1000;
  const lookup = o.lookup ?? ((h, cb) => dnsLookup(h, (err, address, family) => cb(err, address, family)));
  const stats = { sent: 0, dropped: { unresolved: 0, overload: 0, send_error: 0, too_large: 0, address: 0 } as Record<HepDropReason, number> };
  const sockets = new Map<4 | 6, dgram.Socket>();
  let closed = false;
  let inFlight = 0;

  // the collector's address: fixed for a literal, else the last answer of the resolver
  let address: string | null = isIP(host) ? host : null;
  let family: 4 | 6 = isIP(host) === 6 ? 6 : 4;
  let resolving = false;
  let lastResolve = 0;
  const resolve = (): Promise<void> => {
    if (isIP(host) || resolving || closed) return Promise.resolve();
    resolving = true;
    lastResolve = Date.now();
    return new Promise((done) => {
      lookup(host, (err, a, f) => {
        resolving = false;
        if (err || !a) failed('unresolved', err?.message ?? 'no address');
        else {
          address = a;
          family = f === 6 ? 6 : 4;
        }
        done();
      });
    });
  };
  const resolveAgainLater = () => {
    if (!isIP(host) && Date.now() - lastResolve >= resolveEveryMs) void resolve();
  };

  // failures: counted always, logged at most once per logEverySec with the count since the last line
  let lastLog = -Infinity;
  let unlogged = 0;
  const drop = (reason: HepDropReason) => {
    stats.dropped[reason]++;
    o.onDropped?.(reason);
  };
  const failed = (reason: HepDropReason, why: string) => {
    unlogged++;
    const now = Date.now();
    if (now - lastLog < logEveryMs) return;
    o.log?.log('warn', `hep: cannot send to collector ${host}:${port} (${reason}: ${why}); ${unlogged} failure(s) since the last report`);
    lastLog = now;
    unlogged = 0;
  };

  const socketFor = (f: 4 | 6): dgram.Socket => {
    let s = sockets.get(f);
    if (!s) {
      s = dgram.createSocket(f === 6 ? 'udp6' : 'udp4');
      s.unref();
      s.on('error', (e) => failed('send_error', e.message));
      sockets.set(f, s);
    }
    return s;
  };

  const send = (m: HepMessage) => {
    if (closed) return;
    if (address === null) {
      drop('unresolved');
      resolveAgainLater();
      return;
    }
    if (inFlight >= maxInFlight) {
      drop('overload');
      return;
    }
    const datagram = encodeHep(m, agent);
    if (typeof datagram === 'string') {
      drop(datagram);
      return;
    }
    inFlight++;
    try {
      socketFor(family).send(datagram, port, address, (err) => {
        inFlight--;
        if (err) {
          drop('send_error');
          failed('send_error', err.message);
          resolveAgainLater();
        } else {
          stats.sent++;
          o.onSent?.();
        }
      });
    } catch (e) {
      inFlight--;
      drop('send_error');
      failed('send_error', (e as Error).message);
    }
  };

  const ready = resolve();
  return {
    stats,
    ready,
    capture: send,
    async close() {
      closed = true;
      await Promise.all(
        [...sockets.values()].map(
          (s) =>
            new Promise<void>((done) => {
              try {
                s.close(() => done());
              } catch {
                done(); // closed already
              }
            }),
        ),
      );
      sockets.clear();
    },
  };
}
