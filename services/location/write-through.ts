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
 * The trade-off, as with Kamailio's db_mode 1: this process does not see bindings written to the
 * database by OTHER instances (or by Kamailio) until it reopens, so it is an explicit option
 * (`location.mode: write-through`) for a single registrar instance per database, and the runtime
 * does not let SIP worker processes share such a store.
 */
import { createMemoryLocationStore } from './memory';
import type { Binding, BindingQuery, LocationStore } from './types';

export interface WriteThroughOptions {
  /** Rows per `list` page when the inner store has no `all()` (default 1000). */
  loadPageSize?: number;
}

export interface WriteThroughStore extends LocationStore {
  /** Loads the inner store's bindings into memory (once; later calls return the same load). Resolves to how many. */
  open(): Promise<number>;
  all(): Promise<Binding[]>;
}

/** The AoR key; NUL cannot occur in a SIP user or host. */
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

  async function load(): Promise<number> {
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
    try {
      if (before.length) await Promise.all(before);
      return await fn();
    } finally {
      release();
      for (const k of unique) if (tails.get(k) === mine) tails.delete(k);
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

  // ---------------------------------------------------------------- store

  return {
    open: () => ready(),

    async find(username, domain) {
      await ready();
      const key = aorKey(username, domain);
      if (!suspect.has(key)) return mirror.find(username, domain);
      return serialized([`a:${key}`], async () => {
        if (!suspect.has(key)) return mirror.find(username, domain);
        try {
          return await resync(username, domain, key);
        } catch {
          return mirror.find(username, domain); // still suspect: retried by the next find
        }
      });
    },

    async upsert(binding) {
      await ready();
      const key = aorKey(binding.username, binding.domain);
      const keys = [`a:${key}`, `r:${binding.ruid}`];
      const previous = aorOfRuid.get(binding.ruid);
      if (previous !== undefined && previous !== key) keys.push(`a:${previous}`);
      await serialized(keys, async () => {
        try {
          await inner.upsert(binding);
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
      await mirror.close();
      aorOfRuid.clear();
      suspect.clear();
      await inner.close();
    },
  };
}
