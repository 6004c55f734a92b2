/**
 * `sip.tcp.*` → the transports' TCP defences (and `sip.tls` → the secure transports' settings,
 * `sip.websocket.trustedProxies` → whose X-Forwarded-For WebSocket handshakes believe), for the
 * thread that holds the stream connections (the main thread: `sipflow serve` with one SIP thread,
 * or the dispatcher with worker threads). WebSocket connections share the TCP gate.
 *
 * One gate for the process (every listener shares its caps), counted in `sipflow_tcp_*`. Refusals
 * are logged at most once per 10 s per reason (a flood must not become a log flood): the first at
 * once, then a summary with the count and the busiest source.
 */
import type { Logger } from 'pino';
import { parseTrusted, normalizeAddress } from '../services/guard/trusted';
import { TcpGate, effectiveMaxConnections, openFileLimit, type TcpRefusal } from '../sip/tcp-limits';
import type { TransportOptions } from '../sip/transport';
import type { Config } from './config';
import type { Metrics } from './metrics';

export type SipTcpOptions = Required<Pick<TransportOptions, 'tcpIdleTimeoutMs' | 'tcpMessageTimeoutMs' | 'tcpGate' | 'onTcpClosed' | 'tls'>> &
  Pick<TransportOptions, 'trustedProxy'>;

const LOG_EVERY_MS = 10_000;

export function sipTcpOptions(config: Config, o: { logger?: Logger; metrics?: Metrics; openFiles?: number | null } = {}): SipTcpOptions {
  const t = config.sip.tcp;
  const limit = o.openFiles !== undefined ? o.openFiles : openFileLimit();
  const max = effectiveMaxConnections(t.maxConnections, limit);
  if (max < t.maxConnections) {
    o.logger?.info(
      { configured: t.maxConnections, applied: max, openFileLimit: limit },
      'sip.tcp.maxConnections lowered to half of the open-file limit (raise ulimit -n to accept more)',
    );
  }
  const trusted = config.security.trustedSources.length ? parseTrusted(config.security.trustedSources) : null;
  const isTrusted =
    trusted === null
      ? undefined
      : (address: string) => {
          const a = normalizeAddress(address);
          return trusted.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
        };

  // X-Forwarded-For of WebSocket handshakes: believed from trusted sources and the configured proxies
  const proxies = [...config.security.trustedSources, ...config.sip.websocket.trustedProxies];
  const proxyList = proxies.length ? parseTrusted(proxies) : null;
  const trustedProxy =
    proxyList === null
      ? undefined
      : (address: string) => {
          const a = normalizeAddress(address);
          return proxyList.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
        };

  const pending = new Map<TcpRefusal, { count: number; bySource: Map<string, number>; lastLog: number }>();
  const onRefused = (reason: TcpRefusal, address: string) => {
    o.metrics?.tcpRefused.inc({ reason });
    if (!o.logger) return;
    const now = Date.now();
    let p = pending.get(reason);
    if (!p) {
      p = { count: 0, bySource: new Map(), lastLog: 0 };
      pending.set(reason, p);
    }
    p.count++;
    if (p.bySource.size < 1000 || p.bySource.has(address)) p.bySource.set(address, (p.bySource.get(address) ?? 0) + 1);
    if (now - p.lastLog < LOG_EVERY_MS) return;
    let top = address;
    let topCount = 0;
    for (const [a, c] of p.bySource)
      if (c > topCount) {
        top = a;
        topCount = c;
      }
    o.logger.warn(
      { reason, refused: p.count, source: top, fromSource: topCount, open: gate.open, maxConnections: max, maxPerSource: t.maxConnectionsPerSource },
      `SIP TCP connections refused (${reason === 'max_connections' ? 'sip.tcp.maxConnections' : 'sip.tcp.maxConnectionsPerSource'} reached)`,
    );
    p.count = 0;
    p.bySource.clear();
    p.lastLog = now;
  };
  const timeouts = { count: 0, last: '', lastLog: 0 };
  const gate = new TcpGate({
    maxConnections: max,
    maxPerSource: t.maxConnectionsPerSource,
    isTrusted,
    onRefused,
    onChange: o.metrics ? (open) => o.metrics!.tcpConnections.set(open) : undefined,
  });
  return {
    tls: config.sip.tls,
    trustedProxy,
    tcpIdleTimeoutMs: t.idleTimeoutSec * 1000,
    tcpMessageTimeoutMs: t.messageTimeoutMs,
    tcpGate: gate,
    onTcpClosed: (reason, address) => {
      o.metrics?.tcpClosed.inc({ reason });
      if (reason !== 'message_timeout' || !o.logger) return;
      const now = Date.now();
      timeouts.count++;
      timeouts.last = address;
      if (now - timeouts.lastLog < LOG_EVERY_MS) return;
      o.logger.warn(
        { closed: timeouts.count, source: address, messageTimeoutMs: t.messageTimeoutMs },
        'SIP TCP connections closed: message not complete within sip.tcp.messageTimeoutMs',
      );
      timeouts.count = 0;
      timeouts.lastLog = now;
    },
  };
}
