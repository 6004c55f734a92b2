/** jest globalTeardown: stops every server globalSetup or a test started (see servers.cjs). */
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const servers = require('../../scripts/test-servers/servers.cjs');

export default async function globalTeardown() {
  const stateDir = globalThis.__SIPFLOW_TEST_SERVERS_STATE__ ?? process.env.SIPFLOW_TEST_SERVERS_STATE;
  if (stateDir) await servers.stopTestServers(stateDir);
}
