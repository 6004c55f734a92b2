/**
 * Test-side handle on the real servers (see scripts/test-servers/servers.cjs).
 *
 * Shared servers (globalSetup): `mongoUrl()` / `pgUrl()`; never stop those, other suites use them.
 * Fault tests start a private server they alone own, stop it (optionally like a crash) and
 * restart it on the same port and data dir:
 *
 *   const mongo = await privateFerretDb();
 *   await mongo.stop({ crash: true }); …; await mongo.start(); …; await mongo.destroy();
 */
import * as fs from 'fs';
import * as path from 'path';

export interface ServerRecord {
  kind: 'ferretdb' | 'postgres';
  name: string;
  dir: string;
  port: number;
  url: string;
  pid?: number | null;
}

interface ServersLib {
  makeRoot(prefix?: string): string;
  createFerretDb(o: { root: string; name: string; stateDir?: string }): Promise<ServerRecord>;
  createPostgres(o: { root: string; name: string; stateDir?: string }): Promise<ServerRecord>;
  start(rec: ServerRecord, stateDir?: string): Promise<ServerRecord>;
  stop(rec: ServerRecord, stateDir?: string, o?: { crash?: boolean }): Promise<ServerRecord>;
  destroy(rec: ServerRecord, stateDir?: string): Promise<void>;
  startTestServers(o?: { env?: NodeJS.ProcessEnv; log?: (m: string) => void }): Promise<{
    root: string;
    stateDir: string;
    mongoUrl: string;
    pgUrl: string;
    started: ServerRecord[];
  }>;
  stopTestServers(stateDir: string): Promise<void>;
}

/** Finds scripts/test-servers/servers.cjs from here, whether run from source (ts-jest) or dist/. */
function loadLib(): ServersLib {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'scripts', 'test-servers', 'servers.cjs');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path found at run time, not a module name
    if (fs.existsSync(file)) return require(file) as ServersLib;
  }
  throw new Error('scripts/test-servers/servers.cjs not found above ' + __dirname);
}

export const servers: ServersLib = loadLib();

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suites through jest (globalSetup starts the servers) or set it`);
  return v;
}

/** The shared MongoDB-protocol server (FerretDB, or the external MONGODB_URL). */
export const mongoUrl = (): string => required('MONGODB_URL');
/** The shared PostgreSQL server (embedded, or the external PG_URL). */
export const pgUrl = (): string => required('PG_URL');

export interface PrivateServer {
  readonly url: string;
  readonly port: number;
  /** `crash: true` kills it (SIGKILL / pg_ctl -m immediate) instead of a clean shutdown. */
  stop(o?: { crash?: boolean }): Promise<void>;
  /** Starts it again on the same port and data dir. */
  start(): Promise<void>;
  /** Stops it for good and deletes its data. */
  destroy(): Promise<void>;
}

let privateCount = 0;

async function privateServer(kind: 'ferretdb' | 'postgres'): Promise<PrivateServer> {
  // Recorded in globalSetup's state dir so globalTeardown stops it even if the test crashed.
  const stateDir = process.env.SIPFLOW_TEST_SERVERS_STATE;
  const root = stateDir ? path.dirname(stateDir) : servers.makeRoot();
  const name = `${kind}-private-${process.pid}-${++privateCount}`;
  const create = kind === 'ferretdb' ? servers.createFerretDb : servers.createPostgres;
  const rec = await create({ root, name, stateDir });
  return {
    url: rec.url,
    port: rec.port,
    stop: async (o) => {
      await servers.stop(rec, stateDir, o);
    },
    start: async () => {
      await servers.start(rec, stateDir);
    },
    destroy: async () => {
      await servers.destroy(rec, stateDir);
      if (!stateDir) fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A FerretDB only the calling test uses (fault tests may stop it). */
export const privateFerretDb = (): Promise<PrivateServer> => privateServer('ferretdb');
/** A PostgreSQL cluster (database `sipflow`) only the calling test uses. */
export const privatePostgres = (): Promise<PrivateServer> => privateServer('postgres');

/**
 * A database of its own on the shared PostgreSQL (`PG_URL`), created empty; `drop()` removes it.
 * Suites that create tables named like other suites' (or Kamailio's) use one so they cannot meet.
 */
export async function scratchDatabase(name: string): Promise<{ url: string; drop(): Promise<void> }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const knexFactory = require('knex') as typeof import('knex').knex;
  const admin = knexFactory({ client: 'pg', connection: pgUrl(), pool: { min: 0, max: 1 } });
  await admin.raw('DROP DATABASE IF EXISTS ??', [name]);
  await admin.raw('CREATE DATABASE ??', [name]);
  const url = new URL(pgUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
      await admin.destroy();
    },
  };
}
