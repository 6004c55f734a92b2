/**
 * Process wiring shared by the CLI, the simulator and the servers: opens the directory and the
 * location service named by the options, and builds the run context nodes work through.
 */
import path from 'path';
import type { Knex } from 'knex';
import type { LogPort, RunContext, RunLimits } from '../engine/types';
import { createDigestAuth, resolveSecret, type DigestAlgorithm } from '../services/auth';
import { createDirectory, migrate, openDirectory, seed, type Directory } from '../services/directory';
import { createCachedDirectory } from '../services/directory/cache';
import { createMemoryLocationStore } from '../services/location/memory';
import { createMongoLocationStore } from '../services/location/mongo';
import { createRegistrar, type Registrar, type RegistrarOptions } from '../services/location/registrar';
import { createSqlLocationStore, ensureSchema } from '../services/location/sql';
import type { LocationStore } from '../services/location/types';
import type { Config } from './config';

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
  /**
   * Location store: `sql` (Kamailio's `location` table in the directory database, the embedded
   * default), `memory`, a `postgres://` URL, or a `mongodb://` URL (Kamailio's db_mongodb layout).
   */
  locationUrl?: string;
  mongo?: { database?: string; collection?: string; writeConcern?: 'majority' | number };
  realm?: string;
  nonceSecret?: string;
  nonceLifetimeSec?: number;
  algorithms?: DigestAlgorithm[];
  registrar?: RegistrarOptions;
  /** Purge expired bindings every N seconds (0/undefined = never; the registrar filters them anyway). */
  purgeIntervalSec?: number;
  limits?: Partial<RunLimits>;
  /** Migrate the directory and provision the note's sample subscriber when empty. */
  provision?: boolean;
  log?: LogPort;
}

export interface Runtime {
  ctx: RunContext;
  knex: Knex;
  directory: Directory;
  registrar: Registrar;
  /** The location store beneath the registrar (administration: list, count, remove). */
  store: LocationStore;
  /** True when every store is reachable from any process (networked), so SIP workers may share them. */
  shareable: boolean;
  limits?: Partial<RunLimits>;
  close(): Promise<void>;
}

export function runtimeOptionsFromConfig(c: Config): RuntimeOptions {
  return {
    dataDir: c.dataDir,
    directoryUrl: c.directory.url,
    directoryPoolMax: c.directory.poolMax,
    directoryCacheSec: c.directory.cacheSec,
    directoryCacheNegativeSec: c.directory.cacheNegativeSec,
    directoryCacheMaxEntries: c.directory.cacheMaxEntries,
    locationUrl: c.location.url,
    mongo: { database: c.location.database, collection: c.location.collection, writeConcern: c.location.writeConcern },
    realm: c.sip.domain,
    nonceSecret: c.auth.nonceSecret,
    nonceLifetimeSec: c.auth.nonceLifetimeSec,
    algorithms: c.auth.algorithms,
    registrar: {
      defaultExpires: c.registrar.defaultExpires, minExpires: c.registrar.minExpires, maxExpires: c.registrar.maxExpires,
      rejectBelowMin: c.registrar.rejectBelowMin, maxContacts: c.registrar.maxContacts,
    },
    purgeIntervalSec: c.registrar.purgeIntervalSec,
    limits: c.limits,
    provision: true,
  };
}

const isNetworked = (url: string) => /^(postgres(ql)?|mongodb(\+srv)?):\/\//i.test(url);

async function openLocationStore(o: RuntimeOptions, directoryKnex: Knex): Promise<{ store: LocationStore; knex?: Knex; networked: boolean }> {
  const url = o.locationUrl ?? 'sql';
  if (url === 'memory') return { store: createMemoryLocationStore(), networked: false };
  if (url === 'sql') {
    await ensureSchema(directoryKnex);
    return { store: createSqlLocationStore(directoryKnex), networked: isNetworked(o.directoryUrl ?? '') };
  }
  if (/^mongodb(\+srv)?:\/\//i.test(url)) {
    const w = o.mongo?.writeConcern ?? 'majority';
    return {
      store: createMongoLocationStore({ url, database: o.mongo?.database, collection: o.mongo?.collection, writeConcern: { w, wtimeoutMS: 5000 } }),
      networked: true,
    };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const knex = openDirectory(url);
    await ensureSchema(knex);
    return { store: createSqlLocationStore(knex), knex, networked: true };
  }
  throw new Error(`unsupported location URL "${url.replace(/\/\/[^@/]*@/, '//***@')}": use sql, memory, postgres://… or mongodb://…`);
}

/** Location tables share the directory connection when location is `sql`: their writes leave the directory cache alone. */
const LOCATION_SQL = /^\s*(insert\s+into|update|delete\s+from|with\s+\w+\s+as\s+\(\s*delete\s+from)\s+"?location\b/i;

/** The directory, behind a read-through cache when `directoryCacheSec` > 0; writes through `knex` invalidate it. */
function withCache(directory: Directory, knex: Knex, o: RuntimeOptions): Directory {
  if (!o.directoryCacheSec || o.directoryCacheSec <= 0) return directory;
  const cached = createCachedDirectory(directory, {
    ttlSec: o.directoryCacheSec, negativeTtlSec: o.directoryCacheNegativeSec, maxEntries: o.directoryCacheMaxEntries,
  });
  knex.on('query', (q: { method?: string; sql?: string }) => {
    if (q.method === 'select' || q.method === 'first' || q.method === 'pluck') return;
    if (typeof q.sql === 'string' && (LOCATION_SQL.test(q.sql) || /^\s*select\b/i.test(q.sql))) return;
    cached.invalidate();
  });
  return cached;
}

export async function openRuntime(o: RuntimeOptions): Promise<Runtime> {
  const directoryUrl = o.directoryUrl ?? path.join(o.dataDir, 'directory');
  const knex = openDirectory(directoryUrl, { poolMax: o.directoryPoolMax });
  let location: Awaited<ReturnType<typeof openLocationStore>> | undefined;
  try {
    if (o.provision) {
      await migrate(knex);
      await seed(knex);
    }
    const directory = withCache(createDirectory(knex), knex, o);
    location = await openLocationStore({ ...o, directoryUrl }, knex);
    const store = location.store;
    const registrar = createRegistrar(store, o.registrar);
    const stopPurging = o.purgeIntervalSec ? registrar.startPurging(o.purgeIntervalSec * 1000) : () => undefined;
    const secret = o.nonceSecret ?? resolveSecret({ dataDir: o.dataDir });
    const auth = createDigestAuth({ secret, nonceLifetimeSec: o.nonceLifetimeSec, algorithms: o.algorithms });
    const ctx: RunContext = { directory, location: registrar, auth, clock: { now: Date.now }, realm: o.realm, log: o.log };
    const locationKnex = location.knex;
    return {
      ctx, knex, directory, registrar, store, limits: o.limits,
      shareable: isNetworked(directoryUrl) && location.networked,
      async close() {
        stopPurging();
        await store.close();
        if (locationKnex) await locationKnex.destroy();
        await directory.close();
      },
    };
  } catch (e) {
    await location?.store.close().catch(() => undefined);
    await location?.knex?.destroy().catch(() => undefined);
    await knex.destroy();
    throw e;
  }
}
