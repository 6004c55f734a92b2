/**
 * `sipflow serve` process model: every core when that is safe, one process when it is not.
 *
 * Decision (documented in docs and the report):
 *  - Stores that live inside a process — PGlite (the embedded directory, and the `sql` location
 *    table on it) and the in-memory location store — cannot be shared between processes. With any
 *    of them, sipflow runs ONE process: the SIP front end, the logic and the stores together.
 *    (Serving the primary's stores to workers over IPC would put a serialisation round trip on
 *    every REGISTER, which costs more than the second core gives on the 2-core target.)
 *  - When every store is networked (directory on postgres://, location on postgres:// or
 *    mongodb://, i.e. `Runtime.shareable`) and `--workers N` (N > 1) is asked for, the primary
 *    migrates/provisions once, keeps the expired-binding purge, and forks N workers. Workers share
 *    the primary's UDP socket (cluster handle sharing, `exclusive: false`) and TCP listener; each
 *    opens its own pools to the stores. Nonces are stateless HMACs with the secret file in the data
 *    dir, so a challenge issued by one worker verifies in another.
 *    Caveat, and why `auto` is 1: a shared UDP socket hands each datagram to whichever worker reads
 *    first, so a request retransmission may reach a worker that does not hold its transaction and
 *    be processed again (measured under load: a REGISTER saved twice). Dispatching datagrams to
 *    workers by Call-ID is the missing piece before workers become the default.

 * SIGINT / SIGTERM: stop taking requests (new ones get 503), let transactions in progress finish
 * for up to 2 s, close sockets and stores, exit.
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config';
import { logPort } from './logger';
import type { FastifyInstance } from 'fastify';
import { createFlowsStore, type FlowsStore } from './flows-store';
import { buildApi } from './http';
import { instrumentContext, processMetrics } from './metrics';
import { openRuntime, runtimeOptionsFromConfig, type Runtime } from './runtime';
import { startSipServer, type SipServer } from './sip-server';
import type { LogicTarget } from '../sip/front-end';

export const WORKER_ENV = 'SIPFLOW_SERVE_WORKER_CONFIG';

export interface ServeOptions {
  config: Config;
  logger: Logger;
  /** Called once listening: the bound ports of each listener (port 0 → the real one). */
  onListening?: (listeners: ListeningInfo[]) => void;
}

export interface ListeningInfo { name: string; host: string; udpPort: number; tcpPort: number; workers: number; httpPort?: number }

export interface ServeHandle {
  listeners: ListeningInfo[];
  workers: number;
  stop(): Promise<void>;
}

/** How many SIP processes to run. */
export function decideWorkers(requested: 'auto' | number, shareable: boolean, log?: Logger): number {
  if (!shareable) {
    if (requested !== 'auto' && requested > 1) {
      log?.warn({ requested }, 'in-process stores (PGlite / memory) cannot be shared between processes: running 1 SIP process; use postgres:// and mongodb:// stores for more');
    }
    return 1;
  }
  // Workers share one UDP socket, so a retransmission may reach a worker that does not hold its
  // transaction and be processed twice (measured: duplicate bindings under load). Until datagrams
  // are dispatched to workers by Call-ID, `auto` stays one process; N workers are an explicit choice.
  if (requested === 'auto') return 1;
  if (requested > 1) {
    log?.warn({ requested }, 'several SIP workers share the UDP socket: a UDP retransmission can be handled by a second worker (e.g. a binding saved twice); prefer TCP or a front end that absorbs retransmissions');
  }
  return requested;
}

/**
 * The service logics come from the flows store (releases activated over the API or the designer);
 * on first start it imports the shipped `flows/*.slid`. An activation swaps every front end's
 * logics at once; other instances and workers notice by polling the store.
 */
async function openFlows(config: Config, rt: Runtime, logger: Logger, bootstrap: boolean): Promise<FlowsStore> {
  const flows = await createFlowsStore({ knex: rt.knex, primary: 'pbx', onWarning: (m, err) => logger.warn({ err }, m) });
  if (bootstrap) {
    const imported = await flows.bootstrap(config.flows);
    if (imported.length) logger.info({ flows: imported }, 'imported shipped flows as release 1');
  }
  return flows;
}

const targetOf = (flows: FlowsStore) => (ref: string): LogicTarget | undefined => {
  const r = flows.resolve(ref);
  return r ? { service: r.service, logic: r.logic.id } : undefined;
};

async function startListeners(config: Config, rt: Runtime, logger: Logger, shared: boolean, flows: FlowsStore): Promise<{ servers: SipServer[]; info: ListeningInfo[]; unsubscribe: () => void }> {
  const resolve = targetOf(flows);
  const servers: SipServer[] = [];
  const info: ListeningInfo[] = [];
  const log = logPort(logger);
  const metrics = processMetrics();
  const ctx = instrumentContext(rt.ctx, metrics);
  try {
    for (const l of config.sip.listeners) {
      const s = await startSipServer({
        service: flows.active(), resolve, ctx, host: l.host, port: l.port, udp: l.transports.includes('udp'), tcp: l.transports.includes('tcp'),
        shared, listenerName: l.name, advertisedHost: l.advertise, aliases: [...config.sip.aliases, ...(config.sip.domain ? [config.sip.domain] : [])],
        routes: config.routes, defaultLogic: resolve(config.defaultLogic) ? config.defaultLogic : undefined,
        called: config.sip.called, recordRoute: config.sip.recordRoute,
        exitResponse: config.sip.defaultRoute,
        loopGuard: { maxPerCallId: config.sip.loopGuard.maxOccurrences, windowSec: config.sip.loopGuard.windowSec },
        run: { limits: config.limits }, log,
        observe: (method, outcome, seconds, hadCredentials) => metrics.observeRun(method, outcome, seconds, { hadCredentials }),
      });
      servers.push(s);
      info.push({ name: l.name, host: l.host, udpPort: s.udpPort, tcpPort: s.tcpPort, workers: 1 });
    }
  } catch (e) {
    for (const s of servers) await s.close(0);
    throw e;
  }
  const unsubscribe = flows.onActivate(({ service }) => {
    for (const s of servers) {
      try { s.frontEnd.setFlows(service, resolve); } catch (e) { logger.error({ err: e }, 'activated flows do not fit the routes: keeping the previous ones'); }
    }
  });
  return { servers, info, unsubscribe };
}

/** The HTTP API (flows, simulate, execute, directory, registrations, health, metrics) in the primary process. */
async function startApi(config: Config, rt: Runtime, flows: FlowsStore, logger: Logger): Promise<FastifyInstance | null> {
  if (!config.http.enabled) return null;
  const app = await buildApi({ config, runtime: rt, flows, logger });
  await app.listen({ host: config.http.host, port: config.http.port });
  return app;
}

/** Runs the SIP service in this process, or as the cluster primary forking workers. */
export async function serve(o: ServeOptions): Promise<ServeHandle> {
  const { config, logger } = o;
  if (cluster.isWorker && process.env[WORKER_ENV]) return serveWorker(o);

  const rt = await openRuntime({ ...runtimeOptionsFromConfig(config), log: logPort(logger) });
  let flows: FlowsStore;
  let api: FastifyInstance | null = null;
  try {
    flows = await openFlows(config, rt, logger, true);
    api = await startApi(config, rt, flows, logger);
  } catch (e) {
    await api?.close();
    await rt.close();
    throw e;
  }
  const stopPolling = flows.startPolling();
  const httpPort = api ? (api.server.address() as { port: number }).port : undefined;
  const closeShared = async () => { stopPolling(); await api?.close(); flows.close(); await rt.close(); };
  const workers = decideWorkers(config.sip.workers, rt.shareable, logger);
  if (workers === 1) {
    let started: Awaited<ReturnType<typeof startListeners>>;
    try {
      started = await startListeners(config, rt, logger, false, flows);
    } catch (e) {
      await closeShared();
      throw e;
    }
    const info = started.info.map((i) => ({ ...i, httpPort }));
    o.onListening?.(info);
    let stopping: Promise<void> | null = null;
    return {
      listeners: info, workers: 1,
      stop: () => (stopping ??= (async () => {
        started.unsubscribe();
        await Promise.all(started.servers.map((s) => s.close(2000)));
        await closeShared();
      })()),
    };
  }

  // cluster primary: stores were migrated/provisioned by openRuntime above; the purge timer stays here
  const env = { [WORKER_ENV]: JSON.stringify(config) };
  const alive = new Set<import('node:cluster').Worker>();
  let stopping = false;
  let reported = false;
  const listening = new Map<number, ListeningInfo[]>();
  const ready = new Promise<ListeningInfo[]>((resolve, reject) => {
    const fork = () => {
      const w = cluster.fork(env);
      alive.add(w);
      w.on('message', (m: { type?: string; info?: ListeningInfo[]; error?: string }) => {
        if (m?.type === 'listening' && m.info) {
          listening.set(w.id, m.info);
          if (!reported && listening.size === workers) {
            reported = true;
            resolve(m.info.map((i) => ({ ...i, workers })));
          }
        } else if (m?.type === 'failed') {
          reject(new Error(`worker failed to start: ${m.error}`));
        }
      });
      w.on('exit', (code, signal) => {
        alive.delete(w);
        if (stopping) return;
        logger.error({ worker: w.process.pid, code, signal }, 'SIP worker exited; starting another');
        if (reported) fork();
      });
    };
    for (let i = 0; i < workers; i++) fork();
  });
  let info: ListeningInfo[];
  try {
    info = await ready;
  } catch (e) {
    stopping = true;
    for (const w of alive) w.kill();
    await closeShared();
    throw e;
  }
  info = info.map((i) => ({ ...i, httpPort }));
  o.onListening?.(info);
  let stopped: Promise<void> | null = null;
  return {
    listeners: info, workers,
    stop: () => (stopped ??= (async () => {
      stopping = true;
      const exits = [...alive].map((w) => new Promise<void>((r) => {
        const t = setTimeout(() => { w.kill('SIGKILL'); r(); }, 5000);
        w.once('exit', () => { clearTimeout(t); r(); });
        w.send({ type: 'shutdown' });
      }));
      await Promise.all(exits);
      await closeShared();
    })()),
  };
}

/** A cluster worker: own store connections (networked only), shared sockets. */
async function serveWorker(o: ServeOptions): Promise<ServeHandle> {
  const config = JSON.parse(process.env[WORKER_ENV]!) as Config;
  const logger = o.logger.child({ worker: cluster.worker?.id });
  let rt: Runtime;
  let flows: FlowsStore;
  let started: Awaited<ReturnType<typeof startListeners>>;
  try {
    rt = await openRuntime({ ...runtimeOptionsFromConfig(config), provision: false, purgeIntervalSec: undefined, log: logPort(logger) });
    flows = await openFlows(config, rt, logger, false);
    started = await startListeners(config, rt, logger, true, flows);
  } catch (e) {
    process.send?.({ type: 'failed', error: (e as Error).message });
    throw e;
  }
  const stopPolling = flows.startPolling();
  let stopping: Promise<void> | null = null;
  const handle: ServeHandle = {
    listeners: started.info, workers: 1,
    stop: () => (stopping ??= (async () => {
      stopPolling();
      started.unsubscribe();
      await Promise.all(started.servers.map((s) => s.close(2000)));
      flows.close();
      await rt.close();
    })()),
  };
  const quit = () => void handle.stop().finally(() => process.exit(0));
  process.on('message', (m: { type?: string }) => { if (m?.type === 'shutdown') quit(); });
  process.on('disconnect', quit);  // the primary is gone
  process.send?.({ type: 'listening', info: started.info });
  return handle;
}
