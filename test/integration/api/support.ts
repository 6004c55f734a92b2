/**
 * An API over a real runtime: PGlite `memory://` directory (migrated, sample subscriber), the
 * location store asked for (memory by default), the flows store bootstrapped from flows/, and the
 * app built by buildApi(), exercised with `app.inject()`.
 */
import { mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import { Writable } from 'stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { parseConfig, type Config } from '../../../server/config';
import { createFlowsStore, type FlowsStore } from '../../../server/flows';
import { buildApi, type ApiOptions } from '../../../server/http';
import { createLogger } from '../../../server/logger';
import { createMetrics, type Metrics } from '../../../server/metrics';
import { openRuntime, runtimeOptionsFromConfig, type Runtime } from '../../../server/runtime';
import { answerChallenge, sampleRegister } from '../../support/sip';

export const FLOWS_DIR = path.join(__dirname, '../../../flows');
export const TOKEN = 'test-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface Fixture {
  app: FastifyInstance;
  runtime: Runtime;
  flows: FlowsStore;
  metrics: Metrics;
  config: Config;
  logs: string[];
  /** inject() with the token. */
  call(o: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function apiFixture(
  o: { location?: string; config?: Record<string, unknown>; api?: Partial<ApiOptions>; token?: boolean } = {},
): Promise<Fixture> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-api-'));
  const config = parseConfig(
    JSON.stringify({
      dataDir,
      directory: { url: 'memory://' },
      location: { url: o.location ?? 'memory' },
      auth: { nonceSecret: 'api-test-secret-0123456789' },
      ...(o.token === false ? {} : { http: { token: TOKEN } }),
      ...o.config,
    }),
    'test',
  );
  const runtime = await openRuntime({ ...runtimeOptionsFromConfig(config), purgeIntervalSec: undefined });
  const flows = await createFlowsStore({ knex: runtime.knex, primary: 'pbx' });
  await flows.bootstrap(FLOWS_DIR);
  const metrics = createMetrics({ defaultMetrics: false });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const app = await buildApi({ config, runtime, flows, metrics, logger, ...o.api });
  await app.ready();
  return {
    app,
    runtime,
    flows,
    metrics,
    config,
    logs,
    call: (opts) => app.inject({ ...opts, headers: { ...AUTH, ...(opts.headers ?? {}) } }),
    async close() {
      await app.close();
      flows.close();
      await runtime.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { answerChallenge, sampleRegister };
