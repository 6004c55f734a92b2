/**
 * Locked usernames, refused by the digest authentication itself: a locked username never
 * authenticates, whatever its password, and the answer is the one a wrong password gets (the
 * authenticate node challenges again, no stale), so an attacker cannot tell a lock from a miss.
 *
 * Why a port decorator: the engine stays free of I/O and of the guard; the authenticate node
 * asks `ctx.auth.verify()` as always, and the SIP threads give it an AuthPort wrapped by
 * `refuseLockedUsernames()` over whatever knows the locks: the guard itself in the single-thread
 * server, a `LockTable` in each SIP worker thread. The wrapped port still runs the real
 * verification first (same work, same nonce-count bookkeeping, so timing tells nothing either).
 * The HTTP API's /simulate and /execute use the unwrapped port: locks concern SIP only.
 *
 * LockTable layout: lower-cased username → until (ms), kept from the main thread's messages
 * (`set` on each lock, `delete` on each lift, `replace` when a worker starts). Entries expire by
 * their time, checked at lookup (no message at expiry); expired ones are swept when the table
 * grows past `sweepAbove`. Concurrency: one table per thread, written only by its thread's
 * message handler. Limits: a lock reaches a worker one message hop after the failure that caused
 * it (a request already running there may still succeed).
 */
import type { AuthPort, VerifyRequest, VerifyResult } from '../auth/types';

export interface LockedUsernames {
  /** True while `username` (any case) is locked. */
  isLocked(username: string): boolean;
}

/** `auth` whose verify() answers 'bad' for a locked username (other methods unchanged). */
export function refuseLockedUsernames<A extends AuthPort>(auth: A, locks: LockedUsernames): A {
  const wrapped = Object.create(auth) as A;
  wrapped.verify = (req: VerifyRequest): VerifyResult => {
    const r = auth.verify(req);
    return r !== 'bad' && locks.isLocked(req.credentials.username) ? 'bad' : r;
  };
  return wrapped;
}

export class LockTable implements LockedUsernames {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly sweepAbove = 10_000,
  ) {}

  get size(): number {
    return this.until.size;
  }

  /** Locks `username` until `until` (ms); 0 or a past time unlocks. */
  set(username: string, until: number): void {
    const key = username.toLowerCase();
    if (until <= this.now()) {
      this.until.delete(key);
      return;
    }
    this.until.set(key, until);
    if (this.until.size > this.sweepAbove) this.sweep();
  }

  delete(username: string): void {
    this.until.delete(username.toLowerCase());
  }

  replace(entries: Iterable<readonly [string, number]>): void {
    this.until.clear();
    for (const [u, t] of entries) this.set(u, t);
  }

  isLocked(username: string): boolean {
    if (this.until.size === 0) return false;
    const key = username.toLowerCase();
    const t = this.until.get(key);
    if (t === undefined) return false;
    if (t > this.now()) return true;
    this.until.delete(key);
    return false;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, t] of this.until) if (t <= now) this.until.delete(k);
  }
}
