/**
 * Location service: the registrar (RFC 3261 §10.3, services/location/registrar.ts) implements the
 * engine's LocationPort (engine/ports.ts) above a store; stores (memory, SQL, MongoDB) only
 * persist bindings in Kamailio's usrloc schema v9.
 */
import { ServiceUnavailableError, type Binding } from '../../engine/ports';

export type { Binding, LocationPort, RegisterRequest, RegisterResult } from '../../engine/ports';

/** A location store cannot answer now: the engine's 503 + Retry-After (engine/ports.ts). */
export class LocationUnavailableError extends ServiceUnavailableError {}

/** A search over bindings across AoRs (administration: API, designer, operators). */
export interface BindingQuery {
  /** Exact AoR: `user` or `user@domain` (single-domain bindings, domain null, match any domain). */
  aor?: string;
  /** Case-insensitive substring of the username. */
  search?: string;
  limit: number;
  offset: number;
  /** Include expired bindings not yet purged. */
  expired?: boolean;
  now: Date;
}

/** `sip:user@domain`, `user@domain` or `user` → username and domain (null when absent). */
export function splitAor(aor: string): { username: string; domain: string | null } {
  const bare = aor.replace(/^sips?:/i, '');
  const i = bare.lastIndexOf('@');
  if (i < 0) return { username: bare, domain: null };
  return { username: bare.slice(0, i), domain: bare.slice(i + 1) };
}

/** Persistence beneath the registrar; adapters implement this. */
export interface LocationStore {
  /**
   * Bindings of an AoR including expired ones (the registrar filters). The SQL and MongoDB stores
   * return the newest MAX_BINDINGS_CONSIDERED (services/location/dedupe.ts) of an AoR that holds more.
   */
  find(username: string, domain: string | null): Promise<Binding[]>;
  /**
   * Inserts or replaces the binding with the same ruid. Resolves only once durable. `fresh`: the
   * registrar has just made this ruid (services/location/registrar.ts), so no record holds it and a
   * store may insert without looking for one (MongoDB: insertOne rather than an upserting
   * replaceOne, which is a query and a write on FerretDB); a store that finds one anyway replaces it.
   */
  upsert(binding: Binding, fresh?: boolean): Promise<void>;
  /** Deletes bindings by ruid; resolves to how many existed. */
  remove(ruids: string[]): Promise<number>;
  /** Bindings across AoRs matching the query, ordered by username then ruid, and the total. */
  list(q: BindingQuery): Promise<{ rows: Binding[]; total: number }>;
  /** Live bindings (expires > now). */
  count(now: Date): Promise<number>;
  /** Deletes bindings that expired before `now`; returns how many. */
  purgeExpired(now: Date): Promise<number>;
  /**
   * Deletes the bindings of server `serverId` tied to stream connection `connectionId` (Kamailio's
   * handle_lost_tcp), or to any connection when null (a restart: no connection survives it);
   * returns how many. Uses `location_connection_idx` (server_id, connection_id) in SQL.
   */
  removeByConnection(serverId: number, connectionId: number | null): Promise<number>;
  /**
   * Live bindings server `serverId` keeps alive (`keepalive` = 1), ruid after `after`, in ruid
   * order, at most `limit`: the keepalive loop pages through them (server/keepalive.ts).
   */
  keepalive(serverId: number, now: Date, after: string, limit: number): Promise<Binding[]>;
  /**
   * Every binding, expired ones included, in no particular order: what a write-through cache
   * loads when it opens (services/location/write-through.ts). Optional: without it the cache pages
   * through `list`.
   */
  all?(): Promise<Binding[]>;
  close(): Promise<void>;
}
