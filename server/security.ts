/**
 * The process's brute-force and flood defence (services/guard) wired to its log, its metrics and
 * its SIP threads. One per `sipflow serve` process, in the main thread: the single-thread SIP
 * server calls `drop()` before its front end, the dispatcher (server/sip-threads/host.ts) before
 * each hand-off; failed authentications come back to `guard.authFailure()` from the front ends
 * (worker threads through the thread protocol); lock changes go out to the workers through
 * `onLockChange`. The HTTP API lists and lifts bans through `guard`.
 *
 * Log: one warn line per ban or lock (source, username, reason, count, window, duration; never a
 * credential), one info line per lift. Metrics: sipflow_security_dropped_total{reason},
 * sipflow_security_bans_total{kind,reason}, sipflow_security_active_bans{kind}, all counted here in
 * the main thread (no per-thread sums needed).
 */
import type { Logger } from 'pino';
import { DROP_REASONS, Guard, PASS, type BanEvent, type GuardSettings } from '../services/guard';
import type { Metrics } from './metrics';

export interface Security {
  guard: Guard;
  /** The per-message check: true when the message is to be dropped without an answer (and counted). */
  drop(data: Buffer, address: string): boolean;
  /** Follows locks taken (until in ms) and lifted (until = 0): the SIP workers' copies. Returns the unsubscribe. */
  onLockChange(listener: (username: string, until: number) => void): () => void;
}

export interface SecurityOptions {
  logger: Logger;
  metrics: Metrics;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export function createSecurity(settings: GuardSettings, o: SecurityOptions): Security {
  const { logger, metrics } = o;
  const listeners = new Set<(username: string, until: number) => void>();
  const lockChanged = (username: string, until: number) => {
    for (const l of listeners) {
      try {
        l(username, until);
      } catch (e) {
        logger.error({ err: e }, 'lock change listener failed');
      }
    }
  };
  const onBan = (e: BanEvent) => {
    metrics.securityBans.inc({ kind: e.kind, reason: e.reason });
    const until = new Date(e.until).toISOString();
    if (e.kind === 'source') {
      logger.warn(
        {
          source: e.key,
          username: e.last,
          reason: e.reason,
          count: e.count,
          windowSec: e.windowSec,
          banSec: e.durationSec,
          until,
          ...(e.userAgent !== undefined ? { userAgent: e.userAgent } : {}),
        },
        `SIP source ${e.key} banned for ${e.durationSec} s (${describe(e)})`,
      );
    } else {
      logger.warn(
        { username: e.key, source: e.last, reason: e.reason, count: e.count, windowSec: e.windowSec, lockSec: e.durationSec, until },
        `SIP username locked for ${e.durationSec} s (${describe(e)})`,
      );
      lockChanged(e.key, e.until);
    }
  };
  const guard = new Guard({
    ...settings,
    now: o.now,
    onBan,
    onFirstFailure(source, username) {
      logger.info(
        { source, username },
        `SIP authentication failed${username ? ` for "${username}"` : ''} from ${source} (further failures within ${settings.bans.windowSec} s are counted, not logged)`,
      );
    },
    onLift(kind, key) {
      logger.info(kind === 'source' ? { source: key } : { username: key }, kind === 'source' ? `SIP source ${key} unbanned` : 'SIP username unlocked');
      if (kind === 'user') lockChanged(key, 0);
    },
  });
  metrics.setSecuritySource(() => guard.activeCounts());
  // one labelled counter per verdict, indexed by it (PASS counts nothing)
  const dropped = DROP_REASONS.map((reason) => (reason === '' ? null : metrics.securityDropped.labels({ reason })));
  return {
    guard,
    drop(data, address) {
      const v = guard.check(data, address);
      if (v === PASS) return false;
      dropped[v]!.inc();
      return true;
    },
    onLockChange(l) {
      listeners.add(l);
      return () => {
        listeners.delete(l);
      };
    },
  };
}

function describe(e: BanEvent): string {
  switch (e.reason) {
    case 'auth':
      return `${e.count} failed authentications within ${e.windowSec} s`;
    case 'rate':
      return `over its request rate for ${e.windowSec} s, ${e.count} messages dropped`;
    case 'scanner':
      return `scanner User-Agent "${e.userAgent ?? ''}"`;
  }
}
