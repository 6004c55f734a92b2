/**
 * One binding per contact of an AoR, whatever the shared location holds.
 *
 * Why: Kamailio 5.6's db_mongodb cannot read back the documents it writes (it leaves empty
 * fields out, then fails "field [received] not found in result iterator" on its own query), so
 * usrloc in db_mode 3 sees no contact and inserts a new document, with a new ruid, on every
 * REGISTER; two Kamailio instances in db_mode 1 (each with its own cache) do the same for a
 * contact registered through both; and MongoDB has no unique ruid index when such duplicates were
 * there before it (mongo.ts prepare()). Read as they are, the 200 OK lists the contact once per
 * copy and the INVITE is forked to it once per copy.
 *
 * Two bindings are the same binding when they share a ruid, or else the same identity as the
 * registrar matches a REGISTER's contact against (registrar.ts `matches`, Kamailio's matching):
 * the flow (+sip.instance and reg-id > 0, RFC 5626: one contact URI can carry several flows), or
 * else the contact string, compared exactly as usrloc's contact matching does. Of each group the
 * newest is kept: last_modified, then expires, then CSeq, then the greater ruid (deterministic
 * across instances). Pure and O(n): the registrar applies it to what a store's find returned
 * (services/location/registrar.ts), for its 200 OK, lookups and forks, and removes what it
 * superseded when it rewrites the AoR.
 *
 * Bounded: at most MAX_BINDINGS_CONSIDERED records of one AoR are considered, the newest ones.
 * A runaway writer (one duplicate per REGISTER, as above: 3,600 an hour for a phone refreshing
 * every second) or a hostile one (100,000 copies of one AoR) must not make each REGISTER and
 * INVITE of that AoR cost 100,000 comparisons and a 200 OK of that many contacts; 5,000 is far
 * above any real AoR (a PBX trunk registers tens) and costs about a millisecond. The registrar
 * removes the superseded copies as it rewrites the AoR, so the excess goes down by up to that
 * many per REGISTER.
 */
import type { Binding } from './types';

export const MAX_BINDINGS_CONSIDERED = 5000;

export interface Deduped {
  /** One binding per identity, the newest, in input order of first appearance. */
  bindings: Binding[];
  /** ruids of superseded copies that no kept binding carries: deleting them deletes only copies. */
  superseded: string[];
  /**
   * Kept ruids that had several records (MongoDB without a unique ruid index): deleting by ruid
   * would take the kept one too; the registrar deletes them only when it writes the ruid again.
   */
  copied: Set<string>;
  /** Records over MAX_BINDINGS_CONSIDERED, left out (the oldest). */
  dropped: number;
}

/** Newer first: last_modified, expires, cseq, then the greater ruid. */
export function newer(a: Binding, b: Binding): number {
  return (
    b.last_modified.getTime() - a.last_modified.getTime() ||
    b.expires.getTime() - a.expires.getTime() ||
    b.cseq - a.cseq ||
    (a.ruid > b.ruid ? -1 : a.ruid < b.ruid ? 1 : 0)
  );
}

/** The registrar's identity of a binding: the flow (RFC 5626) or the contact string. */
export function identityOf(b: Binding): string {
  return b.instance && b.reg_id > 0 ? `f\u0000${b.instance}\u0000${b.reg_id}` : `c\u0000${b.contact}`;
}

export function dedupe(input: readonly Binding[], max = MAX_BINDINGS_CONSIDERED): Deduped {
  let list = input;
  let dropped = 0;
  if (list.length > max) {
    list = [...input].sort(newer).slice(0, max);
    dropped = input.length - max;
  }
  // A lone binding or a few distinct ones, the usual case: nothing to do beyond one pass.
  const byRuid = new Map<string, Binding>();
  const copied = new Set<string>();
  const losers: Binding[] = [];
  for (const b of list) {
    if (b.ruid === '') continue; // no ruid (a row inserted by hand): identity alone decides
    const cur = byRuid.get(b.ruid);
    if (cur === undefined) byRuid.set(b.ruid, b);
    else {
      copied.add(b.ruid);
      if (newer(b, cur) < 0) byRuid.set(b.ruid, b);
    }
  }
  const byIdentity = new Map<string, Binding>();
  for (const b of list) {
    if (b.ruid !== '' && byRuid.get(b.ruid) !== b) continue; // an older copy of the same ruid
    const key = identityOf(b);
    const cur = byIdentity.get(key);
    if (cur === undefined) byIdentity.set(key, b);
    else if (newer(b, cur) < 0) {
      byIdentity.set(key, b);
      losers.push(cur);
    } else losers.push(b);
  }
  const bindings = [...byIdentity.values()];
  if (bindings.length === list.length && dropped === 0) return { bindings, superseded: [], copied, dropped };
  const kept = new Set(bindings.map((b) => b.ruid));
  const superseded = new Set<string>();
  for (const b of losers) if (b.ruid !== '' && !kept.has(b.ruid)) superseded.add(b.ruid);
  for (const r of copied) if (!kept.has(r)) superseded.add(r); // every copy of a ruid that lost as a whole
  return { bindings, superseded: [...superseded], copied: new Set([...copied].filter((r) => kept.has(r))), dropped };
}
