/**
 * Admission of inbound SIP TCP connections: a cap in total and a cap per source address, so that
 * one client (or a botnet) cannot take every file descriptor of the process: the HTTP API, the
 * health checks, the stores and the logs need theirs too. A refused connection is reset at once
 * (no byte read, no timer, no state kept).
 *
 * One `TcpGate` per process, shared by every listener's transports: the total is the process's.
 * Outgoing connections (relays to TCP targets) are not counted: they are bounded by the relays.
 * Sources for which `isTrusted` answers true (security.trustedSources: SBCs, trunks) are exempt
 * from the per-source cap, never from the total.
 *
 * Concurrency: none; owned by the thread that holds the connections (the main thread).
 */
import { readFileSync } from 'node:fs';

export type TcpRefusal = 'max_connections' | 'max_per_source';

export interface TcpGateOptions {
  /** Accepted connections open at once, all sources together. */
  maxConnections: number;
  /** Accepted connections open at once from one source address (trusted sources exempt). */
  maxPerSource: number;
  isTrusted?: (address: string) => boolean;
  /** A connection was refused (reset at once). */
  onRefused?: (reason: TcpRefusal, address: string) => void;
  /** The number of accepted connections open changed. */
  onChange?: (open: number) => void;
}

export class TcpGate {
  private total = 0;
  private readonly perSource = new Map<string, number>();

  constructor(readonly o: TcpGateOptions) {}

  /** Accepted connections open now. */
  get open(): number {
    return this.total;
  }

  /** Open connections from one source. */
  from(address: string): number {
    return this.perSource.get(address) ?? 0;
  }

  /**
   * Takes a slot for a connection accepted from `address`, or says why it must be refused.
   * Every admitted connection must be `release`d exactly once when it closes.
   */
  admit(address: string): TcpRefusal | null {
    let refusal: TcpRefusal | null = null;
    const n = this.perSource.get(address) ?? 0;
    if (this.total >= this.o.maxConnections) refusal = 'max_connections';
    else if (n >= this.o.maxPerSource && !(this.o.isTrusted?.(address) ?? false)) refusal = 'max_per_source';
    if (refusal !== null) {
      this.o.onRefused?.(refusal, address);
      return refusal;
    }
    this.perSource.set(address, n + 1);
    this.total++;
    this.o.onChange?.(this.total);
    return null;
  }

  release(address: string): void {
    const n = this.perSource.get(address);
    if (n === undefined) return;
    if (n <= 1) this.perSource.delete(address);
    else this.perSource.set(address, n - 1);
    this.total--;
    this.o.onChange?.(this.total);
  }
}

/**
 * The soft limit on open files of this process (RLIMIT_NOFILE), from /proc/self/limits; null when
 * unknown (not Linux) or unlimited.
 */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || !/^\d+$/.test(m[1])) return null;
  return Number(m[1]);
}

/**
 * The connection cap actually applied: at most half of the open-file limit, so that the HTTP
 * server, the stores, the worker threads and the logs keep descriptors when SIP connections are
 * at their cap. `limit` null = unknown: the configured value.
 */
export function effectiveMaxConnections(configured: number, limit: number | null): number {
  if (limit === null) return configured;
  return Math.max(1, Math.min(configured, Math.floor(limit / 2)));
}
