/**
 * Process wiring shared by the CLI, the simulator and the servers: opens the directory and the
 * location service named by the options, and builds the run context nodes work through.
 */
import path from 'path';
import type { Knex } from 'knex';
import type { LogPort } from '../engine/ports';
import type { RunContext, RunLimits } from '../engine/types';
import { calendarClock } from './calendar';
import { createInstanceCache, type InstanceCacheOptions } from '../services/cache';
import { openCallLimiter, type CallLimitSettings } from '../services/call-limit';
import { createDigestAuth, resolveSecret, secretFromString, type DigestAlgorithm, type NonceCountTable } from '../services/auth';
import { createDirectory, createSubscribers, migrate, openDirectory, seed, type Directory, type Subscribers } from '../services/directory';
import { createCachedDirectory } from '../services/directory/cache';
import { withStartupLock } from '../services/directory/startup-lock';
import { createHttpClient, type HttpClientOptions } from '../services/http/client';
import { DirectoryChanges } from '../services/directory/changes';
import { ownershipFor, type AorOwnershipOptions, type OwnershipMode } from '../services/directory/ownership';
import { createMemoryLocationStore } from '../services/location/memory';
import { createMongoLocationStore, normalizeMongoUrl } from '../services/location/mongo';
import type { LocationChangeFeed } from '../services/location/changes';
import { createMongoChangeFeed } from '../services/location/mongo-changes';
import { createSqlChangeFeed, ensureChangeNotifications } from '../services/location/sql-changes';
import { startEmbeddedVacuum, type EmbeddedVacuum } from '../services/directory/embedded-vacuum';
import { applicationNameOf, isPgClient, isPgliteClient } from '../services/directory/knex-internals';
import { createRegistrar, type Registrar, type RegistrarOptions } from '../services/location/registrar';
import { createSqlLocationStore, ensureSchema } from '../services/location/sql';
import { createWriteThroughStore } from '../services/location/write-through';
import type { LocationStore } from '../services/location/types';
import { configSchema, directoryCacheSec, locationCommitDelayMs, locationMode, type Config } from './config';
import { openQueryPorts } from './query-ports';

export interface RuntimeOptions {
  /** Where embedded data lives (PGlite directory, nonce secret). */
  dataDir: string;
  /** Directory URL: a PGlite dir, memory://, or postgres://… Default: `<dataDir>/directory`. */
  directoryUrl?: string;
  directoryPoolMax?: number;
  /** Read-through cache of directory query results, in seconds (0/undefined = off). */
  directoryCacheSec?: number;
  directoryCacheNegativeSec?: number;
  directoryCacheMaxEntries?: number;
  /** PGlite only: seconds between vacuum passes (services/directory/embedded-vacuum.ts); 0 = none; default 60. */
  embeddedVacuumSec?: number;
  /**
   * Location store: `sql` (Kamailio's `location` table in the directory database, the embedded
   * default), `memory`, a `postgres://` URL, or a `mongodb://` URL (Kamailio's db_mongodb layout).
   */
  locationUrl?: string;
  mongo?: { database?: string; collection?: string; writeConcern?: 'majority' | number; writeBatch?: number | 'auto'; writesInFlight?: number | 'auto' };
  /**
   * `db-only` (default; Kamailio usrloc db_mode 3): every lookup reads the store. `write-through`
   * (db_mode 1): bindings kept in memory, loaded at start, each written to the store before it is
   * acknowledged; other writers' changes followed through a change feed (services/location/changes.ts). Ignored by `memory`.
   */
  locationMode?: 'db-only' | 'write-through';
  /** SQL location: the commit delay of binding writes (`location.commitDelayMs` as it applies; default 0). */
  locationCommitDelayMs?: number;
  /** write-through on MongoDB without change streams: full reload interval (s), default 2. */
  locationRefreshSec?: number;
  realm?: string;
  nonceSecret?: string;
  /** Nonce-count table (replay protection); SIP worker threads share one in shared memory. */
  nonceCounts?: NonceCountTable;
  /** When the process started (ms): older nonces are answered stale (services/auth/nonce.ts). Absent: no such check (one-shot CLI runs). */
  bootEpoch?: number;
  /** `nodes.now`: the date and time nodes' clock starts at this instant (server/calendar.ts). */
  calendarStart?: string;
  nonceLifetimeSec?: number;
  algorithms?: DigestAlgorithm[];
  registrar?: RegistrarOptions;
  /** Which AoR authenticated credentials may register (`registrar.ownership`; default the directory's username → aor). */
  ownership?: AorOwnershipOptions & { mode: OwnershipMode };
  /** Purge expired bindings every N seconds (0/undefined = never; the registrar filters them anyway). */
  purgeIntervalSec?: number;
  limits?: Partial<RunLimits>;
  /** The instance cache of action.cacheSet / query.cacheGet (`nodes.cache`; default its defaults). */
  cache?: InstanceCacheOptions;
  /** analysis.callLimit's limiter (`callLimit`); absent: no limiter in the run context (the node admits every call, `unlimited`). */
  callLimit?: CallLimitSettings;
  /** `nodes.numbers` (action.normalizeNumber's default country), handed to the nodes in the run context. */
  numbers?: { defaultCountry?: string };
  /** Migrate the directory and provision the note's sample subscriber when empty. */
  provision?: boolean;
  /** How long a start waits for the start-up lock (services/directory/startup-lock.ts), in s; default 120. */
  startupLockWaitSec?: number;
  log?: LogPort;
  /** `nodes.*` configuration: query.enum's DNS servers, query.ldap's server, output.syslog's collector (default: system resolvers, no LDAP, no syslog). */
  nodes?: Pick<Config['nodes'], 'enum' | 'ldap' | 'syslog'>;
  /** The HTTP client of query.httpRequest (`nodes.http`; default: its defaults, Node's CAs). */
  http?: HttpClientOptions;
}

export interface Runtime {
  ctx: RunContext;
  knex: Knex;
  directory: Directory;
  registrar: Registrar;
  /** The location store beneath the registrar (administration: list, count, remove). */
  store: LocationStore;
  /** The embedded database's vacuum passes (services/directory/embedded-vacuum.ts); null on PostgreSQL or when `directory.vacuumSec` is 0. */
  vacuum: EmbeddedVacuum | null;
  /** The digest nonce secret (SIP worker threads issue and check nonces with it). */
  nonceSecret: Buffer;
  /**
   * The directory's change feed (services/directory/changes.ts): every write path of this process
   * notifies it; the read-through cache, the query nodes (`ctx.directoryChanges`) and the SIP
   * threads' caches forget on each change.
   */
  directoryChanges: DirectoryChanges;
  /** Subscribers on the directory connection, their writes wired to `directoryChanges`. */
  subscribers: Subscribers;
  /** Called after every directory write of this process (caches elsewhere must forget). */
  onDirectoryWrite(listener: () => void): () => void;
  limits?: Partial<RunLimits>;
  close(): Promise<void>;
}

/** The start-up lock's wait (ms): `directory.startupLockWaitSec`. */
export const startupLockWaitMs = (o: Pick<RuntimeOptions, 'startupLockWaitSec'>): number => (o.startupLockWaitSec ?? 120) * 1000;

export function runtimeOptionsFromConfig(c: Config): RuntimeOptions {
  return {
    dataDir: c.dataDir,
    directoryUrl: c.directory.url,
    directoryPoolMax: c.directory.poolMax,
    directoryCacheSec: directoryCacheSec(c),
    directoryCacheNegativeSec: c.directory.cacheNegativeSec,
    directoryCacheMaxEntries: c.directory.cacheMaxEntries,
    embeddedVacuumSec: c.directory.vacuumSec,
    locationUrl: c.location.url,
    mongo: {
      database: c.location.database,
      collection: c.location.collection,
      writeConcern: c.location.writeConcern,
      writeBatch: c.location.writeBatch,
      writesInFlight: c.location.writesInFlight,
    },
    locationMode: locationMode(c),
    locationCommitDelayMs: locationCommitDelayMs(c),
    locationRefreshSec: c.location.refreshSec,
    realm: c.sip.domain,
    nonceSecret: c.auth.nonceSecret,
    nonceLifetimeSec: c.auth.nonceLifetimeSec,
    algorithms: c.auth.algorithms,
    registrar: {
      defaultExpires: c.registrar.defaultExpires,
      minExpires: c.registrar.minExpires,
      maxExpires: c.registrar.maxExpires,
      rejectBelowMin: c.registrar.rejectBelowMin,
      maxContacts: c.registrar.maxContacts,
      serverId: c.location.serverId,
      nat: { udpMaxExpires: c.registrar.nat.udpMaxExpires, branchFlag: c.registrar.nat.branchFlag },
    },
    purgeIntervalSec: c.registrar.purgeIntervalSec,
    ownership: c.registrar.ownership,
    limits: c.limits,
    calendarStart: c.nodes.now,
    cache: c.nodes.cache,
    callLimit: c.callLimit,
    numbers: c.nodes.numbers,
    provision: true,
    startupLockWaitSec: c.directory.startupLockWaitSec,
    nodes: c.nodes,
    http: c.nodes.http,
  };
}

async function openLocationStore(o: RuntimeOptions, directoryKnex: Knex): Promise<{ store: LocationStore; knex?: Knex }> {
  const url = o.locationUrl ?? 'sql';
  if (url === 'memory') return { store: createMemoryLocationStore() };
  // write-through: the bindings live in this process (loaded now). SQL loads at start (the
  // database is needed there anyway, for the schema); MongoDB keeps starting while it is down,
  // loading on the first operation.
  const writeThrough = o.locationMode === 'write-through';
  const coherence = { log: (level: 'info' | 'warn', message: string) => o.log?.log(level, message) };
  // records the stores skip (Kamailio's odd documents), index fallbacks, the dropped slaveOk
  const onNote = (message: string) => o.log?.log('warn', message);
  const sqlStore = async (knex: Knex, url: string) => {
    const store = createSqlLocationStore(knex, { onNote, commitDelayMs: o.locationCommitDelayMs });
    if (!writeThrough) return { store };
    // other instances' writes arrive by LISTEN/NOTIFY (PGlite is this process's own database: none)
    let changes: LocationChangeFeed | undefined;
    if (isPgClient(knex)) {
      await ensureChangeNotifications(knex);
      changes = createSqlChangeFeed({ url, ownOrigin: applicationNameOf(knex) });
    }
    const cached = createWriteThroughStore(store, { ...coherence, changes });
    await cached.open();
    return { store: cached as LocationStore };
  };
  if (url === 'sql') {
    await ensureSchema(directoryKnex);
    return sqlStore(directoryKnex, o.directoryUrl ?? '');
  }
  if (/^mongodb(\+srv)?:\/\//i.test(url)) {
    const w = o.mongo?.writeConcern ?? 'majority';
    const database = o.mongo?.database;
    const collection = o.mongo?.collection;
    // the store's notes are logged with the key they concern: the URL's (a Kamailio DBURL's slaveOk
    // dropped: docs/data.md) once here, as the change feed and the call limiter (services/call-limit)
    // open the same URL normalized silently; documents skipped; the ruid index fallback
    const store = createMongoLocationStore({
      url,
      database,
      collection,
      writeConcern: { w, wtimeoutMS: 5000 },
      maxBatch: o.mongo?.writeBatch === 'auto' ? undefined : o.mongo?.writeBatch,
      maxInFlight: o.mongo?.writesInFlight === 'auto' ? undefined : o.mongo?.writesInFlight,
      onNote: (m) => o.log?.log('warn', `location.url: ${m}`),
    });
    if (!writeThrough) return { store };
    const changes = createMongoChangeFeed({
      url,
      database: normalizeMongoUrl(url).database ?? database ?? 'kamailio',
      collection: collection ?? 'location',
      refreshMs: (o.locationRefreshSec ?? 2) * 1000,
      onNote,
    });
    const cached = createWriteThroughStore(store, { ...coherence, changes });
    cached.open().catch(() => undefined);
    return { store: cached };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const knex = openDirectory(url);
    try {
      await ensureSchema(knex);
      return { ...(await sqlStore(knex, url)), knex };
    } catch (e) {
      await knex.destroy().catch(() => undefined);
      throw e;
    }
  }
  throw new Error(`unsupported location URL "${url.replace(/\/\/[^@/]*@/, '//***@')}": use sql, memory, postgres://… or mongodb://…`);
}

/** The directory, behind a read-through cache when `directoryCacheSec` > 0; every directory change invalidates it. */
function withCache(directory: Directory, changes: DirectoryChanges, o: RuntimeOptions): Directory {
  if (!o.directoryCacheSec || o.directoryCacheSec <= 0) return directory;
  const cached = createCachedDirectory(directory, {
    ttlSec: o.directoryCacheSec,
    negativeTtlSec: o.directoryCacheNegativeSec,
    maxEntries: o.directoryCacheMaxEntries,
  });
  changes.subscribe(() => cached.invalidate());
  return cached;
}

export async function openRuntime(o: RuntimeOptions): Promise<Runtime> {
  const directoryUrl = o.directoryUrl ?? path.join(o.dataDir, 'directory');
  const knex = openDirectory(directoryUrl, { poolMax: o.directoryPoolMax });
  let location: Awaited<ReturnType<typeof openLocationStore>> | undefined;
  let callLimits: Awaited<ReturnType<typeof openCallLimiter>> | undefined;
  let vacuum: EmbeddedVacuum | null = null;
  try {
    if (o.provision) {
      // instances started together take turns: migrations run once, the sample subscriber is added once
      await withStartupLock(
        knex,
        'directory migrations',
        async () => {
          await migrate(knex);
          await seed(knex);
        },
        { waitMs: startupLockWaitMs(o), log: o.log },
      );
    }
    const vacuumSec = o.embeddedVacuumSec ?? 60;
    if (vacuumSec > 0 && isPgliteClient(knex)) vacuum = startEmbeddedVacuum(knex, { intervalMs: vacuumSec * 1000, log: o.log });
    const directoryChanges = new DirectoryChanges();
    const directory = withCache(createDirectory(knex), directoryChanges, o);
    const subscribers = createSubscribers(knex, { onWrite: () => directoryChanges.changed() });
    location = await openLocationStore({ ...o, directoryUrl }, knex);
    const store = location.store;
    const registrar = createRegistrar(store, o.registrar);
    const stopPurging = o.purgeIntervalSec ? registrar.startPurging(o.purgeIntervalSec * 1000) : () => undefined;
    const secret = o.nonceSecret !== undefined ? secretFromString(o.nonceSecret) : resolveSecret({ dataDir: o.dataDir });
    const auth = createDigestAuth({
      secret,
      nonceLifetimeSec: o.nonceLifetimeSec,
      algorithms: o.algorithms,
      nonceCounts: o.nonceCounts,
      bootEpoch: o.bootEpoch,
    });
    const ownership = ownershipFor(directory, o.ownership ?? { mode: 'directory' });
    if (ownership === null) o.log?.log('warn', 'registrar.ownership.mode is off: any authenticated subscriber can register, refresh or remove any AoR');
    // one per process: SIP worker threads reach it through the dispatcher (server/sip-threads/host.ts)
    const cache = createInstanceCache(o.cache);
    // one per process, like the cache: SIP worker threads reach it through the dispatcher
    callLimits = o.callLimit
      ? await openCallLimiter(o.callLimit, { locationUrl: o.locationUrl, mongoDatabase: o.mongo?.database, directoryUrl, directoryKnex: knex })
      : undefined;
    if (callLimits) o.log?.log('info', `call limits: ${callLimits.where}`);
    const queries = openQueryPorts(o.nodes);
    const http = createHttpClient(o.http ?? configSchema.parse({}).nodes.http);
    const ctx: RunContext = {
      directory,
      location: registrar,
      auth,
      clock: { now: Date.now },
      calendar: calendarClock(o.calendarStart, o.bootEpoch ?? Date.now()),
      realm: o.realm,
      log: o.log,
      ownership,
      directoryChanges,
      cache,
      callLimits: callLimits?.limiter,
      numbers: o.numbers,
      dns: queries.dns,
      ldap: queries.ldap,
      syslog: queries.syslog,
      http,
    };
    const locationKnex = location.knex;
    return {
      ctx,
      knex,
      directory,
      registrar,
      store,
      vacuum,
      limits: o.limits,
      nonceSecret: secret,
      directoryChanges,
      subscribers,
      onDirectoryWrite: (listener) => directoryChanges.subscribe(listener),
      async close() {
        stopPurging();
        await vacuum?.stop();
        await queries.close();
        await http.close();
        await callLimits?.close();
        await store.close();
        if (locationKnex) await locationKnex.destroy();
        await directory.close();
      },
    };
  } catch (e) {
    await vacuum?.stop();
    await callLimits?.close().catch(() => undefined);
    await location?.store.close().catch(() => undefined);
    await location?.knex?.destroy().catch(() => undefined);
    await knex.destroy();
    throw e;
  }
}
