/**
 * In-memory LocationStore: AoR → (ruid → Binding), plus a ruid → AoR index so `remove` is O(1)
 * per ruid. Used by tests, the simulator and the in-memory benchmark against Kamailio, so every
 * operation touches only the AoR concerned (purge, by nature, scans everything).
 */
import type { Binding, LocationStore } from './types';

/** The AoR key; the NUL separator cannot occur in a SIP user or host, so keys never collide. */
function aorKey(username: string, domain: string | null): string {
  return domain === null ? username : `${username}\u0000${domain}`;
}

export function createMemoryLocationStore(): LocationStore {
  const byAor = new Map<string, Map<string, Binding>>();
  const aorOfRuid = new Map<string, string>();

  function removeOne(ruid: string): void {
    const key = aorOfRuid.get(ruid);
    if (key === undefined) return;
    aorOfRuid.delete(ruid);
    const set = byAor.get(key);
    if (!set) return;
    set.delete(ruid);
    if (set.size === 0) byAor.delete(key);
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

    async upsert(binding) {
      const key = aorKey(binding.username, binding.domain);
      const previous = aorOfRuid.get(binding.ruid);
      // A ruid moving to another AoR must not linger under the old one.
      if (previous !== undefined && previous !== key) removeOne(binding.ruid);
      let set = byAor.get(key);
      if (!set) { set = new Map(); byAor.set(key, set); }
      set.set(binding.ruid, { ...binding });
      aorOfRuid.set(binding.ruid, key);
    },

    async remove(ruids) {
      for (const r of ruids) removeOne(r);
    },

    async purgeExpired(now) {
      const t = now.getTime();
      let n = 0;
      for (const [key, set] of byAor) {
        for (const [ruid, b] of set) {
          // Same boundary as the registrar's liveness test: live means expires > now.
          if (b.expires.getTime() <= t) { set.delete(ruid); aorOfRuid.delete(ruid); n++; }
        }
        if (set.size === 0) byAor.delete(key);
      }
      return n;
    },

    async close() {
      byAor.clear();
      aorOfRuid.clear();
    },
  };
}
