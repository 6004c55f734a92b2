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
 */
import type { AorOwnershipPort, OwnedAor } from '../../engine/ports';
import type { DirectoryPort, DirectoryQuery } from './types';

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

/** `sip:user@domain;p`, `user@domain` or `user` → its user and domain. */
export function parseOwnedAor(raw: string): OwnedAor | null {
  const s = raw
    .trim()
    .replace(/^<|>$/g, '')
    .replace(/^sips?:/i, '');
  if (s === '') return null;
  const at = s.lastIndexOf('@');
  if (at < 0) return { user: s, domain: null };
  const user = s.slice(0, at);
  const domain = s.slice(at + 1).split(/[;:>]/)[0];
  return user ? { user, domain: domain || null } : null;
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
  return {
    rule: `${table}: ${o.usernameColumn ?? 'username'} → ${o.aorColumn ?? 'aor'}`,
    matchDomain: o.matchDomain ?? false,
    async ownedAor(username) {
      const rows = await directory.query({ ...base, conditions: [{ field: usernameField, operator: 'is', value: username }] });
      if (rows.length === 0) return null;
      const aor = rows[0][aorField];
      if (aor === null || aor === undefined || String(aor).trim() === '') return { user: username, domain: null };
      return parseOwnedAor(String(aor));
    },
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
