/**
 * AoR ownership over the directory (engine `AorOwnershipPort`): which AoR an authenticated
 * username may register for. The registrar note's schema holds the tie already —
 * `registration.customers.username` (the digest username) and `registration.customers.aor`
 * (`francesco@nl.netaxis.be`) — but nothing read it, so any subscriber's credentials could
 * register, refresh or remove any AoR (Kamailio answers such a REGISTER 401 with
 * `auth_check(..., 1)`).
 *
 * One indexed lookup by username per authenticated REGISTER, through the directory port, so it
 * shares the directory's cache (`directory.cacheSec`) and statement coalescing. An empty `aor`
 * column means the username itself is the AoR user (Kamailio's To-user = auth-user rule); an
 * unknown username owns nothing.
 *
 * Usually that row was read a moment before, by the logic's own query for the password (the seed's
 * "retrieve password": `customers.username is authUsername`). `alongside` lets that query read the
 * `aor` column too, as Kamailio's auth_db loads extra subscriber columns with the password
 * (`load_credentials`), and the save then takes the answer from those rows (nodes/query-database.ts,
 * nodes/save-location.ts): one directory read per authenticated REGISTER instead of two, which on
 * PostgreSQL without a cache is one statement and one thread hand-off less per call. Only a query
 * that reads exactly this rule's row qualifies (the same table alone, one `is` condition on the
 * username column, no offset), only for the username it read, and only rows read from the
 * directory, not from a query node's own cache, so the answer is the one ownedAor would read.
 */
import { queryOf, type AorOwnershipPort, type OwnedAor, type RecordRow } from '../../engine/ports';
import type { DirectoryPort, DirectoryQuery } from './types';
import { aorText } from '../../grammar/aor';

export interface AorOwnershipOptions {
  /** `schema.table` holding the tie (default `registration.customers`). */
  table?: string;
  /** Column matched against the digest username (default `username`). */
  usernameColumn?: string;
  /** Column holding the owned AoR, `user`, `user@domain` or `sip:user@domain` (default `aor`). */
  aorColumn?: string;
  /** Compare the AoR domain too (multi-domain registrars). */
  matchDomain?: boolean;
}

/** `sip:user@domain;p`, `user@domain` or `user` → its user and domain (grammar/aor.ts); null without a user. */
export function parseOwnedAor(raw: string): OwnedAor | null {
  const [user, domain] = aorText(raw);
  return user === null ? null : { user, domain };
}

export function createAorOwnership(directory: DirectoryPort, o: AorOwnershipOptions = {}): AorOwnershipPort {
  const table = o.table ?? 'registration.customers';
  const short = table.slice(table.lastIndexOf('.') + 1);
  const usernameField = `${short}.${o.usernameColumn ?? 'username'}`;
  const aorField = `${short}.${o.aorColumn ?? 'aor'}`;
  const base: Omit<DirectoryQuery, 'conditions'> = {
    tables: [table],
    fields: [aorField],
    joins: [],
    joinType: 'JOIN',
    logic: 'and',
    orderBy: [],
    offset: 0,
    limit: 1,
  };
  const fromRows = (username: string, rows: readonly RecordRow[]): OwnedAor | null => {
    if (rows.length === 0) return null;
    const aor = rows[0][aorField];
    if (aor === null || aor === undefined || String(aor).trim() === '') return { user: username, domain: null };
    return parseOwnedAor(String(aor));
  };
  return {
    rule: `${table}: ${o.usernameColumn ?? 'username'} → ${o.aorColumn ?? 'aor'}`,
    matchDomain: o.matchDomain ?? false,
    async ownedAor(username) {
      return fromRows(username, await directory.query(queryOf(base, base.fields, [{ field: usernameField, operator: 'is', value: username }])));
    },
    alongside(from, q, conditions) {
      // exactly the row ownedAor reads: another directory, a join, another condition or an offset could select another
      const same =
        from === directory &&
        q.tables.length === 1 &&
        q.tables[0] === table &&
        q.joins.length === 0 &&
        !q.offset &&
        conditions.length === 1 &&
        conditions[0].field === usernameField &&
        conditions[0].operator === 'is';
      if (!same) return null;
      return q.fields.includes(aorField) ? q.fields : [...q.fields, aorField];
    },
    ownedFrom: fromRows,
  };
}

/** `registrar.ownership.mode`: `directory` (the table above), `username` (AoR user = auth username), `off` (no tie). */
export type OwnershipMode = 'directory' | 'username' | 'off';

/** The run context's `ownership` for a configured mode (undefined = the username rule, null = off). */
export function ownershipFor(directory: DirectoryPort, o: AorOwnershipOptions & { mode: OwnershipMode }): AorOwnershipPort | null | undefined {
  if (o.mode === 'off') return null;
  if (o.mode === 'username') return undefined;
  return createAorOwnership(directory, o);
}
