/**
 * In-memory LocationStore: AoR → (ruid → Binding), plus a ruid → AoR index so `remove` is O(1)
 * per ruid. Used by tests, the simulator and the in-memory benchmark against Kamailio, so every
 * operation touches only the AoR concerned (purge, by nature, scans everything).
 */
import { detached, flattened } from '../../engine/detached';
import { splitAor, type Binding, type LocationStore } from './types';

const keep = (s: string | null): string | null => (s === null ? null : detached(s));
/** The stored copy of a string: the previous binding's own when equal (a refresh names the same contact, Call-ID, agent), else a detached copy. */
const same = (s: string, was: string | undefined): string => (s === was ? was : detached(s));
const sameOrNull = (s: string | null, was: string | null | undefined): string | null => (s === was ? was : keep(s));

/**
 * The stored copy of a binding: its strings were cut from the REGISTER, and a binding lives for
 * its expires (an hour, typically); detached, they no longer keep the whole request in memory.
 * `was`: the binding it replaces, whose (detached) strings are kept where they are the same.
 */
function stored(b: Binding, was: Binding | undefined): Binding {
  return {
    ...b,
    ruid: same(b.ruid, was?.ruid),
    username: same(b.username, was?.username),
    domain: sameOrNull(b.domain, was?.domain),
    contact: same(b.contact, was?.contact),
    received: sameOrNull(b.received, was?.received),
    path: sameOrNull(b.path, was?.path),
    callid: same(b.callid, was?.callid),
    user_agent: same(b.user_agent, was?.user_agent),
    socket: sameOrNull(b.socket, was?.socket),
    instance: sameOrNull(b.instance, was?.instance),
  };
}

/** The AoR key; the NUL separator cannot occur in a SIP user or host, so keys never collide. */
function aorKey(username: string, domain: string | null): string {
  return domain === null ? username : flattened(`${username}\u0000${domain}`);
}

export function createMemoryLocationStore(): LocationStore & { all(): Promise<Binding[]> } {
  const byAor = new Map<string, Map<string, Binding>>();
  const aorOfRuid = new Map<string, string>();

  function removeOne(ruid: string): boolean {
    const key = aorOfRuid.get(ruid);
    if (key === undefined) return false;
    aorOfRuid.delete(ruid);
    const set = byAor.get(key);
    if (!set) return true;
    set.delete(ruid);
    if (set.size === 0) byAor.delete(key);
    return true;
  }

  return {
    async find(username, domain) {
      const set = byAor.get(aorKey(username, domain));
      if (!set) return [];
      // Shallow copies: callers (nodes, tests) must not be able to alter the stored rows.
      const out: Binding[] = [];
      for (const b of set.values()) out.push({ ...b });
      return out;
    },

    async upsert(b) {
      const previous = aorOfRuid.get(b.ruid);
      const binding = stored(b, previous === undefined ? undefined : byAor.get(previous)?.get(b.ruid));
      // keyed by the stored (detached) strings: a key cut from the request would keep it alive
      const key = aorKey(binding.username, binding.domain);
      // A ruid moving to another AoR must not linger under the old one.
      if (previous !== undefined && previous !== key) removeOne(binding.ruid);
      let set = byAor.get(key);
      if (!set) {
        set = new Map();
        byAor.set(key, set);
      }
      set.set(binding.ruid, binding);
      aorOfRuid.set(binding.ruid, key);
    },

    async remove(ruids) {
      let n = 0;
      for (const r of ruids) if (removeOne(r)) n++;
      return n;
    },

    async list(q) {
      const t = q.now.getTime();
      const aor = q.aor ? splitAor(q.aor) : null;
      const search = q.search?.toLowerCase();
      const matches: Binding[] = [];
      for (const set of byAor.values()) {
        for (const b of set.values()) {
          if (aor && (b.username !== aor.username || (aor.domain !== null && b.domain !== null && b.domain !== aor.domain))) continue;
          if (!aor && search && !b.username.toLowerCase().includes(search)) continue;
          if (!q.expired && b.expires.getTime() <= t) continue;
          matches.push(b);
        }
      }
      matches.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : a.ruid < b.ruid ? -1 : a.ruid > b.ruid ? 1 : 0));
      return { rows: matches.slice(q.offset, q.offset + q.limit).map((b) => ({ ...b })), total: matches.length };
    },

    async count(now) {
      const t = now.getTime();
      let n = 0;
      for (const set of byAor.values()) for (const b of set.values()) if (b.expires.getTime() > t) n++;
      return n;
    },

    async purgeExpired(now) {
      const t = now.getTime();
      let n = 0;
      for (const [key, set] of byAor) {
        for (const [ruid, b] of set) {
          // Same boundary as the registrar's liveness test: live means expires > now.
          if (b.expires.getTime() <= t) {
            set.delete(ruid);
            aorOfRuid.delete(ruid);
            n++;
          }
        }
        if (set.size === 0) byAor.delete(key);
      }
      return n;
    },

    async removeByConnection(serverId, connectionId) {
      const gone: string[] = [];
      for (const set of byAor.values())
        for (const b of set.values())
          if (b.server_id === serverId && b.connection_id >= 0 && (connectionId === null || b.connection_id === connectionId)) gone.push(b.ruid);
      for (const r of gone) removeOne(r);
      return gone.length;
    },

    async keepalive(serverId, now, after, limit) {
      const t = now.getTime();
      const due: Binding[] = [];
      for (const set of byAor.values())
        for (const b of set.values()) if (b.server_id === serverId && b.keepalive === 1 && b.ruid > after && b.expires.getTime() > t) due.push(b);
      due.sort((a, b) => (a.ruid < b.ruid ? -1 : a.ruid > b.ruid ? 1 : 0));
      return due.slice(0, limit).map((b) => ({ ...b }));
    },

    async all() {
      const out: Binding[] = [];
      for (const set of byAor.values()) for (const b of set.values()) out.push({ ...b });
      return out;
    },

    async close() {
      byAor.clear();
      aorOfRuid.clear();
    },
  };
}
