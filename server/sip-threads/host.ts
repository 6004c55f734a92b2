/**
 * SIP on every core: this (dispatching) thread owns the listening sockets, the stream connections (TCP, WebSocket) and
 * the stores; N worker threads run the front end (parse, transactions, service logic, responses,
 * relay). Each message goes to the worker chosen by its Call-ID (`callIdHash`), so retransmissions,
 * ACK, CANCEL and responses to relayed requests meet their transaction: no request is processed
 * twice, which sharing one socket between processes cannot guarantee.
 *
 * While the load is low (`sip.inlineMaxRate`), this thread also runs a front end of its own, the
 * same SIP thread (sip-thread.ts) on a local channel (local-channel.ts), and REGISTERs and OPTIONS go to it: no thread
 * is woken for them. It calls this thread's store ports directly (its directory reads share this
 * thread's cache). Which message goes where: call-owners.ts.
 *
 * Workers send UDP from their own sockets bound to the SIP port (SO_REUSEADDR); this thread binds
 * its receiving socket last, after every worker is up, because Linux delivers a unicast datagram
 * to the socket bound last. A datagram that reaches a worker's socket anyway is handed back here.
 *
 * Stores are called here (one owner per binding: the registrar's per-AoR serialisation and the
 * in-memory store stay correct); workers keep a thread-local directory cache when
 * `directory.cacheSec` is set, and their query nodes may cache results (`caching`): every change
 * on this process's directory change feed (services/directory/changes.ts) is sent to every worker
 * as an `invalidate` control message, which empties both.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CallLimitRule } from '../../engine/ports';
import type { RunContext, Scalar } from '../../engine/types';
import type { LocationStore } from '../../services/location/types';
import { callIdHash } from '../../sip/dispatch';
import { CallOwners } from './call-owners';
import { localChannel } from './local-channel';
import { threadCpuShare } from './thread-cpu';
import { runSipThread, type DispatcherPorts } from './sip-thread';
import { SipTransports, type LocalEndpoint, type Peer } from '../../sip/transport';
import { transportById, transportOf } from '../../sip/transports';
import { directoryCacheSec, sipListeners, type Config } from '../config';
import type { FlowsStore } from '../flows';
import type { Metrics } from '../metrics';
import type { Security } from '../security';
import { bindingServices } from '../connection-bindings';
import { logPort } from '../logger';
import type { CdrWriter } from '../../services/accounting';
import { historyWindow, type History } from '../../services/history';
import { listening } from '../sip-server';
import { sipTcpOptions } from '../sip-tcp';
import { packBindings, packRegisterResult, unpackRegisterRequest, type PackedRequest } from './location-codec';
import {
  Outbox,
  own,
  serializeError,
  type FlowText,
  type FromWorker,
  type FromWorkerItem,
  type InboundSip,
  type StoreCall,
  type ToWorker,
  type ToWorkerItem,
  type WorkerEvent,
  type WorkerInit,
} from './protocol';

export interface SipThreadsOptions {
  config: Config;
  /** Instrumented run context: the stores workers call. */
  ctx: RunContext;
  /** The location store beneath `ctx.location` (bindings tied to connections, keepalives: server/connection-bindings.ts). */
  store: LocationStore;
  flows: FlowsStore;
  logger: Logger;
  metrics: Metrics;
  workers: number;
  nonceSecret: Buffer;
  nonceCounts: SharedArrayBuffer;
  /** The process's boot epoch (ms) for the workers' digest checks (nonces issued before it are stale). */
  bootEpoch?: number;
  /** Subscribe to directory changes (the workers' caches are emptied on each: control message `invalidate`). */
  onDirectoryWrite?: (listener: () => void) => () => void;
  /** Brute-force and flood defence (server/security.ts): checked here before each hand-off; workers report failures and get the locks. */
  security?: Security;
  /** The CDR writer (services/accounting) the workers' records go to; none: dropped. */
  cdrs?: CdrWriter;
  /** The call history (services/history): the workers' recorded calls go to its writer, its debug filter to every worker. */
  history?: History;
}

export interface SipThreads {
  listeners: Array<ReturnType<typeof listening>>;
  workers: number;
  /** The HTTP-upgrade handler of a listener's socket of a transport (WebSocket on the HTTP port), if any. */
  upgradeHandler(listener: string, proto: string): ReturnType<SipTransports['upgradeHandler']>;
  /** Stops taking requests, lets transactions finish for up to `graceMs`, stops the workers. */
  close(graceMs?: number): Promise<void>;
}

/** The compiled worker entry (dist/…/worker.js); under ts-jest the sources have no .js, so the build's. */
function workerFile(): string {
  const here = path.join(__dirname, 'worker.js');
  if (existsSync(here)) return here;
  const built = path.resolve(__dirname, '../../dist/server/sip-threads/worker.js');
  if (existsSync(built)) return built;
  throw new Error(`SIP worker thread entry not found (${here}); run npm run build`);
}

/** Bytes of messages held at most per starting worker (a few seconds of a busy start; beyond, UDP retransmits). */
const HELD_MAX_BYTES = 8 * 1024 * 1024;

/** What the dispatcher uses of a SIP thread: a worker thread, or the inline front end (inlineThread). */
type SipThread = Pick<Worker, 'postMessage' | 'on' | 'terminate'>;

/**
 * The SIP thread of sip-thread.ts run in this thread, on one end of a local channel
 * (local-channel.ts): the dispatcher talks to it as to a worker (the same messages, cloned as
 * between threads, so neither side shares an object with the other), except that it calls the
 * dispatcher's store ports directly (`ports`: sip-thread.ts DispatcherPorts). 'exit' once it
 * closed its end (at 'stop').
 */
function inlineThread(init: WorkerInit, ports: DispatcherPorts): SipThread {
  const { port1, port2 } = localChannel();
  const events = new EventEmitter();
  port1.on('message', (m) => events.emit('message', m));
  port1.on('close', () => events.emit('exit', 0));
  try {
    runSipThread(init, port2, ports);
  } catch (e) {
    // as a worker whose module threw: 'error', then 'exit'
    setImmediate(() => {
      events.emit('error', e);
      port1.close();
    });
  }
  return {
    postMessage: (m: unknown) => port1.postMessage(m),
    on(event: string, listener: (...args: never[]) => void) {
      events.on(event, listener as (...args: unknown[]) => void);
      return this;
    },
    terminate: () => {
      port1.close();
      return Promise.resolve(0);
    },
  } as SipThread;
}

const flowTexts = (flows: FlowsStore): FlowText[] => flows.activeFlows().map((f) => ({ flow: f.flow, version: f.version, text: f.text }));

export async function startSipThreads(o: SipThreadsOptions): Promise<SipThreads> {
  const { config, logger } = o;
  // the connections live here: bindings tied to them, keepalives (server/connection-bindings.ts)
  const nat = bindingServices(config, { location: o.ctx.location, store: o.store, log: logPort(logger), transports: () => transports });
  const ctx: RunContext = { ...o.ctx, location: nat.location };
  const n = o.workers;
  // the inline front end, slot n, while the load is low: REGISTERs and OPTIONS wake no thread
  const owners = config.sip.inlineMaxRate > 0 ? new CallOwners({ workers: n, maxRate: config.sip.inlineMaxRate, utilization: threadCpuShare() }) : null;
  const threadCount = owners ? n + 1 : n;
  const slots: Array<SipThread | null> = new Array(threadCount).fill(null);
  const outboxes: Array<Outbox<ToWorkerItem> | null> = new Array(threadCount).fill(null);
  let stopping = false;
  let metricsSeq = 0;
  const metricsWaits = new Map<number, (json: unknown[]) => void>();
  const eventWaits: Array<Map<WorkerEvent['t'], () => void>> = slots.map(() => new Map());

  // ------------------------------------------------------------ sockets (this thread)
  const transports: SipTransports[] = [];
  const security = o.security;
  // messages handed on, by where (sipflow_sip_dispatched_total): plain counts, read at each scrape
  const dispatched = { inline: 0, worker: 0 };
  o.metrics.setDispatchSource(() => dispatched);
  /**
   * Messages for a worker that is starting (the sockets accept before the workers are up, and a
   * failed worker is replaced): held, up to HELD_MAX_BYTES, and handed over when it is ready. Dropping
   * them would cost a TCP client its request for good: stream clients do not retransmit.
   */
  const held: Array<InboundSip[] | null> = new Array(threadCount).fill(null);
  const heldBytes: number[] = new Array(threadCount).fill(0);
  const dispatch = (listener: number) => (data: Buffer, peer: Peer, local: LocalEndpoint) => {
    if (nat.consume(data)) return; // a reply to our keepalive
    if (security !== undefined && security.drop(data, peer.address)) return; // banned, over rate, scanner: no answer
    const now = Date.now();
    const w = owners !== null ? owners.route(data, now) : n === 1 ? 0 : callIdHash(data) % n;
    if (w === n) dispatched.inline++;
    else dispatched.worker++;
    const out = outboxes[w];
    const hold = out === null ? held[w] : null;
    if (out === null && (hold === null || heldBytes[w] + data.length > HELD_MAX_BYTES)) return; // no worker to take it: the UA retransmits (UDP)
    const t = transportOf(peer.proto);
    // a stream transport's connection stays here: the worker names it by its id
    const m: InboundSip = [0, own(data), t.id, peer.address, peer.port, listener, local.address, local.port, peer.conn?.id ?? -1, now];
    if (out !== null) out.push(m);
    else {
      hold!.push(m);
      heldBytes[w] += data.length;
    }
  };
  // TCP timeouts and connection caps (sip.tcp): the connections live here, one gate for every listener
  const tcp = sipTcpOptions(config, { logger, metrics: o.metrics });
  const groups = sipListeners(config.sip.listeners);
  try {
    for (let i = 0; i < groups.length; i++) {
      const l = groups[i];
      const t = new SipTransports({
        host: l.sockets[0].host,
        port: l.sockets[0].port,
        sockets: l.sockets,
        reuseAddr: true,
        onMessage: dispatch(i),
        onWarning: (m) => logger.warn(m),
        onConnectionClosed: nat.onConnectionClosed,
        ...tcp,
      });
      transports.push(t);
      await t.start();
    }
  } catch (e) {
    nat.stop();
    for (const t of transports) await t.close();
    throw e;
  }

  // ------------------------------------------------------------ store calls from workers
  async function serve(out: Outbox<ToWorkerItem>, m: StoreCall): Promise<void> {
    const [, id, method, args] = m;
    try {
      let v: unknown;
      switch (method) {
        case 'directory.query':
          v = await ctx.directory.query(args[0] as never);
          break;
        case 'directory.schema':
          v = await ctx.directory.schema();
          break;
        case 'location.register':
          v = packRegisterResult(await ctx.location.register(unpackRegisterRequest(args[0] as PackedRequest)));
          break;
        case 'location.lookup':
          v = packBindings(await ctx.location.lookup(args[0] as string, args[1] as string | null, args[2] as Date));
          break;
        case 'cache.get':
          v = ctx.cache ? await ctx.cache.get(args[0] as string) : undefined;
          break;
        case 'cache.set':
          v = ctx.cache ? await ctx.cache.set(args[0] as string, args[1] as Scalar, args[2] as number) : false;
          break;
        case 'callLimit.acquire':
          if (!ctx.callLimits) throw new Error('no call limiter');
          v = await ctx.callLimits.acquire(args[0] as string, args[1] as string, args[2] as CallLimitRule, args[3] as number);
          break;
        case 'callLimit.release':
          v = await ctx.callLimits?.release(args[0] as string, args[1] as string[]);
          break;
        default:
          throw new Error(`unknown store call ${String(method)}`);
      }
      out.push([2, id, true, v]);
    } catch (e) {
      out.push([2, id, false, serializeError(e)]);
    }
  }

  function onWorkerItem(out: Outbox<ToWorkerItem>, m: FromWorkerItem): void {
    switch (m[0]) {
      case 1:
        void serve(out, m);
        return;
      case 3: {
        const [, id, listener, transport, bytes, address, port, connId, flowOnly, serverName] = m;
        const proto = transportById(transport)?.name;
        // a binding's connection: whichever listener accepted it (ids are process-wide)
        const t = (flowOnly && proto !== undefined && transports.find((x) => x.connection(proto, connId) !== undefined)) || transports[listener];
        const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (!t || proto === undefined) {
          if (id) out.push([4, id, 'no such listener']);
          return;
        }
        const peer: Peer =
          connId < 0 ? { proto, address, port } : flowOnly ? { proto, address, port, connId, flowOnly: true } : { proto, address, port, connId };
        if (serverName !== null) peer.serverName = serverName;
        if (id) t.send(buf, peer, (err) => out.push([4, id, err ? err.message : null]));
        else t.send(buf, peer);
        return;
      }
      case 5: {
        const [, listener, transport, bytes, address, port] = m;
        const t = transports[listener];
        const proto = transportById(transport)?.name;
        if (t && proto !== undefined)
          dispatch(listener)(
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            { proto, address, port },
            { proto, address: t.advertised, port: t.portOf(proto) },
          );
        return;
      }
      case 6:
        security?.guard.authFailure(m[1], m[2]);
        return;
      case 7:
        o.cdrs?.accept(m[1]);
        return;
      case 8:
        // told back to the worker once written (HistorySettled: the outbox batches them)
        o.history?.store.acceptStored(m[1], () => out.push([9, 1]));
        return;
    }
  }

  function onWorkerMessage(index: number, out: Outbox<ToWorkerItem>, m: FromWorker): void {
    if (Array.isArray(m)) {
      for (const item of m) onWorkerItem(out, item);
      return;
    }
    if (m.t === 'metrics') {
      metricsWaits.get(m.id)?.(m.json);
      metricsWaits.delete(m.id);
      return;
    }
    const wait = eventWaits[index].get(m.t);
    if (wait) {
      eventWaits[index].delete(m.t);
      wait();
    }
  }

  const waitFor = (index: number, t: WorkerEvent['t'], ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        eventWaits[index].delete(t);
        resolve(false);
      }, ms);
      eventWaits[index].set(t, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  // ------------------------------------------------------------ workers
  const file = workerFile();
  const listenerInfo: WorkerInit['listeners'] = groups.map((l, i) => ({
    name: l.name,
    advertised: transports[i].advertised,
    sockets: l.sockets.map((s) => ({ transport: transportOf(s.transport).id, host: s.host, port: transports[i].portOf(s.transport) })),
  }));

  function spawn(index: number): Promise<SipThread> {
    const init: WorkerInit = {
      index,
      config,
      listeners: listenerInfo,
      nonceSecret: new Uint8Array(o.nonceSecret),
      nonceCounts: o.nonceCounts,
      bootEpoch: o.bootEpoch,
      flows: flowTexts(o.flows),
      directoryCacheSec: directoryCacheSec(config),
      maxQueueMs: config.sip.maxQueueMs,
      shedAfterMs: config.sip.shedAfterMs,
      historyWindow: historyWindow(config.history.backlogMax, threadCount),
    };
    const w = index === n ? inlineThread(init, ctx) : new Worker(file, { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 96 } });
    // the inline front end runs in this thread: a batch for it wakes no one, so it is not held (a
    // timed hold would only add a wake-up of this thread per batch: protocol.ts Outbox)
    const out = new Outbox<ToWorkerItem>(w, index === n ? 0 : config.sip.handOffHoldMs);
    if (held[index] === null) {
      held[index] = [];
      heldBytes[index] = 0;
    }
    return new Promise<SipThread>((resolve, reject) => {
      let ready = false;
      w.on('message', (m: FromWorker) => {
        if (!ready && !Array.isArray(m) && (m.t === 'ready' || m.t === 'failed')) {
          if (m.t === 'failed') {
            held[index] = null;
            reject(new Error(`SIP worker ${index} failed to start: ${m.error}`));
            void w.terminate();
            return;
          }
          ready = true;
          slots[index] = w;
          outboxes[index] = out;
          // what arrived while it started: its age is the start's, not a queue's (maxQueueMs would drop it)
          const waiting = held[index];
          held[index] = null;
          heldBytes[index] = 0;
          const now = Date.now();
          for (const item of waiting ?? []) {
            item[9] = now;
            out.push(item);
          }
          const locks = security?.guard.activeLocks();
          if (locks?.length) w.postMessage({ t: 'locks', locks, replace: true } satisfies ToWorker);
          // the debug filter as the API last set it (a worker starts with the configuration's)
          if (o.history) w.postMessage({ t: 'historyDebug', numbers: [...o.history.debug.numbers] } satisfies ToWorker);
          resolve(w);
          return;
        }
        onWorkerMessage(index, out, m);
      });
      w.on('error', (err: Error) => {
        logger.error({ err, worker: index }, 'SIP worker thread failed');
        if (!ready) reject(err);
      });
      w.on('exit', (code: number) => {
        if (slots[index] === w) {
          slots[index] = null;
          outboxes[index] = null;
        }
        if (!ready) {
          held[index] = null;
          reject(new Error(`SIP worker ${index} exited with code ${code} while starting`));
          return;
        }
        if (stopping) return;
        logger.error({ worker: index, code }, 'SIP worker thread exited; starting another');
        void spawn(index)
          // the new worker's send socket was bound last: take reception back
          .then(() => Promise.all(transports.map((t) => t.rebindUdp())))
          .catch((e) => logger.error({ err: e, worker: index }, 'cannot restart SIP worker thread'));
      });
    });
  }

  try {
    await Promise.all(slots.map((_, i) => spawn(i)));
    // Every worker has bound its send socket: bind reception last.
    await Promise.all(transports.map((t) => t.rebindUdp()));
  } catch (e) {
    stopping = true;
    nat.stop();
    await Promise.all(slots.map((w) => w?.terminate()));
    for (const t of transports) await t.close();
    throw e;
  }

  const broadcast = (m: ToWorker) => {
    for (const w of slots) w?.postMessage(m);
  };
  const unsubscribeFlows = o.flows.onActivate(() => broadcast({ t: 'flows', flows: flowTexts(o.flows) }));
  // always: query nodes cache (`caching`) even without directory.cacheSec
  const unsubscribeWrites = o.onDirectoryWrite ? o.onDirectoryWrite(() => broadcast({ t: 'invalidate' })) : () => undefined;
  const unsubscribeLocks = security
    ? security.onLockChange((username, until) => broadcast({ t: 'locks', locks: [[username, until]], replace: false }))
    : () => undefined;
  // /metrics: this thread's registry plus every worker's (requests and flow latency are counted there)
  const unsubscribeDebug = o.history ? o.history.debug.onChange((numbers) => broadcast({ t: 'historyDebug', numbers: [...numbers] })) : () => undefined;
  const removeSource = o.metrics.addSource(() =>
    Promise.all(
      slots.map(
        (w) =>
          new Promise<unknown[]>((resolve) => {
            if (!w) {
              resolve([]);
              return;
            }
            const id = ++metricsSeq;
            const timer = setTimeout(() => {
              metricsWaits.delete(id);
              resolve([]);
            }, 2000);
            metricsWaits.set(id, (json) => {
              clearTimeout(timer);
              resolve(json);
            });
            w.postMessage({ t: 'metrics', id } satisfies ToWorker);
          }),
      ),
    ),
  );

  let closed: Promise<void> | null = null;
  return {
    listeners: groups.map((l, i) => listening(l, transports[i].ports)),
    workers: n,
    upgradeHandler: (listener, proto) => transports[groups.findIndex((l) => l.name === listener)]?.upgradeHandler(proto),
    close(graceMs = 2000) {
      closed ??= (async () => {
        stopping = true;
        nat.stop();
        unsubscribeFlows();
        unsubscribeWrites();
        unsubscribeLocks();
        unsubscribeDebug();
        removeSource();
        o.metrics.setDispatchSource(null);
        for (const t of transports) t.pauseAccepting();
        // Bounded whatever the workers do: graceMs for transactions in progress (a worker behind
        // a backlog sees the 'drain' late and is not waited for longer), then every worker is
        // stopped and terminated (one that answered 'stopped' but kept a handle open would keep
        // the process alive), then the sockets and TCP connections are destroyed.
        await Promise.all(
          slots.map((w, i) => {
            if (!w) return undefined;
            const done = waitFor(i, 'drained', graceMs + 250);
            w.postMessage({ t: 'drain', graceMs } satisfies ToWorker);
            return done;
          }),
        );
        await Promise.all(
          slots.map(async (w, i) => {
            if (!w) return;
            const done = waitFor(i, 'stopped', 500);
            w.postMessage({ t: 'stop' } satisfies ToWorker);
            await done;
            outboxes[i] = null; // nothing more dispatched to it
            await Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 1000).unref())]);
          }),
        );
        for (const t of transports) await t.close();
      })();
      return closed;
    },
  };
}
