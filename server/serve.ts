/**
 * `sipflow serve`: the stores, the flows, the HTTP API and the SIP listeners of one process.
 *
 * Process model: `sip.workers` SIP worker threads ("auto" = one per core). With more than one,
 * the main thread owns the sockets, TCP connections and stores, and dispatches each message to a
 * worker by Call-ID (server/sip-threads), or, below sip.inlineMaxRate, handles REGISTERs and OPTIONS
 * itself (server/sip-threads/call-owners.ts); with one, the main thread does everything (no hop).
 * Either way every store, in-process ones included (PGlite, memory), has exactly one owner.
 *
 * SIGINT / SIGTERM: stop taking requests (new ones get 503, so does /health/ready), let
 * transactions in progress and in-dialog requests finish for up to SHUTDOWN_GRACE_MS, close
 * sockets, TCP connections and stores, exit; cli/serve.ts exits anyway at SHUTDOWN_DEADLINE_MS
 * (docs/operations.md, "Stopping").
 */
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { SharedNonceCounter } from '../services/auth';
import { refuseLockedUsernames } from '../services/guard';
import type { LogicTarget } from '../sip/front-end';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ListenerGroup } from '../sip/listener-group';
import { sipListeners, sipWebSocketListener, type Config } from './config';
import type { NodeRegistry } from '../engine/registry';
import { createFlowsStore, shippedFlowsDir, type FlowsStore } from './flows';
import { bindingServices } from './connection-bindings';
import { callConsumers } from './call-consumers';
import { messageConsumers } from './message-consumers';
import { openCdrWriter, type CdrWriter } from '../services/accounting';
import { historyWindow, openHistory, type History } from '../services/history';
import { buildApi } from './http';
import { logPort } from './logger';
import { instrumentContext, processMetrics } from './metrics';
import { loadNodePlugins, registryOf } from './node-plugins';
import { openRuntime, runtimeOptionsFromConfig, startupLockWaitMs, type Runtime } from './runtime';
import { withStartupLock } from '../services/directory/startup-lock';
import { createSecurity, type Security } from './security';
import { listenerFrontEndOptions, listening, startSipServer, type SipServer } from './sip-server';
import { sipTcpOptions } from './sip-tcp';
import { startSipThreads, type SipThreads } from './sip-threads/host';

/** Transactions in progress get this long to finish after SIGTERM / SIGINT. */
export const SHUTDOWN_GRACE_MS = 2000;
/** Last resort: the process exits this long after the signal was handled, whatever is still open. */
export const SHUTDOWN_DEADLINE_MS = SHUTDOWN_GRACE_MS + 3000;

export interface ServeOptions {
  config: Config;
  logger: Logger;
  /** Called once listening: the bound ports of each listener (port 0 → the real one). */
  onListening?: (listeners: ListeningInfo[]) => void;
}

export interface ListeningInfo {
  name: string;
  /** The first socket's address. */
  host: string;
  /** Each socket: transport, address, bound port. */
  sockets: Array<{ transport: string; host: string; port: number }>;
  /** The UDP / TCP socket's bound port (0 when none). */
  udpPort: number;
  tcpPort: number;
  workers: number;
  httpPort?: number;
}

export interface ServeHandle {
  listeners: ListeningInfo[];
  workers: number;
  stop(): Promise<void>;
}

/** How many SIP worker threads to run. */
function decideWorkers(requested: 'auto' | number): number {
  return requested === 'auto' ? Math.max(1, os.availableParallelism()) : requested;
}

/**
 * The service logics come from the flows store (releases activated over the API or the designer);
 * on first start it imports the shipped `flows/*.slid` (or config.flows) and activates them, on a
 * later start a changed or new file as a release not active (server/flows/bootstrap.ts). An activation swaps every front end's
 * logics at once; other instances notice by polling the store.
 */
export async function openFlows(config: Config, rt: Runtime, registry: NodeRegistry, logger: Logger): Promise<FlowsStore> {
  // instances started together take turns: the flows schema is migrated once, the shipped flows imported once
  const { flows, imported, first } = await withStartupLock(
    rt.knex,
    'flows schema and shipped flows',
    async () => {
      const store = await createFlowsStore({
        knex: rt.knex,
        registry,
        primary: 'pbx',
        onWarning: (m, err) => logger.warn({ err }, m),
        // a later start's imports (a changed or new file: a release, not active): the operator's cue to activate
        onNote: (m) => logger.warn(m),
      });
      const first = (await store.list()).length === 0;
      return { flows: store, imported: await store.bootstrap(config.flows ?? shippedFlowsDir()), first };
    },
    { waitMs: startupLockWaitMs(config.directory), log: logPort(logger) },
  );
  if (first && imported.length) logger.info({ flows: imported }, 'imported shipped flows as release 1');
  return flows;
}

const targetOf =
  (flows: FlowsStore) =>
  (ref: string): LogicTarget | undefined => {
    const r = flows.resolve(ref);
    return r ? { service: r.service, logic: r.logic.id, flow: r.flow, version: r.version } : undefined;
  };

/** Every listener served by the main thread itself (one SIP thread). */
async function startInProcess(
  config: Config,
  rt: Runtime,
  logger: Logger,
  flows: FlowsStore,
  security: Security,
  cdrs: CdrWriter | null,
  history: History,
): Promise<{ servers: SipServer[]; close(): Promise<void> }> {
  const resolve = targetOf(flows);
  const servers: SipServer[] = [];
  const log = logPort(logger);
  const metrics = processMetrics();
  // bindings tied to their connection, keepalives (server/connection-bindings.ts)
  const nat = bindingServices(config, { location: rt.ctx.location, store: rt.store, log, transports: () => servers.map((s) => s.transports) });
  const instrumented = instrumentContext({ ...rt.ctx, location: nat.location }, metrics);
  // a locked username never authenticates on SIP (services/guard/locks.ts)
  const ctx = { ...instrumented, auth: refuseLockedUsernames(instrumented.auth, security.guard) };
  // TCP timeouts and connection caps (sip.tcp): one gate for every listener
  const tcp = sipTcpOptions(config, { logger, metrics });
  // one set of call-event consumers (accounting, call admission control) for every listener
  const calls = callConsumers(config, ctx, log, { cdrs: cdrs ? (r) => cdrs.accept(r) : undefined, metrics });
  // one set of message observers (call history, HEP capture) for every listener
  const observers = messageConsumers(config, log, {
    metrics,
    history: { sink: history.store.accept, debugNumbers: history.debug.numbers, window: historyWindow(config.history.backlogMax, 1) },
  });
  const unsubscribeDebug = history.debug.onChange((numbers) => observers.history?.setDebugNumbers(numbers));
  // every listener's sockets for every relay: one reaches the destination's address family
  const group = new ListenerGroup();
  try {
    for (const l of sipListeners(config.sip.listeners)) {
      servers.push(
        await startSipServer({
          ...listenerFrontEndOptions(config, l, {
            service: flows.active(),
            resolve,
            ctx,
            log,
            nonceSecret: rt.nonceSecret,
            observe: (method, outcome, seconds, hadCredentials) => metrics.observeRun(method, outcome, seconds, { hadCredentials }),
            calls,
            tap: observers.tap,
            runs: observers.runs,
          }),
          admit: (data, peer) => !nat.consume(data) && !security.drop(data, peer.address),
          onConnectionClosed: nat.onConnectionClosed,
          onAuthFailure: (source, username) => security.guard.authFailure(source, username),
          host: l.sockets[0].host,
          port: l.sockets[0].port,
          sockets: l.sockets,
          group,
          ...tcp,
        }),
      );
    }
  } catch (e) {
    nat.stop();
    unsubscribeDebug();
    for (const s of servers) await s.close(0);
    await observers.close();
    throw e;
  }
  // sipflow_sip_messages_total and the rest (server/front-end-metrics.ts), from these front ends
  const removeStats = metrics.frontEnds.add(() => servers.map((s) => s.frontEnd.stats));
  const unsubscribe = flows.onActivate(({ service }) => {
    for (const s of servers) {
      try {
        s.frontEnd.setFlows(service, resolve);
      } catch (e) {
        logger.error({ err: e }, 'activated flows do not fit the routes: keeping the previous ones');
      }
    }
  });
  return {
    servers,
    async close() {
      unsubscribe();
      unsubscribeDebug();
      removeStats();
      nat.stop();
      await Promise.all(servers.map((s) => s.close(SHUTDOWN_GRACE_MS)));
      await observers.close();
    },
  };
}

/** The HTTP API (flows, simulate, execute, directory, registrations, health, metrics). */
async function startApi(
  config: Config,
  rt: Runtime,
  flows: FlowsStore,
  logger: Logger,
  security: Security,
  history: History,
  sipState: () => 'starting' | 'ok' | 'stopping',
): Promise<FastifyInstance | null> {
  if (!config.http.enabled) return null;
  const app = await buildApi({ config, runtime: rt, flows, logger, security: security.guard, history, sipState });
  await app.listen({ host: config.http.host, port: config.http.port });
  return app;
}

export async function serve(o: ServeOptions): Promise<ServeHandle> {
  const { config, logger } = o;
  const workers = decideWorkers(config.sip.workers);
  const sipOverHttpListener = sipWebSocketListener(config); // throws when http.sipWebSocket names no ws socket
  // node plug-ins (nodes.plugins): one that cannot be used refuses the start, before anything opens
  const plugins = loadNodePlugins(config.nodes.plugins);
  const registry = registryOf(plugins);
  for (const p of plugins) logger.info({ plugin: p.plugin, file: p.file, types: p.types.map((t) => t.type) }, 'node plug-in loaded');
  // Replay protection must see every worker's accepted nonce-counts: one table in shared memory.
  const nonceCounts = SharedNonceCounter.create();
  // Nonces issued before this instant may have been used before the table above existed (a
  // restart): answered stale. One epoch for the process: every SIP thread, restarted ones too.
  const bootEpoch = Date.now();
  if (config.nodes.now !== undefined)
    logger.warn(
      { now: config.nodes.now },
      'nodes.now: the date and time nodes run on a calendar started at this instant, not the real date (for trying a service)',
    );
  const rt = await openRuntime({ ...runtimeOptionsFromConfig(config), log: logPort(logger), nonceCounts: new SharedNonceCounter(nonceCounts), bootEpoch });
  let flows: FlowsStore | undefined;
  let api: FastifyInstance | null = null;
  // CDRs of every SIP thread are written here (accounting.*): closed after the SIP threads, before the stores
  const cdrs = config.accounting.enabled ? cdrWriter(config, rt, logger) : null;
  // the call history of every SIP thread is written here (history.*); the API reads it and switches its debug filter
  const history = openHistory(config.history, {
    knex: rt.knex,
    log: logPort(logger),
    onWritten: (n) => processMetrics().historyWritten.inc(n),
    onDropped: (reason) => processMetrics().historyDropped.inc({ reason }),
  });
  // /health/ready says 503 until the SIP listeners are up and from SIGTERM on (docs/operations.md "Stopping")
  let sipState: 'starting' | 'ok' | 'stopping' = 'starting';
  // brute-force and flood defence: one guard for every SIP thread of this process
  let security: Security;
  try {
    security = createSecurity(config.security, { logger, metrics: processMetrics() });
    flows = await openFlows(config, rt, registry, logger);
    api = await startApi(config, rt, flows, logger, security, history, () => sipState);
  } catch (e) {
    await api?.close();
    flows?.close();
    await cdrs?.close();
    await history.close();
    await rt.close();
    throw e;
  }
  const activeFlows = flows;
  const stopPolling = activeFlows.startPolling();
  const httpPort = api ? (api.server.address() as { port: number }).port : undefined;
  const closeShared = async () => {
    stopPolling();
    await api?.close();
    activeFlows.close();
    await cdrs?.close();
    await history.close();
    processMetrics().setCdrBacklogSource(null);
    await rt.close();
  };

  type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  let sip: {
    listeners: Array<Omit<ListeningInfo, 'workers' | 'httpPort'>>;
    upgradeHandler(listener: string): UpgradeHandler | undefined;
    close(): Promise<void>;
  };
  try {
    if (workers === 1) {
      const s = await startInProcess(config, rt, logger, activeFlows, security, cdrs, history);
      const groups = sipListeners(config.sip.listeners);
      sip = {
        listeners: groups.map((l, i) => listening(l, s.servers[i].ports)),
        upgradeHandler: (name) => s.servers[groups.findIndex((l) => l.name === name)]?.transports.upgradeHandler('ws'),
        close: s.close,
      };
    } else {
      const threads: SipThreads = await startSipThreads({
        config,
        ctx: instrumentContext(rt.ctx, processMetrics()),
        store: rt.store,
        flows: activeFlows,
        logger,
        metrics: processMetrics(),
        workers,
        nonceSecret: rt.nonceSecret,
        nonceCounts,
        bootEpoch,
        onDirectoryWrite: rt.onDirectoryWrite,
        security,
        cdrs: cdrs ?? undefined,
        history,
      });
      sip = { listeners: threads.listeners, upgradeHandler: (name) => threads.upgradeHandler(name, 'ws'), close: () => threads.close(SHUTDOWN_GRACE_MS) };
    }
  } catch (e) {
    await closeShared();
    throw e;
  }
  if (api && sipOverHttpListener !== undefined) sipOverHttp(config.http.sipWebSocket.path, sipOverHttpListener, api, sip.upgradeHandler, logger);
  const info = sip.listeners.map((l) => ({ ...l, workers, httpPort }));
  sipState = 'ok';
  o.onListening?.(info);
  let stopping: Promise<void> | null = null;
  return {
    listeners: info,
    workers,
    stop: () =>
      (stopping ??= (async () => {
        sipState = 'stopping';
        await sip.close();
        await closeShared();
      })()),
  };
}

/** The CDR writer of `accounting`, its counts in /metrics. */
function cdrWriter(config: Config, rt: Runtime, logger: Logger): CdrWriter {
  const metrics = processMetrics();
  const writer = openCdrWriter(config.accounting, {
    knex: rt.knex,
    log: logPort(logger),
    onOverflow: (sink) => metrics.cdrsDropped.inc({ sink }),
    onWritten: (sink, n) => metrics.cdrsWritten.inc({ sink }, n),
  });
  metrics.setCdrBacklogSource(() => writer.backlog());
  if (!config.sip.recordRoute)
    logger.warn(
      'accounting.enabled without sip.recordRoute: BYEs do not pass through sipflow, so connected calls get no stop record (only start, interim or timeout ones)',
    );
  if (!config.accounting.database && config.accounting.file === null)
    logger.warn('accounting.enabled with neither accounting.database nor accounting.file: CDRs go nowhere');
  return writer;
}

/**
 * http.sipWebSocket: the HTTP API's upgrades on the configured path go to a listener's ws socket
 * (one reverse proxy in front of both); any other upgrade is refused.
 */
function sipOverHttp(
  path: string,
  name: string,
  api: FastifyInstance,
  upgradeHandler: (listener: string) => ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined,
  logger: Logger,
): void {
  const accept = upgradeHandler(name);
  if (accept === undefined) {
    logger.error({ listener: name }, 'http.sipWebSocket: the listener has no ws socket; SIP over the HTTP port is off');
    return;
  }
  api.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) === path) {
      accept(req, socket, head);
      return;
    }
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
  });
}
