/**
 * In-memory LocationStore: AoR → (ruid → Binding), plus a ruid → AoR index so `remove` is O(1)
 * per ruid. Used by tests, the simulator and the in-memory benchmark against Kamailio, so every
 * operation touches only the AoR concerned (purge, by nature, scans everything).
 */
import { detached, flattened } from '../../engine/detached';
import { splitAor, type Binding, type LocationStore } from './types';

const keep = (s: string | null): string | null => (s === null ? null : detached(s));

/**
 * The stored copy of a binding: its strings were cut from the REGISTER, and a binding lives for
 * its expires (an hour, typically); detached, they no longer keep the whole request in memory.
 */
function stored(b: Binding): Binding {
  return {
    ...b,
    ruid: detached(b.ruid),
    username: detached(b.username),
    domain: keep(b.domain),
    contact: detached(b.contact),
    received: keep(b.received),
    path: keep(b.path),
    callid: detached(b.callid),
    user_agent: detached(b.user_agent),
    socket: keep(b.socket),
    instance: keep(b.instance),
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
      const binding = stored(b);
      const key = aorKey(binding.username, binding.domain);
      const previous = aorOfRuid.get(binding.ruid);
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
