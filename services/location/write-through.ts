/**
 * Write-through location store, the equivalent of Kamailio usrloc `db_mode 1`: every binding is
 * kept in memory (a memory store as the mirror) and every write goes to the database first.
 *
 *   - `open()` loads every binding of the inner store (expired ones too) into the mirror; any
 *     operation before it waits for the load (and starts it when nobody has), and a failed load is
 *     retried by the next operation.
 *   - `find`, `list`, `count`, `all` are served from memory: no SQL on the lookup path. `list`/
 *     `count` (administration) show what this process holds, as `kamctl ul show` shows Kamailio's
 *     in-memory usrloc rather than the table.
 *   - `upsert`/`remove` write the inner store FIRST and update the mirror only once that write
 *     succeeded: a binding is durable before the caller (the 200 OK) hears of it, and a failed
 *     write leaves memory unchanged and rejects. Writes to one AoR (and one ruid) run one after the
 *     other, so the mirror applies them in the order the database did.
 *   - A write that failed may still have committed (a timeout or a connection lost after COMMIT):
 *     its AoR is then marked suspect, and the next `find` of it reads the inner store and replaces
 *     the mirror's copy of that AoR. While that read fails too (database still down), `find`
 *     answers from memory, so lookups keep working during an outage.
 *   - `purgeExpired` purges the database, then the mirror, with the SQL and MongoDB stores' rule
 *     (expires <= now; Kamailio's permanent contacts, expires = epoch, are kept).
 *
 * Coherence across instances (beyond Kamailio's db_mode 1, whose instances never learn of each
 * other's changes): with a change feed (services/location/changes.ts), every AoR another writer
 * changed is re-read from the inner store (serialised with this process's writes to it, like the
 * suspect re-read above), so a binding registered or removed through another instance is seen
 * here within the feed's delay. While the feed is down (`lost`), every `find` reads the inner
 * store (db-only behaviour, memory only when that read fails); once it is back (`restored`),
 * every binding is reloaded (`resyncAll`) and memory serves again. A feed announcing `{ all }`
 * (too many AoRs to name, or MongoDB without change streams, on its refresh interval) reloads
 * everything too. Without a feed, other writers' bindings are unseen until a restart (db_mode 1).
 *
 * The reload and concurrent writes: a write (or AoR re-read) running while the reload reads the
 * inner store may land in memory before the reload does; its AoR is marked touched and left out
 * of the reload's replacement, then re-read on its own once the reload is done.
 */
import type { LocationChange, LocationChangeFeed } from './changes';
import { createMemoryLocationStore } from './memory';
import type { Binding, BindingQuery, LocationStore } from './types';

export interface WriteThroughOptions {
  /** Rows per `list` page when the inner store has no `all()` (default 1000). */
  loadPageSize?: number;
  /** Other writers' changes (services/location/changes.ts); started by `open()`. Absent: unseen until a restart. */
  changes?: LocationChangeFeed;
  /** What the coherence machinery says (feed lost, restored, resynchronised). */
  log?: (level: 'info' | 'warn', message: string) => void;
}

export interface WriteThroughStore extends LocationStore {
  /** Starts the change feed, loads the inner store's bindings into memory (once; later calls return the same load). Resolves to how many. */
  open(): Promise<number>;
  all(): Promise<Binding[]>;
}

/** The AoR key; NUL cannot occur in a SIP user or host. */
/** A failed full reload is tried again after this long (lookups read the database meanwhile). */
const RELOAD_RETRY_MS = 2000;

const aorKey = (username: string, domain: string | null) => (domain === null ? username : `${username}\u0000${domain}`);

export function createWriteThroughStore(inner: LocationStore, opts: WriteThroughOptions = {}): WriteThroughStore {
  const pageSize = Math.max(1, opts.loadPageSize ?? 1000);
  const mirror = createMemoryLocationStore();
  /** ruid → AoR key of the bindings in memory (to lock and mark the AoRs a remove touches). */
  const aorOfRuid = new Map<string, string>();
  /** AoRs whose last write failed and may have committed anyway: re-read on the next find. */
  const suspect = new Set<string>();
  let loading: Promise<number> | null = null;
  let closed = false;
  /** The change feed is down: `find` reads the inner store until it is back and memory is reloaded. */
  let feedDown = false;
  /** Memory may miss changes until a full reload succeeds: `find` reads the inner store meanwhile. */
  let stale = false;
  const degraded = () => feedDown || stale;
  /** AoRs written or re-read while a full reload runs (left out of its replacement); null when none runs. */
  let touched: Set<string> | null = null;
  /** AoR keys with a write or re-read in progress (a reload starting now must leave them out too). */
  const inFlight = new Map<string, number>();
  const log = opts.log ?? (() => undefined);

  async function readAll(): Promise<Binding[]> {
    if (inner.all) return inner.all();
    const out: Binding[] = [];
    // Kamailio's permanent contacts (epoch) are "expired" to the query: expired: true keeps them.
    const q: BindingQuery = { limit: pageSize, offset: 0, expired: true, now: new Date() };
    for (;;) {
      const { rows, total } = await inner.list({ ...q, offset: out.length });
      out.push(...rows);
      if (rows.length === 0 || out.length >= total) return out;
    }
  }

  let feedStarted = false;
  async function load(): Promise<number> {
    // listening before reading: a change made between the two is re-read after, never missed
    if (opts.changes && !feedStarted) {
      await opts.changes.start({ changed: onChange, lost: onLost, restored: onRestored });
      feedStarted = true;
      log('info', `location write-through: changes of other instances arrive by ${opts.changes.describe()}`);
    }
    const rows = await readAll();
    for (const b of rows) {
      await mirror.upsert(b);
      aorOfRuid.set(b.ruid, aorKey(b.username, b.domain));
    }
    return rows.length;
  }

  function ready(): Promise<number> {
    if (closed) return Promise.reject(new Error('write-through location store is closed'));
    if (!loading) {
      const current = load();
      loading = current;
      // A failed load (database down at start) is retried by the next operation.
      current.catch(() => {
        if (loading === current) loading = null;
      });
    }
    return loading;
  }

  // ---------------------------------------------------------------- ordering

  /** Tail of the work queued per key (`a:<aor>`, `r:<ruid>`); never rejects. */
  const tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier operation holding any of `keys` (no deadlock: waits only on earlier ones). */
  async function serialized<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const before: Promise<void>[] = [];
    for (const k of unique) {
      const t = tails.get(k);
      if (t) before.push(t);
    }
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    for (const k of unique) tails.set(k, mine);
    const aors = unique.filter((k) => k.startsWith('a:')).map((k) => k.slice(2));
    for (const a of aors) {
      inFlight.set(a, (inFlight.get(a) ?? 0) + 1);
      touched?.add(a);
    }
    try {
      if (before.length) await Promise.all(before);
      return await fn();
    } finally {
      release();
      for (const k of unique) if (tails.get(k) === mine) tails.delete(k);
      for (const a of aors) {
        const n = (inFlight.get(a) ?? 1) - 1;
        if (n > 0) inFlight.set(a, n);
        else inFlight.delete(a);
      }
    }
  }

  /** Replaces the mirror's bindings of one AoR by the inner store's (after an ambiguous failure). */
  async function resync(username: string, domain: string | null, key: string): Promise<Binding[]> {
    const rows = await inner.find(username, domain);
    const fresh = new Set(rows.map((b) => b.ruid));
    const gone = (await mirror.find(username, domain)).map((b) => b.ruid).filter((r) => !fresh.has(r));
    await mirror.remove(gone);
    for (const r of gone) aorOfRuid.delete(r);
    for (const b of rows) {
      await mirror.upsert(b);
      aorOfRuid.set(b.ruid, key);
    }
    suspect.delete(key);
    return mirror.find(username, domain);
  }

  // ---------------------------------------------------------------- other writers' changes

  /** Re-reads one AoR another writer changed; a failed read leaves it suspect (re-read by the next find). */
  function reread(username: string, domain: string | null): Promise<void> {
    const key = aorKey(username, domain);
    return serialized([`a:${key}`], async () => {
      try {
        await resync(username, domain, key);
      } catch {
        suspect.add(key);
      }
    });
  }

  let reloading: Promise<void> | null = null;
  let reloadAgain = false;

  /**
   * Replaces memory by the inner store's bindings, but for the AoRs written or re-read meanwhile
   * (re-read on their own after). One at a time; asked again while running, it runs once more.
   */
  function resyncAll(why: string): Promise<void> {
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    const run = async (): Promise<void> => {
      const started = Date.now();
      touched = new Set(inFlight.keys());
      let rows: Binding[];
      try {
        rows = await readAll();
      } catch (e) {
        touched = null;
        throw e;
      }
      const skip = touched;
      touched = null;
      const fresh = new Map<string, Binding[]>();
      for (const b of rows) {
        const key = aorKey(b.username, b.domain);
        if (skip.has(key)) continue;
        const list = fresh.get(key);
        if (list) list.push(b);
        else fresh.set(key, [b]);
      }
      const gone: string[] = [];
      for (const [ruid, key] of aorOfRuid) if (!skip.has(key) && !fresh.has(key)) gone.push(ruid);
      for (const b of await mirror.all()) {
        const key = aorOfRuid.get(b.ruid);
        const list = key === undefined ? undefined : fresh.get(key);
        if (list && !list.some((x) => x.ruid === b.ruid)) gone.push(b.ruid);
      }
      if (gone.length) await mirror.remove(gone);
      for (const r of gone) aorOfRuid.delete(r);
      for (const [key, list] of fresh) {
        for (const b of list) {
          await mirror.upsert(b);
          aorOfRuid.set(b.ruid, key);
        }
        suspect.delete(key);
      }
      for (const key of skip) {
        const [username, domain] = key.includes('\u0000') ? key.split('\u0000') : [key, null];
        await reread(username, domain);
      }
      log('info', `location write-through: ${rows.length} bindings reloaded (${why}) in ${Date.now() - started} ms`);
    };
    const current = (async () => {
      try {
        do {
          reloadAgain = false;
          await run();
        } while (reloadAgain && !closed);
      } finally {
        reloading = null;
      }
    })();
    reloading = current;
    return current;
  }

  let retryTimer: NodeJS.Timeout | null = null;

  /** Reloads everything; memory serves again once it succeeded, retried every RELOAD_RETRY_MS until then. */
  function reloadUntilDone(why: string): void {
    stale = true;
    resyncAll(why).then(
      () => {
        stale = false;
      },
      (e: Error) => {
        if (closed) return;
        log('warn', `location write-through: reload failed (${e.message}); lookups read the database until it succeeds`);
        if (retryTimer) return;
        retryTimer = setTimeout(() => {
          retryTimer = null;
          if (!closed) reloadUntilDone(why);
        }, RELOAD_RETRY_MS);
        retryTimer.unref();
      },
    );
  }

  function onChange(change: LocationChange): void {
    if (closed) return;
    if ('all' in change) reloadUntilDone('other writers changed the location');
    else for (const a of change.aors) void reread(a.username, a.domain);
  }

  function onLost(reason: string): void {
    if (closed || feedDown) return;
    feedDown = true;
    log('warn', `location write-through: ${reason}; lookups read the database until changes arrive again`);
  }

  function onRestored(): void {
    if (closed) return;
    feedDown = false;
    reloadUntilDone('change notifications are back');
  }

  // ---------------------------------------------------------------- store

  return {
    open: () => ready(),

    async find(username, domain) {
      await ready();
      const key = aorKey(username, domain);
      if (!suspect.has(key) && !degraded()) return mirror.find(username, domain);
      return serialized([`a:${key}`], async () => {
        if (!suspect.has(key) && !degraded()) return mirror.find(username, domain);
        try {
          return await resync(username, domain, key);
        } catch {
          return mirror.find(username, domain); // still suspect: retried by the next find
        }
      });
    },

    async upsert(binding, fresh) {
      await ready();
      const key = aorKey(binding.username, binding.domain);
      const keys = [`a:${key}`, `r:${binding.ruid}`];
      const previous = aorOfRuid.get(binding.ruid);
      if (previous !== undefined && previous !== key) keys.push(`a:${previous}`);
      await serialized(keys, async () => {
        try {
          await inner.upsert(binding, fresh);
        } catch (e) {
          suspect.add(key);
          throw e;
        }
        await mirror.upsert(binding);
        aorOfRuid.set(binding.ruid, key);
      });
    },

    async remove(ruids) {
      if (ruids.length === 0) return 0;
      await ready();
      const aors = new Set<string>();
      for (const r of ruids) {
        const a = aorOfRuid.get(r);
        if (a !== undefined) aors.add(a);
      }
      const keys = [...ruids.map((r) => `r:${r}`), ...[...aors].map((a) => `a:${a}`)];
      return serialized(keys, async () => {
        let n: number;
        try {
          n = await inner.remove(ruids);
        } catch (e) {
          for (const a of aors) suspect.add(a);
          throw e;
        }
        await mirror.remove(ruids);
        for (const r of ruids) aorOfRuid.delete(r);
        // The database's count: it is the durable truth (a row another instance wrote counts too).
        return n;
      });
    },

    async list(q) {
      await ready();
      return mirror.list(q);
    },

    async count(now) {
      await ready();
      return mirror.count(now);
    },

    async purgeExpired(now) {
      await ready();
      const n = await inner.purgeExpired(now);
      // The rule of the SQL and MongoDB stores: expires <= now, except the epoch (permanent contacts).
      // A binding refreshed meanwhile has a later expiry and stays, in the database as here.
      const t = now.getTime();
      const dead = (await mirror.all()).filter((b) => b.expires.getTime() <= t && b.expires.getTime() > 0).map((b) => b.ruid);
      if (dead.length) {
        await mirror.remove(dead);
        for (const r of dead) aorOfRuid.delete(r);
      }
      return n;
    },

    async all() {
      await ready();
      return mirror.all();
    },

    // The database first (other processes' rows of this server_id count), then the mirror.
    async removeByConnection(serverId, connectionId) {
      await ready();
      const n = await inner.removeByConnection(serverId, connectionId);
      const gone = (await mirror.all())
        .filter((b) => b.server_id === serverId && b.connection_id >= 0 && (connectionId === null || b.connection_id === connectionId))
        .map((b) => b.ruid);
      if (gone.length) await this.remove(gone).catch(() => undefined);
      return n;
    },

    async keepalive(serverId, now, after, limit) {
      await ready();
      return mirror.keepalive(serverId, now, after, limit);
    },

    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await opts.changes?.close();
      await mirror.close();
      aorOfRuid.clear();
      suspect.clear();
      await inner.close();
    },
  };
}
