/**
 * MongoDB LocationStore in Kamailio's db_mongodb usrloc layout (schema version 9), so Kamailio and
 * sipflow can share one `kamailio.location` collection on the `sre_location` replica set.
 *
 * A document, field for field and in Kamailio's order (the registrar technical note's `db.location.find()`; see docs/data.md):
 *   username, contact, expires (Date), q (double), callid, cseq, flags, cflags, user_agent,
 *   received, path, socket, methods, last_modified (Date), ruid, instance, reg_id, server_id,
 *   connection_id, keepalive, partition [, domain — only with multi-domain AoRs, appended last
 *   as usrloc does]. Every field is written; empty ones as null, never omitted.
 * Documents are read through services/location/tolerant.ts: Kamailio's own db_mongodb omits the
 * empty fields, and one unreadable document is skipped with a note, not a failed find.
 */
import { Double, Int32, MongoBulkWriteError, MongoClient, MongoError, MongoServerError } from 'mongodb';
import type { Collection, Db, Document, IndexDescription, MongoClientOptions, WriteConcernSettings } from 'mongodb';
import { createBatcher, type Batcher } from './batcher';
import { MAX_BINDINGS_CONSIDERED } from './dedupe';
import { limitNotes, readBinding, readBindings } from './tolerant';
import { LocationUnavailableError, splitAor } from './types';
import type { Binding, LocationStore } from './types';

export interface MongoLocationOptions {
  /** e.g. the note's `mongodb://h1,h2,h3/kamailio?replicaSet=sre_location&readPreference=primaryPreferred`. */
  url: string;
  /** Database when the URL path names none (the URL's wins, as in Kamailio's DBURL); default `kamailio`. */
  database?: string;
  collection?: string;
  /** Default `{ w: 'majority', wtimeoutMS: 5000 }`: a binding is acknowledged once a majority has it. */
  writeConcern?: WriteConcernSettings;
  /** How long an operation waits for a usable server before failing (default 2000 ms). */
  serverSelectionTimeoutMS?: number;
  /** How long an operation waits on a silent socket before failing (default 5000 ms). */
  socketTimeoutMS?: number;
  /**
   * Receives notes: about the URL (the dropped `slaveOk`), documents skipped as unreadable
   * ("skipped location document _id "…": no contact", services/location/tolerant.ts; at most 20 a
   * minute), the ruid index fallback, and the write batches chosen for FerretDB (writeDefaults).
   */
  onNote?: (message: string) => void;
  /** Upsert batches (one unordered bulkWrite each) running at once; default by server (writeDefaults). */
  maxInFlight?: number;
  /** The most upserts one batch carries; default by server (writeDefaults; 1: each its own command). */
  maxBatch?: number;
}

/**
 * How many writes a command carries and how many commands run at once, unless configured
 * (location.writeBatch, location.writesInFlight "auto"), from the server's buildInfo at connect.
 * MongoDB: batches of up to 500, 4 at once, as a batch is one round trip and one write-concern
 * wait. FerretDB (its buildInfo carries `ferretdbVersion`): one write a command, 16 at once. Its
 * update command runs a batch's statements one after another and each replacing statement holds
 * a PostgreSQL connection until the command returns, so batches of refreshes grew FerretDB 1.24 to
 * its whole pool within seconds and it stopped answering (docs/benchmarks.md, "Refreshes in
 * batches"); Kamailio's usrloc sends one statement a command too.
 */
export function writeDefaults(buildInfo: Document | null): { maxBatch: number; maxInFlight: number; ferretdb: string | null } {
  // (bounded: it goes into a log line)
  const ferretdb = typeof buildInfo?.ferretdbVersion === 'string' ? buildInfo.ferretdbVersion.slice(0, 40) : null;
  return ferretdb !== null ? { maxBatch: 1, maxInFlight: 16, ferretdb } : { maxBatch: 500, maxInFlight: 4, ferretdb };
}

/** Kamailio usrloc `location` table version this layout matches, and `location_attrs`'. */
export const LOCATION_TABLE_VERSION = 9;
export const LOCATION_ATTRS_TABLE_VERSION = 1;

/** The key set of a single-domain document, in Kamailio's order (multi-domain adds `domain`). */
export const KAMAILIO_LOCATION_KEYS = [
  'username',
  'contact',
  'expires',
  'q',
  'callid',
  'cseq',
  'flags',
  'cflags',
  'user_agent',
  'received',
  'path',
  'socket',
  'methods',
  'last_modified',
  'ruid',
  'instance',
  'reg_id',
  'server_id',
  'connection_id',
  'keepalive',
  'partition',
] as const;

// ------------------------------------------------------------------ URL

export interface NormalizedMongoUrl {
  url: string;
  /** Database named in the URL path, if any. */
  database: string | null;
  notes: string[];
}

/**
 * Makes a Kamailio DBURL acceptable to the Node driver. Kamailio's mongo-c-driver still takes
 * `slaveOk=true`; the Node driver rejects it as an unknown option. It meant "reads may go to a
 * secondary", which `readPreference` now says, so it is dropped, becoming
 * `readPreference=primaryPreferred` when the URL names no read preference.
 */
export function normalizeMongoUrl(raw: string): NormalizedMongoUrl {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(raw.trim());
  if (!m) throw new Error(`not a mongodb:// URL: ${raw}`);
  const [, base, dbPath, query] = m;
  const notes: string[] = [];
  const params = (query ?? '').split('&').filter(Boolean);
  const kept = params.filter((p) => !/^slaveok=/i.test(p));
  if (kept.length !== params.length) {
    const hasReadPref = kept.some((p) => /^readpreference=/i.test(p));
    if (!hasReadPref) kept.push('readPreference=primaryPreferred');
    notes.push(`dropped legacy slaveOk from the MongoDB URL (the Node driver rejects it)${hasReadPref ? '' : '; using readPreference=primaryPreferred'}`);
  }
  const database = dbPath ? decodeURIComponent(dbPath) : null;
  const url = `${base}/${dbPath ?? ''}${kept.length ? `?${kept.join('&')}` : ''}`;
  return { url, database, notes };
}

// ------------------------------------------------------------------ documents

/**
 * Reads a usrloc document (written by Kamailio or sipflow) as a Binding: through the tolerant
 * reader (services/location/tolerant.ts), as Kamailio's db_mongodb leaves empty fields out.
 * Throws on a document that cannot be a binding (the store itself skips those with a note).
 */
export function fromDocument(doc: Document): Binding {
  const r = readBinding(doc);
  if (!r.ok) throw new Error(`unreadable location document: ${r.reason}`);
  return r.binding;
}

/** A Binding as Kamailio's db_mongodb writes it: ints as Int32, q as double, times as Dates. */
export function toDocument(b: Binding): Document {
  const doc: Document = {
    username: b.username,
    contact: b.contact,
    expires: b.expires,
    q: new Double(b.q),
    callid: b.callid,
    cseq: new Int32(b.cseq),
    flags: new Int32(b.flags),
    cflags: new Int32(b.cflags),
    user_agent: b.user_agent,
    received: b.received,
    path: b.path,
    socket: b.socket,
    methods: b.methods === null ? null : new Int32(b.methods),
    last_modified: b.last_modified,
    ruid: b.ruid,
    instance: b.instance,
    reg_id: new Int32(b.reg_id),
    server_id: new Int32(b.server_id),
    connection_id: new Int32(b.connection_id),
    keepalive: new Int32(b.keepalive),
    partition: new Int32(b.partition),
  };
  if (b.domain !== null) doc.domain = b.domain;
  return doc;
}

/** Lookups by AoR, the ruid upsert key (unique, as Kamailio's SQL schema has it), purge by expiry. */
const INDEXES: (IndexDescription & { name: string })[] = [
  { key: { username: 1, domain: 1 }, name: 'username_1_domain_1' },
  { key: { ruid: 1 }, name: 'ruid_1', unique: true },
  { key: { expires: 1 }, name: 'expires_1' },
];
/**
 * The ruid index when the collection already holds duplicate ruids (E11000 creating ruid_1): the
 * same key, not unique, so the upsert by ruid still finds its document fast. The registrar removes
 * the copies as it rewrites each AoR (services/location/dedupe.ts); a later start with no copies
 * left still finds this one and keeps it (an operator drops it to get the unique one back).
 */
const RUID_NOT_UNIQUE: IndexDescription & { name: string } = { key: { ruid: 1 }, name: 'ruid_1_not_unique' };

/** `{ domain: null }` matches both a null and an absent field, i.e. single-domain documents. */
function aorFilter(username: string, domain: string | null): Document {
  return { username, domain };
}

// ------------------------------------------------------------------ errors

/**
 * A unique index refused over existing duplicates: MongoDB's E11000 (DuplicateKey); FerretDB 1.24
 * on SQLite answers an internal error carrying SQLite's "UNIQUE constraint failed".
 */
function isDuplicateKey(e: unknown): boolean {
  if (!(e instanceof MongoServerError)) return false;
  return e.code === 11000 || /E11000|duplicate key|UNIQUE constraint failed/i.test(e.message);
}

/** Server error codes meaning "no usable primary right now" (not a bug in the request). */
const UNAVAILABLE_CODES = new Set([
  6,
  7,
  89,
  91,
  189,
  262, // HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit
  50,
  64,
  9001, // MaxTimeMSExpired, WriteConcernFailed, SocketException
  10107,
  13435,
  13436,
  11600,
  11602, // NotWritablePrimary, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary, InterruptedAtShutdown, InterruptedDueToReplStateChange
]);

/** Socket errors the driver sometimes lets through unwrapped (e.g. EPIPE writing to a killed server). */
const SOCKET_CODES = /^(EPIPE|ECONNRESET|ECONNREFUSED|ECONNABORTED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)$/;

function isUnavailable(e: unknown): boolean {
  if (SOCKET_CODES.test(String((e as { code?: unknown })?.code ?? ''))) return true;
  if (e instanceof MongoBulkWriteError) {
    const writeErrors = ([] as { code?: unknown }[]).concat(e.writeErrors ?? []);
    if (writeErrors.length > 0) return writeErrors.some((w) => UNAVAILABLE_CODES.has(Number(w.code)));
    // bulkWrite wraps driver-side failures (network, server selection, timeouts) and drops their
    // class; server errors keep their code and are judged by it below.
    if (e.code === undefined) return true;
  }
  if (!(e instanceof MongoError)) return false;
  // Network, server selection, topology closed, timeouts: all driver-side unavailability.
  if (!(e instanceof MongoServerError)) {
    return /Network|ServerSelection|TopologyClosed|NotConnected|Timeout|ServerClosed|ClientClosed/.test(e.name);
  }
  return UNAVAILABLE_CODES.has(Number(e.code)) || e.hasErrorLabel('RetryableWriteError') || e.name === 'MongoWriteConcernError';
}

function unavailable(op: string, e: unknown): never {
  if (isUnavailable(e)) {
    throw new LocationUnavailableError(`MongoDB location store unavailable (${op}): ${(e as Error).message}`);
  }
  throw e;
}

// ------------------------------------------------------------------ store

export function createMongoLocationStore(opts: MongoLocationOptions): LocationStore {
  const norm = normalizeMongoUrl(opts.url);
  for (const n of norm.notes) opts.onNote?.(n);
  const note = limitNotes(opts.onNote);
  const read = (docs: Document[]): Binding[] => readBindings(docs, 'document', note);
  const clientOptions: MongoClientOptions = {
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 2000,
    connectTimeoutMS: opts.serverSelectionTimeoutMS ?? 2000,
    socketTimeoutMS: opts.socketTimeoutMS ?? 5000,
    writeConcern: opts.writeConcern ?? { w: 'majority', wtimeoutMS: 5000 },
  };
  const dbName = norm.database ?? opts.database ?? 'kamailio';
  const collectionName = opts.collection ?? 'location';

  // The driver's client is unusable ("Topology is closed") once its first connect has failed, as
  // it does when the store starts while MongoDB is down; so a failed connect discards it and the
  // next operation starts a new one. Indexes and version documents are set up once per client.
  type Session = { client: MongoClient; location: Collection };
  let session: Promise<Session> | null = null;
  let closed = false;
  function connect(): Promise<Session> {
    if (closed) return Promise.reject(new LocationUnavailableError('MongoDB location store is closed'));
    session ??= (async () => {
      const client = new MongoClient(norm.url, clientOptions);
      try {
        await client.connect();
        const db = client.db(dbName);
        const location = db.collection(collectionName);
        await prepare(db, location);
        return { client, location };
      } catch (e) {
        await client.close().catch(() => {});
        throw e;
      }
    })();
    const current = session;
    current.catch(() => {
      if (session === current) session = null;
    });
    return current;
  }

  async function prepare(db: Db, location: Collection): Promise<void> {
    // Only the missing ones: re-sending existing index specs is a no-op on MongoDB but makes
    // FerretDB 1.24 drop the connection (a panic in its createIndexes).
    const listed = await location
      .listIndexes()
      .toArray()
      .catch((e) => {
        if (e instanceof MongoServerError && e.code === 26) return []; // NamespaceNotFound: new collection
        throw e;
      });
    const existing = new Set(listed.map((i) => i.name as string));
    const missing = INDEXES.filter((i) => !existing.has(i.name) && !(i.name === 'ruid_1' && existing.has(RUID_NOT_UNIQUE.name)));
    // One at a time: a failure of the unique ruid index must not cost the others.
    for (const index of missing) {
      try {
        await location.createIndexes([index]);
      } catch (e) {
        if (!(index.unique && isDuplicateKey(e))) throw e;
        // Duplicate ruids are there already (Kamailio wrote them, or writers without this index did).
        note(
          `location collection ${dbName}.${collectionName} holds duplicate ruids: the unique ruid index cannot be built, ` +
            `using a non-unique one (${RUID_NOT_UNIQUE.name}); the registrar removes the copies as it rewrites each AoR`,
        );
        if (!existing.has(RUID_NOT_UNIQUE.name)) await location.createIndexes([RUID_NOT_UNIQUE]);
      }
    }
    // As the note's "Populating MongoDB" step does by hand: Kamailio refuses to start on the
    // collection without them. Only inserted when absent; an existing version is left alone.
    // Instances starting together must not insert it twice (the collection has no unique index:
    // an upsert by table_name can): the insert names its _id, so the second one fails E11000.
    const version = db.collection<{ _id: unknown; table_name: string; table_version: Int32 }>('version');
    for (const [table, v] of [
      ['location', LOCATION_TABLE_VERSION],
      ['location_attrs', LOCATION_ATTRS_TABLE_VERSION],
    ] as const) {
      if (await version.findOne({ table_name: table })) continue;
      await version.insertOne({ _id: `version:${table}`, table_name: table, table_version: new Int32(v) }).catch((e: unknown) => {
        if (!(e instanceof MongoServerError && e.code === 11000)) throw e;
      });
    }
  }

  /**
   * Group commit of upserts: concurrent ones go out as one unordered bulkWrite (one round trip, one
   * write-concern wait): an insertOne for a fresh binding (a ruid the registrar has just made), a
   * replaceOne upsert for the others. Each caller resolves once the whole batch is acknowledged, and
   * a failed batch rejects them all. Keyed by ruid (the last call of a batch wins; a ruid is never in
   * two running batches). E11000 is retried as a replacing upsert: a fresh binding another writer
   * stored after all, or concurrent upserts losing the insert race (MongoDB documents retrying them;
   * FerretDB does it under load even for distinct ruids).
   *
   * Why inserts: FerretDB on PostgreSQL runs an upsert as a query and then a write transaction, an
   * insert as the transaction alone, and a bulkWrite's operations one after another; most REGISTERs
   * that write are new contacts (docs/benchmarks.md, the mongodb pairing). Kamailio's db_mode 1
   * inserts new contacts too.
   *
   * A batch of one (always so with maxBatch 1, the FerretDB setting) goes out as insertOne or
   * replaceOne: the same command on the wire, without the driver's bulk machinery, which cost the
   * client a fifth to a third more CPU per write (236 against 174 µs in a bare driver) and FerretDB
   * a little more too (docs/benchmarks.md "One write, without the bulk path").
   */
  type Write = { binding: Binding; fresh: boolean };
  // made at the first upsert, once the server has told what it is (buildInfo, asked once however
  // many first upserts wait for it; a server that refuses the command is taken for MongoDB, one that
  // cannot be reached fails the upserts waiting, and the next one asks again)
  let upserts: Batcher<Write, void> | null = null;
  let upsertsMade: Promise<Batcher<Write, void>> | null = null;
  function upsertBatcher(): Promise<Batcher<Write, void>> {
    upsertsMade ??= makeUpsertBatcher().catch((e: unknown) => {
      upsertsMade = null;
      throw e;
    });
    return upsertsMade;
  }
  async function makeUpsertBatcher(): Promise<Batcher<Write, void>> {
    const { client } = await connect();
    const buildInfo = await client
      .db('admin')
      .command({ buildInfo: 1 })
      .catch((e: unknown) => {
        if (e instanceof MongoServerError) return null;
        throw e;
      });
    const defaults = writeDefaults(buildInfo);
    const maxBatch = opts.maxBatch ?? defaults.maxBatch;
    const maxInFlight = opts.maxInFlight ?? defaults.maxInFlight;
    if (defaults.ferretdb !== null && (opts.maxBatch === undefined || opts.maxInFlight === undefined)) {
      note(
        `the server is FerretDB ${defaults.ferretdb}: ${maxBatch} write(s) a command, ${maxInFlight} commands at once (location.writeBatch, location.writesInFlight: auto)`,
      );
    }
    upserts = createBatcher<Write, void>({ maxInFlight, maxBatch, key: (w) => w.binding.ruid, run: writeBatch });
    return upserts;
  }

  async function writeBatch(writes: Write[]): Promise<void[]> {
    const { location } = await connect();
    const last = new Map<string, Write>();
    for (const w of writes) last.set(w.binding.ruid, w);
    let pending = [...last.values()];
    if (pending.length === 1) {
      await writeOne(location, pending[0].binding, pending[0].fresh);
      return writes.map(() => undefined);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await location.bulkWrite(
          pending.map(({ binding: b, fresh }) =>
            fresh ? { insertOne: { document: toDocument(b) } } : { replaceOne: { filter: { ruid: b.ruid }, replacement: toDocument(b), upsert: true } },
          ),
          { ordered: false },
        );
        return writes.map(() => undefined);
      } catch (e) {
        if (!(e instanceof MongoBulkWriteError) || attempt === 3) throw e;
        const failed = ([] as { index: number; code: number }[]).concat(e.writeErrors ?? []);
        if (failed.length === 0 || failed.some((w) => w.code !== 11000)) throw e;
        pending = failed.map((w) => ({ binding: pending[w.index].binding, fresh: false }));
      }
    }
  }

  /** One write of a batch of one: as the bulk path does it, E11000 retried as a replacing upsert (3 tries in all). */
  async function writeOne(location: Collection, binding: Binding, fresh: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (fresh && attempt === 1) await location.insertOne(toDocument(binding));
        else await location.replaceOne({ ruid: binding.ruid }, toDocument(binding), { upsert: true });
        return;
      } catch (e) {
        if (!isDuplicateKey(e) || attempt === 3) throw e;
      }
    }
  }

  async function run<T>(op: string, fn: (location: Collection) => Promise<T>): Promise<T> {
    try {
      const { location } = await connect();
      return await fn(location);
    } catch (e) {
      return unavailable(op, e);
    }
  }

  return {
    // The newest MAX_BINDINGS_CONSIDERED of the AoR (services/location/dedupe.ts): an AoR another
    // writer filled with copies is read without the rest.
    find: (username, domain) =>
      run('find', async (location) =>
        read(await location.find(aorFilter(username, domain)).sort({ last_modified: -1 }).limit(MAX_BINDINGS_CONSIDERED).toArray()),
      ),

    upsert: async (binding, fresh = false) => {
      try {
        return await (upserts ?? (await upsertBatcher())).submit({ binding, fresh });
      } catch (e) {
        return unavailable('upsert', e);
      }
    },

    // An empty ruid also names documents with none (Kamailio always writes one; a hand-made document may not).
    remove: (ruids) =>
      run('remove', async (location) =>
        ruids.length ? (await location.deleteMany({ ruid: { $in: ruids.includes('') ? [...ruids, null] : ruids } })).deletedCount : 0,
      ),

    list: (q) =>
      run('list', async (location) => {
        const f: Document = {};
        if (q.aor) {
          const { username, domain } = splitAor(q.aor);
          f.username = username;
          if (domain !== null) f.domain = { $in: [domain, null] };
        } else if (q.search) {
          f.username = { $regex: q.search.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), $options: 'i' };
        }
        if (!q.expired) f.expires = { $gt: q.now };
        const [rows, total] = await Promise.all([
          location.find(f).sort({ username: 1, ruid: 1 }).skip(q.offset).limit(q.limit).toArray(),
          location.countDocuments(f),
        ]);
        return { rows: read(rows), total };
      }),

    count: (now) => run('count', async (location) => location.countDocuments({ expires: { $gt: now } })),

    // Live means expires > now (the registrar's test). Kamailio stores permanent contacts with
    // expires = 0 (the epoch) and its own cleanup skips them; so do we.
    purgeExpired: (now) => run('purgeExpired', async (location) => (await location.deleteMany({ expires: { $lte: now, $gt: new Date(0) } })).deletedCount),

    removeByConnection: (serverId, connectionId) =>
      run(
        'removeByConnection',
        async (location) =>
          (await location.deleteMany({ server_id: serverId, connection_id: connectionId === null ? { $gte: 0 } : connectionId })).deletedCount,
      ),

    keepalive: (serverId, now, after, limit) =>
      run('keepalive', async (location) =>
        read(
          await location
            .find({ server_id: serverId, keepalive: 1, expires: { $gt: now }, ruid: { $gt: after } })
            .sort({ ruid: 1 })
            .limit(limit)
            .toArray(),
        ),
      ),

    all: () => run('all', async (location) => read(await location.find({}).toArray())),

    close: async () => {
      closed = true;
      const current = session;
      session = null;
      if (current) await (await current.catch(() => null))?.client.close();
    },
  };
}
