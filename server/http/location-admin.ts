/**
 * Administration of the location service (list, search, delete, count bindings) for the HTTP API.
 * `LocationStore` only offers per-AoR access, which is all the registrar needs; listing across
 * AoRs reads Kamailio's usrloc layout directly — a public, stable contract (schema version 9) the
 * stores are bound to anyway. SQL: the `location` table through knex; MongoDB: the `location`
 * collection through its own client. The in-memory store cannot be listed from outside (it keeps
 * its maps private): listing/deleting answers 501 there.
 */
import { MongoClient, type Collection, type Document } from 'mongodb';
import type { Knex } from 'knex';
import { openDirectory } from '../../services/directory';
import { fromDocument, normalizeMongoUrl } from '../../services/location/mongo';
import type { Binding } from '../../services/location/types';
import type { Config } from '../config';

export interface BindingQuery {
  /** Exact AoR: `user` or `user@domain` (single-domain bindings, domain null, match any domain). */
  aor?: string;
  /** Case-insensitive substring of the username. */
  search?: string;
  limit: number;
  offset: number;
  /** Include expired bindings (not yet purged). */
  expired?: boolean;
  now: Date;
}

export interface LocationAdmin {
  readonly kind: 'sql' | 'mongodb' | 'memory';
  /** False when the store cannot be listed (memory). */
  readonly listable: boolean;
  list(q: BindingQuery): Promise<{ rows: Binding[]; total: number }>;
  /** Deletes one binding; false when no binding has that ruid. */
  remove(ruid: string): Promise<boolean>;
  /** Live bindings, or null when unknown. */
  count(now: Date): Promise<number | null>;
  close(): Promise<void>;
}

export class LocationAdminUnsupportedError extends Error { readonly status = 501; }

function splitAor(aor: string): { username: string; domain: string | null } {
  const bare = aor.replace(/^sips?:/i, '');
  const i = bare.lastIndexOf('@');
  if (i < 0) return { username: bare, domain: null };
  return { username: bare.slice(0, i), domain: bare.slice(i + 1) };
}

const likeEscape = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

// ---------------------------------------------------------------- SQL (Kamailio's location table)

const COLUMNS = [
  'ruid', 'username', 'domain', 'contact', 'received', 'path', 'expires', 'q', 'callid', 'cseq',
  'last_modified', 'flags', 'cflags', 'user_agent', 'socket', 'methods', 'instance', 'reg_id',
  'server_id', 'connection_id', 'keepalive', 'partition',
];

/** Same conventions as services/location/sql.ts: local-time timestamps without zone. */
function sqlTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} `
    + `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
function toDate(v: unknown): Date {
  if (v instanceof Date) return v;
  if (v !== null && typeof v === 'object' && typeof (v as Date).getTime === 'function') return new Date((v as Date).getTime());
  return new Date(String(v));
}
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
function fromRow(r: Record<string, unknown>): Binding {
  return {
    ruid: String(r.ruid), username: String(r.username), domain: (r.domain as string | null) ?? null,
    contact: String(r.contact), received: (r.received as string | null) ?? null, path: (r.path as string | null) ?? null,
    expires: toDate(r.expires), q: Math.round(Number(r.q) * 1000) / 1000, callid: String(r.callid), cseq: Number(r.cseq),
    last_modified: toDate(r.last_modified), flags: Number(r.flags), cflags: Number(r.cflags), user_agent: String(r.user_agent),
    socket: (r.socket as string | null) ?? null, methods: numOrNull(r.methods), instance: (r.instance as string | null) ?? null,
    reg_id: Number(r.reg_id), server_id: Number(r.server_id), connection_id: Number(r.connection_id),
    keepalive: Number(r.keepalive), partition: Number(r.partition),
  };
}

export function createSqlLocationAdmin(knex: Knex, onClose: () => Promise<void> = async () => undefined): LocationAdmin {
  function filtered(q: Omit<BindingQuery, 'limit' | 'offset'>) {
    const b = knex('location');
    if (q.aor) {
      const { username, domain } = splitAor(q.aor);
      b.where({ username });
      if (domain !== null) b.andWhere((w) => w.where({ domain }).orWhereNull('domain'));
    }
    if (q.search) b.andWhereILike('username', likeEscape(q.search));
    if (!q.expired) b.andWhere('expires', '>', sqlTimestamp(q.now));
    return b;
  }
  return {
    kind: 'sql',
    listable: true,
    async list(q) {
      const [{ total }] = await filtered(q).clone().count({ total: '*' }) as Array<{ total: string | number }>;
      const rows = await filtered(q).select(COLUMNS).orderBy([{ column: 'username' }, { column: 'ruid' }]).limit(q.limit).offset(q.offset) as Array<Record<string, unknown>>;
      return { rows: rows.map(fromRow), total: Number(total) };
    },
    async remove(ruid) {
      const gone = await knex('location').where({ ruid }).delete().returning('ruid') as unknown[];
      return Array.isArray(gone) ? gone.length > 0 : Number(gone) > 0;
    },
    async count(now) {
      const [{ n }] = await knex('location').where('expires', '>', sqlTimestamp(now)).count({ n: '*' }) as Array<{ n: string | number }>;
      return Number(n);
    },
    close: onClose,
  };
}

// ---------------------------------------------------------------- MongoDB (Kamailio's db_mongodb layout)

export function createMongoLocationAdmin(o: { url: string; database?: string; collection?: string }): LocationAdmin {
  const norm = normalizeMongoUrl(o.url);
  let client: MongoClient | null = null;
  const coll = (): Collection => {
    client ??= new MongoClient(norm.url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000, socketTimeoutMS: 5000 });
    return client.db(o.database ?? norm.database ?? 'kamailio').collection(o.collection ?? 'location');
  };
  const filter = (q: Omit<BindingQuery, 'limit' | 'offset'>): Document => {
    const f: Document = {};
    if (q.aor) {
      const { username, domain } = splitAor(q.aor);
      f.username = username;
      if (domain !== null) f.domain = { $in: [domain, null] };
    }
    if (q.search) f.username = q.aor ? f.username : { $regex: q.search.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), $options: 'i' };
    if (!q.expired) f.expires = { $gt: q.now };
    return f;
  };
  return {
    kind: 'mongodb',
    listable: true,
    async list(q) {
      const c = coll();
      const f = filter(q);
      const [rows, total] = await Promise.all([
        c.find(f).sort({ username: 1, ruid: 1 }).skip(q.offset).limit(q.limit).toArray(),
        c.countDocuments(f),
      ]);
      return { rows: rows.map(fromDocument), total };
    },
    async remove(ruid) { return (await coll().deleteOne({ ruid })).deletedCount > 0; },
    async count(now) { return coll().countDocuments({ expires: { $gt: now } }); },
    async close() { await client?.close(); client = null; },
  };
}

// ---------------------------------------------------------------- memory

export function createUnlistableLocationAdmin(): LocationAdmin {
  const no = () => new LocationAdminUnsupportedError(
    'the in-memory location store cannot be listed or edited from outside (it lacks LocationStore.list/remove by ruid across AoRs); use location.url "sql", postgres://… or mongodb://…');
  return {
    kind: 'memory',
    listable: false,
    list: async () => { throw no(); },
    remove: async () => { throw no(); },
    count: async () => null,
    close: async () => undefined,
  };
}

/** The admin matching `location.url` of the config; `directoryKnex` serves the `sql` case. */
export function locationAdminFor(config: Pick<Config, 'location'>, directoryKnex: Knex): LocationAdmin {
  const url = config.location.url;
  if (url === 'sql') return createSqlLocationAdmin(directoryKnex);
  if (url === 'memory') return createUnlistableLocationAdmin();
  if (/^mongodb(\+srv)?:\/\//i.test(url)) return createMongoLocationAdmin({ url, database: config.location.database, collection: config.location.collection });
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const knex = openDirectory(url, { poolMax: 2 });
    return createSqlLocationAdmin(knex, () => knex.destroy());
  }
  return createUnlistableLocationAdmin();
}
