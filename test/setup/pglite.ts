/**
 * knex on PGlite for tests. PGlite loads node builtins and its wasm through dynamic `import()`,
 * which jest's module sandbox only allows under `node --experimental-vm-modules` (without it:
 * ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG). So knex and knex-pglite are loaded with Node's own
 * require, outside the sandbox, where `import()` just works; the returned knex instance is used
 * from tests like any other.
 */
import Module from 'module';
import type { Knex } from 'knex';

// jest replaces `module.createRequire` with its own sandboxed require; Module._load is Node's.
const nodeRequire = (id: string): unknown => (Module as unknown as { _load(id: string, parent: unknown): unknown })._load(require.resolve(id), null);

/** `dataDir` persists the database there; default in memory. */
export function openPgliteKnex(dataDir?: string): Knex {
  const knexFactory = nodeRequire('knex') as typeof import('knex').knex;
  return knexFactory({
    client: nodeRequire('knex-pglite'),
    dialect: 'postgres',
    connection: dataDir ? { filename: dataDir } : { connectionString: 'memory://' },
  } as Knex.Config);
}
