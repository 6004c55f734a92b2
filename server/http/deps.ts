/** What the route modules share. */
import type { Logger } from 'pino';
import type { RunContext, RunLimits } from '../../engine/types';
import type { Subscribers } from '../../services/directory';
import type { Guard } from '../../services/guard';
import type { History } from '../../services/history';
import type { RegistrarOptions } from '../../services/location/registrar';
import type { Config } from '../config';
import type { FlowsStore } from '../flows';
import type { Metrics } from '../metrics';
import type { Runtime } from '../runtime';
import type { LocationAdmin } from './location-admin';
import type { SubscribersAdmin } from './subscribers-admin';

export interface ApiDeps {
  config: Config;
  runtime: Runtime;
  flows: FlowsStore;
  subscribers: Subscribers;
  subscribersAdmin: SubscribersAdmin;
  location: LocationAdmin;
  metrics: Metrics;
  logger: Logger;
  /** The production run context with instrumented ports (what the SIP front end uses). */
  ctx: RunContext;
  limits?: Partial<RunLimits>;
  registrarOptions: RegistrarOptions;
  /** The SIP guard (bans and locks), null when the API runs without SIP threads. */
  security: Guard | null;
  /** The call history: its store (GET /calls) and debug filter (followed by the SIP threads' recorders, when there are any). */
  history: History;
}
