/**
 * Process wiring shared by the CLI, the simulator and the servers: opens the directory and the
 * location service named by the options, and builds the run context nodes work through.
 */
import path from 'path';
import type { Knex } from 'knex';
import type { LogPort, RunContext } from '../engine/types';
import { createDigestAuth, resolveSecret, type DigestAlgorithm } from '../services/auth';
import { createDirectory, migrate, openDirectory, seed, type Directory } from '../services/directory';
import { createMemoryLocationStore } from '../services/location/memory';
import { createRegistrar, type Registrar, type RegistrarOptions } from '../services/location/registrar';
import type { LocationStore } from '../services/location/types';

export interface RuntimeOptions {
  /** Where embedded data lives (PGlite directory, nonce secret). */
  dataDir: string;
  /** Directory URL: a PGlite dir, memory://, or postgres://… Default: `<dataDir>/directory`. */
  directoryUrl?: string;
  /** Location store: `memory` (default for now). */
  location?: 'memory';
  realm?: string;
  nonceSecret?: string;
  nonceLifetimeSec?: number;
  algorithms?: DigestAlgorithm[];
  registrar?: RegistrarOptions;
  /** Migrate the directory and provision the note's sample subscriber when empty. */
  provision?: boolean;
  log?: LogPort;
}

export interface Runtime {
  ctx: RunContext;
  knex: Knex;
  directory: Directory;
  registrar: Registrar;
  close(): Promise<void>;
}

export async function openRuntime(o: RuntimeOptions): Promise<Runtime> {
  const knex = openDirectory(o.directoryUrl ?? path.join(o.dataDir, 'directory'));
  try {
    if (o.provision) {
      await migrate(knex);
      await seed(knex);
    }
    const directory = createDirectory(knex);
    const store: LocationStore = createMemoryLocationStore();
    const registrar = createRegistrar(store, o.registrar);
    const secret = o.nonceSecret ?? resolveSecret({ dataDir: o.dataDir });
    const auth = createDigestAuth({ secret, nonceLifetimeSec: o.nonceLifetimeSec, algorithms: o.algorithms });
    const ctx: RunContext = { directory, location: registrar, auth, clock: { now: Date.now }, realm: o.realm, log: o.log };
    return {
      ctx, knex, directory, registrar,
      async close() { await store.close(); await directory.close(); },
    };
  } catch (e) {
    await knex.destroy();
    throw e;
  }
}
