/**
 * Jest environment for suites that run PGlite in-process.
 *
 * PGlite (Emscripten) loads Node builtins with dynamic `import()`, which jest's vm sandbox only
 * permits under `node --experimental-vm-modules`. This environment loads PGlite natively, outside
 * the sandbox, and hands it to the suite, which maps the module to it with
 * `jest.mock('@electric-sql/pglite', () => globalThis.__nativePglite)`. Production code is unaffected;
 * running jest under `NODE_OPTIONS=--experimental-vm-modules` makes this unnecessary.
 */
const { TestEnvironment } = require('jest-environment-node');

class PgliteEnvironment extends TestEnvironment {
  async setup() {
    await super.setup();
    this.global.__nativePglite = require('@electric-sql/pglite');
    // Native PGlite serializes parameters with `instanceof Date`: share the outer realm's Date
    // so the Dates knex creates in the sandbox (e.g. knex_migrations.migration_time) pass it.
    this.global.Date = Date;
  }
}

module.exports = PgliteEnvironment;
