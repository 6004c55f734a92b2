/**
 * Call admission control of analysis.callLimit: which limiter an instance uses (`callLimit` of the
 * configuration). `instance` (default): the memory table of this process (memory.ts), shared by
 * its SIP threads. `database`: state in a database every instance sharing it sees — the location
 * database when it is MongoDB (mongo.ts) or PostgreSQL (sql.ts), else the directory database
 * (PostgreSQL, or PGlite for a single process). docs/semantics.md gives the trade-off.
 */
import type { Knex } from 'knex';
import type { CallLimitPort } from '../../engine/ports';
import { createMemoryCallLimiter, type CallLimiterOptions } from './memory';
import { normalizeMongoUrl } from '../location/mongo';
import { createMongoCallLimiter } from './mongo';
import { createSqlCallLimiter, ensureCallLimitSchema, openCallLimitDatabase } from './sql';

export { createMemoryCallLimiter, type CallLimiterOptions, type MemoryCallLimiter } from './memory';
export { createCallSlotReleaser, type CallSlotReleaser } from './releaser';

export interface CallLimitSettings extends CallLimiterOptions {
  store: 'instance' | 'database';
  /** Bound on a database acquire or release, ms (default 2000). */
  timeoutMs?: number;
}

export interface OpenedCallLimiter {
  limiter: CallLimitPort;
  /** Where its state lives, for the start log: `instance`, `mongodb`, `postgresql (location)`, … */
  where: string;
  close(): Promise<void>;
}

export async function openCallLimiter(
  s: CallLimitSettings,
  db: { locationUrl?: string; mongoDatabase?: string; directoryUrl: string; directoryKnex: Knex },
): Promise<OpenedCallLimiter> {
  if (s.store === 'instance') return { limiter: createMemoryCallLimiter(s), where: 'instance', close: async () => undefined };
  const location = db.locationUrl ?? 'sql';
  if (/^mongodb(\+srv)?:\/\//i.test(location)) {
    // a Kamailio DBURL's slaveOk would be refused by the driver: dropped as the location store does
    // (which logs it: server/runtime.ts); the database named in the URL path wins, as there
    const norm = normalizeMongoUrl(location);
    const m = createMongoCallLimiter({ ...s, url: norm.url, database: norm.database ?? db.mongoDatabase });
    return { limiter: m, where: 'mongodb (location database)', close: () => m.close() };
  }
  const url = /^postgres(ql)?:\/\//i.test(location) ? location : /^postgres(ql)?:\/\//i.test(db.directoryUrl) ? db.directoryUrl : null;
  if (url === null) {
    await ensureCallLimitSchema(db.directoryKnex);
    return { limiter: createSqlCallLimiter(db.directoryKnex, s), where: 'directory database (embedded)', close: async () => undefined };
  }
  const knex = openCallLimitDatabase(url, s.timeoutMs);
  try {
    await ensureCallLimitSchema(knex);
  } catch (e) {
    await knex.destroy();
    throw e;
  }
  return {
    limiter: createSqlCallLimiter(knex, s),
    where: url === location ? 'postgresql (location database)' : 'postgresql (directory database)',
    close: () => knex.destroy(),
  };
}
