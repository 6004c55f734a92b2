/** Run contexts for tests: real auth and registrar on in-memory stores, a settable clock. */
import { createDigestAuth } from '../../services/auth';
import { createMemoryDirectory, type MemoryTables } from '../../services/directory/memory';
import type { DirectoryPort } from '../../services/directory/types';
import { createMemoryLocationStore } from '../../services/location/memory';
import { createRegistrar } from '../../services/location/registrar';
import type { LocationPort } from '../../services/location/types';
import type { AuthPort } from '../../engine/ports';
import type { RunContext } from '../../engine/types';

export const SAMPLE_CUSTOMERS: MemoryTables = {
  'registration.customers': [{ id: 1, name: 'Netaxis NL', username: 'francesco', password: '123456', aor: 'francesco@nl.netaxis.be' }],
};

export interface TestContext extends RunContext {
  clockMs: { value: number };
}

export function testContext(opts: { directory?: DirectoryPort; location?: LocationPort; realm?: string; tables?: MemoryTables } = {}): TestContext {
  const clockMs = { value: Date.UTC(2026, 0, 1, 12, 0, 0) };
  return {
    clockMs,
    clock: { now: () => clockMs.value },
    directory: opts.directory ?? createMemoryDirectory(opts.tables ?? SAMPLE_CUSTOMERS),
    location: opts.location ?? createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'test-secret-0123456789abcdef' }),
    realm: opts.realm,
  };
}

/** An auth port that accepts any credentials: for restart tests (a logic that authenticates restarts every time). */
export const acceptingAuth: AuthPort = {
  parseCredentials: () => ({ scheme: 'Digest', username: 'u', realm: 'nl.netaxis.be', nonce: 'n', uri: 'sip:x', response: 'r', algorithm: 'MD5', params: {} }),
  challenge: () => {
    throw new Error('never challenged');
  },
  verify: () => 'ok',
};
