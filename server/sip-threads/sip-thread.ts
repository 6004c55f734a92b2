/**
 * A SIP thread: parses, runs the service logic, answers and relays the SIP messages the
 * dispatching thread hands it (server/sip-threads/host.ts: every message of a Call-ID comes to the
 * same SIP thread, so its transactions, loop guard and proxy state are complete). It runs in a
 * worker thread (worker.ts) or, as the inline front end of low load, in the dispatching thread
 * itself (call-owners.ts); the same code and the same messages either way. It sends UDP from its
 * own socket bound to the SIP port (SO_REUSEADDR), so replies leave from the port the UA talks to
 * without another hop; TCP goes through the dispatcher, which holds the connections.
 *
 * Stores stay in the dispatcher: directory queries and location updates are calls over the port
 * (one owner per binding, as Kamailio's usrloc in shared memory), or, for the inline front end in
 * the dispatcher's own thread, calls of its ports (DispatcherPorts). Digest nonce-counts are in
 * shared memory, so a replay is caught whichever thread it reaches.
 */
import { callConsumers } from '../call-consumers';
import { messageConsumers, type MessageConsumers } from '../message-consumers';
import { storedSegment } from '../../services/history/store';
import { isMainThread } from 'node:worker_threads';
import { loadSlidText, type CompiledService } from '../../engine/load';
import type { CachePort, CallLimitPort } from '../../engine/ports';
import type { RunContext } from '../../engine/types';
import { calendarClock } from '../calendar';
import type { NodeRegistry } from '../../engine/registry';
import { createDigestAuth, SharedNonceCounter } from '../../services/auth';
import { createCachedDirectory } from '../../services/directory/cache';
import { createHttpClient } from '../../services/http/client';
import { DirectoryChanges } from '../../services/directory/changes';
import { LockTable, refuseLockedUsernames } from '../../services/guard/locks';
import { ownershipFor } from '../../services/directory/ownership';
import type { Directory } from '../../services/directory/query';
import type { DirectoryQuery, DirectorySchema } from '../../services/directory/types';
import type { LocationPort } from '../../services/location/types';
import { FrontEnd, drained, type LogicTarget } from '../../sip/front-end';
import { ListenerGroup } from '../../sip/listener-group';
import type { LocalEndpoint, Peer, SendCallback, SipSender } from '../../sip/transport';
import { transportById, transportNamed, withSiblings, type SipTransport, type ThreadSocket } from '../../sip/transports';
import { sipListeners } from '../config';
import { composeFlows } from '../flows/compose';
import { createLogger, logPort } from '../logger';
import { createMetrics } from '../metrics';
import { registerThreadMetrics } from './thread-metrics';
import { SlicedQueue } from './sliced-queue';
import { nodeRegistry } from '../node-plugins';
import { openQueryPorts } from '../query-ports';
import { listenerFrontEndOptions } from '../sip-server';
import { packRegisterRequest, unpackBindings, unpackRegisterResult, type PackedBinding, type PackedResult } from './location-codec';
import {
  Outbox,
  own as ownBytes,
  deserializeError,
  type Control,
  type FlowText,
  type FromWorker,
  type FromWorkerItem,
  type InboundSip,
  type StoreMethod,
  type ToWorker,
  type WorkerInit,
} from './protocol';

interface ListenerRuntime {
  fe: FrontEnd;
  local: ThreadSocket[];
  locals: Map<string, LocalEndpoint>;
  /** The local endpoint of the last message and what named it: the next one almost always names the same (no key built, no lookup). */
  last: { transport: number; address: string; port: number; local: LocalEndpoint } | null;
}

const RESPONSE_START = 0x53; // 'S' of "SIP/2.0 …": responses are never dropped for age
/** The longest a slice of handed-over SIP messages runs before store replies and timers get a turn (sliced-queue.ts). */
const INBOUND_SLICE_MS = 5;

/** A SIP thread's line to the dispatcher: a worker's parentPort, or the inline front end's end of a LocalChannel (local-channel.ts). */
export interface ThreadPort {
  postMessage(m: unknown): void;
  on(event: 'message', listener: (m: ToWorker) => void): void;
  close(): void;
}

/**
 * The dispatcher's own store ports, for the inline front end that runs in its thread
 * (host.ts): called directly, as the dispatcher serves a worker's store calls, instead of over the
 * channel (a port the dispatcher lacks, the instance cache or call limits, is still asked over the
 * channel, which answers as it answers a worker). Over the channel every location update and directory read was two structured clones
 * and a hand-off, and the inline front end kept a directory cache of its own beside the
 * dispatcher's, in the same thread: empty when the load fell back below `sip.inlineMaxRate`, so the
 * first calls at a low rate each paid a miss (docs/performance.md, "Low rates").
 */
export type DispatcherPorts = Pick<RunContext, 'directory' | 'location' | 'cache' | 'callLimits'>;

/**
 * Runs a SIP thread on `port`: in a worker thread (server/sip-threads/worker.ts, the thread's
 * parentPort) or in the dispatching thread itself (server/sip-threads/host.ts's inline front end,
 * with the dispatcher's store ports as `direct`). Posts `ready` once listening, or `failed`.
 */
export function runSipThread(init: WorkerInit, port: ThreadPort, direct?: DispatcherPorts): void {
  const post = (m: FromWorker) => port.postMessage(m);
  // inline (direct ports), the dispatcher is this very thread: nothing to hold for (protocol.ts Outbox)
  const outbox = new Outbox<FromWorkerItem>(port, direct === undefined ? 1 : 0);

  // ---------------------------------------------------------------- store calls

  let callSeq = 0;
  const pendingCalls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  function call<T>(method: StoreMethod, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = ++callSeq;
      pendingCalls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      outbox.push([1, id, method, args]);
    });
  }

  const remoteDirectory: Directory = {
    query: (q: DirectoryQuery) => call('directory.query', [q]),
    schema: () => call<DirectorySchema>('directory.schema', []),
    refreshSchema: () => call<DirectorySchema>('directory.schema', []),
    close: async () => undefined,
  };
  const cachedDirectory =
    direct === undefined && init.directoryCacheSec > 0
      ? createCachedDirectory(remoteDirectory, {
          ttlSec: init.directoryCacheSec,
          negativeTtlSec: init.config.directory.cacheNegativeSec,
          maxEntries: init.config.directory.cacheMaxEntries,
        })
      : null;
  /** This thread's view of the directory change feed: notified by the dispatcher's `invalidate`. */
  const directoryChanges = new DirectoryChanges();
  if (cachedDirectory) directoryChanges.subscribe(() => cachedDirectory.invalidate());

  const location: LocationPort = direct?.location ?? {
    // packed as arrays for the crossing (location-codec.ts)
    register: (req) => call<PackedResult>('location.register', [packRegisterRequest(req)]).then(unpackRegisterResult),
    lookup: (username, domain, now) => call<PackedBinding[]>('location.lookup', [username, domain, now]).then(unpackBindings),
  };

  /** The instance cache lives in the dispatcher: every SIP thread reads and writes one table. */
  const cache: CachePort = direct?.cache ?? {
    get: (key) => call('cache.get', [key]),
    set: (key, value, ttlSec) => call('cache.set', [key, value, ttlSec]),
  };

  /**
   * Call-admission slots live in the dispatcher too: a key's calls are counted once for the instance.
   * A release is posted at once, not batched: the front end reports a call's end before its final
   * response leaves (sip/transactions.ts `onFinal`), so the dispatcher has the release before the
   * caller can send its next INVITE, and queues that INVITE's acquire of the key after it.
   */
  const callLimits: CallLimitPort = direct?.callLimits ?? {
    acquire: (holder, key, rule, nowMs) => call('callLimit.acquire', [holder, key, rule, nowMs]),
    release: (holder, keys) => {
      const released = call<void>('callLimit.release', [holder, keys]);
      outbox.flush();
      return released;
    },
  };

  // ---------------------------------------------------------------- context

  const logger = createLogger({ level: init.config.log.level, base: { thread: init.index } });
  const log = logPort(logger);
  const metrics = createMetrics({ defaultMetrics: false });
  /**
   * This thread's heap, external memory and event-loop delay (sipflow_sip_threads_*, labelled with its
   * index); none for the inline front end, whose thread is the main one (labelled main).
   */
  const threadMetrics = isMainThread ? null : registerThreadMetrics(metrics.registry, init.index);
  /** Usernames locked by the main thread's guard (Control 'locks'): refused by the digest check. */
  const locks = new LockTable();
  /** query.enum's resolver and query.ldap's connection, this thread's own (closed on stop). */
  const queries = openQueryPorts(init.config.nodes);
  /** This thread's own pooled HTTP connections (query.httpRequest). */
  const http = createHttpClient(init.config.nodes.http);
  const directory = direct?.directory ?? cachedDirectory ?? remoteDirectory;
  const ctx: RunContext = {
    directory,
    ownership: ownershipFor(directory, init.config.registrar.ownership),
    location,
    auth: refuseLockedUsernames(
      createDigestAuth({
        secret: Buffer.from(init.nonceSecret),
        nonceLifetimeSec: init.config.auth.nonceLifetimeSec,
        algorithms: init.config.auth.algorithms,
        nonceCounts: new SharedNonceCounter(init.nonceCounts),
        bootEpoch: init.bootEpoch,
      }),
      locks,
    ),
    clock: { now: Date.now },
    calendar: calendarClock(init.config.nodes.now, init.bootEpoch ?? Date.now()),
    realm: init.config.sip.domain,
    log,
    directoryChanges,
    cache,
    callLimits,
    numbers: init.config.nodes.numbers,
    dns: queries.dns,
    ldap: queries.ldap,
    syslog: queries.syslog,
    http,
  };

  /**
   * The node types of this thread: the built-ins plus the plug-ins of the configuration the
   * dispatcher started with (each thread loads its own copy; the first compile, at start, loads them,
   * so a plug-in failing here fails the thread's start).
   */
  let registry: NodeRegistry | undefined;

  /** The active flows compiled here, resolved like the flows store does. */
  function compile(flows: FlowText[]): { service: CompiledService; resolve(ref: string): LogicTarget | undefined } {
    const types = (registry ??= nodeRegistry(init.config.nodes.plugins));
    const compiled = flows.map((f) => {
      const r = loadSlidText(f.text, `${f.flow} v${f.version}`, types);
      if (!r.service) throw new Error(`flow "${f.flow}" release ${f.version} does not compile here`);
      return { flow: f.flow, version: f.version, service: r.service };
    });
    const c = composeFlows(compiled);
    return {
      service: c.service,
      resolve: (ref) => {
        const r = c.resolve(ref);
        return r ? { service: r.service, logic: r.logic.id, flow: r.flow, version: r.version } : undefined;
      },
    };
  }

  // ---------------------------------------------------------------- transports

  /** Set by the 'stop' control: the thread ends, nothing more is handled or sent. */
  let stopped = false;
  let sendSeq = 0;
  const pendingSends = new Map<number, SendCallback>();

  /**
   * A listener's sender in this thread: a transport with a thread sender (UDP) sends from this
   * thread's own socket on the listener's port; any other (TCP: the connections live in the
   * dispatcher) goes through the dispatcher.
   */
  class ThreadSender implements SipSender {
    readonly ports: ReadonlyMap<string, number>;

    constructor(
      private readonly listener: number,
      readonly advertised: string,
      sockets: ReadonlyArray<{ transport: SipTransport; port: number }>,
      private readonly local: ReadonlyMap<string, ThreadSocket>,
    ) {
      this.ports = withSiblings(new Map(sockets.map((s) => [s.transport.name, s.port])));
    }

    send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
      if (stopped) {
        cb?.(new Error('shutting down'));
        return;
      }
      const own = this.local.get(peer.proto);
      if (own !== undefined) {
        own.send(buf, peer, cb);
        return;
      }
      const t = transportNamed(peer.proto);
      // a binding's connection may belong to another listener: the dispatcher finds it by id
      if (t === undefined || (!this.ports.has(t.name) && !peer.flowOnly)) {
        cb?.(new Error(`no ${peer.proto.toUpperCase()} transport`));
        return;
      }
      let id = 0;
      if (cb) {
        id = ++sendSeq;
        pendingSends.set(id, cb);
      }
      outbox.push([3, id, this.listener, t.id, ownBytes(buf), peer.address, peer.port, peer.connId ?? -1, peer.flowOnly ? 1 : 0, peer.serverName ?? null]);
    }
  }

  const listeners: ListenerRuntime[] = [];
  /** This thread's message observers (server/message-consumers.ts), built at start. */
  let observers: MessageConsumers | undefined;

  async function start(): Promise<void> {
    const flows = compile(init.flows);
    const groups = sipListeners(init.config.sip.listeners);
    // every listener's sockets for every relay: one reaches the destination's address family
    const group = new ListenerGroup();
    // one set of call-event consumers (accounting, call admission control) for every listener of this thread
    const calls = callConsumers(init.config, ctx, log, { cdrs: (r) => outbox.push([7, r]), metrics });
    // and one set of message observers (call history, HEP capture)
    observers = messageConsumers(init.config, log, {
      metrics,
      // settled: HistorySettled items from the dispatcher
      history: { sink: (detail) => outbox.push([8, storedSegment(detail)]), debugNumbers: init.config.history.debugNumbers, window: init.historyWindow },
    });
    for (let i = 0; i < init.listeners.length; i++) {
      const l = init.listeners[i];
      const sockets = l.sockets.map((s) => ({ transport: transportById(s.transport)!, host: s.host, port: s.port }));
      const local = new Map<string, ThreadSocket>();
      for (const s of sockets) {
        if (!s.transport.openThreadSender) continue;
        const id = s.transport.id;
        local.set(
          s.transport.name,
          await s.transport.openThreadSender({
            host: s.host,
            port: s.port,
            onStray: (data, address, port) => outbox.push([5, i, id, ownBytes(data), address, port]),
            onWarning: (m) => logger.warn(m),
          }),
        );
      }
      const sender = group.add(
        new ThreadSender(i, l.advertised, sockets, local),
        sockets.map((s) => ({ transport: s.transport.name, host: s.host })),
        groups[i].advertise,
      );
      const fe = new FrontEnd(sender, {
        ...listenerFrontEndOptions(init.config, groups[i], {
          service: flows.service,
          resolve: flows.resolve,
          ctx,
          log,
          nonceSecret: init.nonceSecret,
          observe: (method, outcome, seconds, hadCredentials) => metrics.observeRun(method, outcome, seconds, { hadCredentials }),
          calls,
          tap: observers.tap,
          runs: observers.runs,
        }),
        // counted by the main thread's guard (server/security.ts)
        onAuthFailure: (source, username) => outbox.push([6, source, username]),
        group,
      });
      listeners.push({ fe, local: [...local.values()], locals: new Map(), last: null });
    }
    // this thread's share of sipflow_sip_messages_total and the rest (server/front-end-metrics.ts)
    metrics.frontEnds.add(() => listeners.map((l) => l.fe.stats));
    port.on('message', (batch: ToWorker) => {
      if (Array.isArray(batch)) {
        for (const m of batch) {
          switch (m[0]) {
            case 0:
              // handled in slices (sliced-queue.ts): the store replies of this batch and the next go first
              inbound.push(m);
              break;
            case 2: {
              const p = pendingCalls.get(m[1]);
              if (!p) break;
              pendingCalls.delete(m[1]);
              if (m[2]) p.resolve(m[3]);
              else p.reject(deserializeError(m[3]));
              break;
            }
            case 9:
              observers?.history?.settled(m[1]);
              break;
            case 4: {
              const cb = pendingSends.get(m[1]);
              if (!cb) break;
              pendingSends.delete(m[1]);
              cb(m[2] === null ? null : new Error(m[2]));
              break;
            }
          }
        }
        return;
      }
      void onControl(batch).catch((e) => logger.error({ err: e }, 'worker control message failed'));
    });
  }

  const inbound = new SlicedQueue<InboundSip>(
    (m) => onSip(m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]),
    INBOUND_SLICE_MS,
    (e) => logger.error({ err: e }, 'SIP message handling failed'),
  );

  function onSip(
    bytes: Uint8Array,
    transport: number,
    address: string,
    peerPort: number,
    listener: number,
    localAddress: string,
    localPort: number,
    connId: number,
    receivedAt: number,
  ): void {
    const l = listeners[listener];
    if (!l || stopped) return;
    // Overload guard: a request that queued longer than its UA waits before retransmitting is
    // stale; working on it only delays fresh ones. Drop it, as a full socket buffer would. One that
    // waited past shedAfterMs finds the thread behind: the front end sheds it if it starts new work.
    const waited = bytes[0] === RESPONSE_START ? 0 : Date.now() - receivedAt;
    if (waited > init.maxQueueMs) {
      l.fe.stats.stale++;
      return;
    }
    const proto = transportById(transport)?.name;
    if (proto === undefined) {
      // the dispatcher names only registered transports: a message without one is a fault of ours
      l.fe.stats.errors++;
      return;
    }
    const last = l.last;
    let local: LocalEndpoint;
    if (last !== null && last.transport === transport && last.port === localPort && last.address === localAddress) local = last.local;
    else {
      const key = `${transport}${localAddress}:${localPort}`;
      let known = l.locals.get(key);
      if (!known) {
        known = { proto, address: localAddress, port: localPort };
        l.locals.set(key, known);
      }
      local = known;
      l.last = { transport, address: known.address, port: localPort, local };
    }
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const peer: Peer = connId < 0 ? { proto, address, port: peerPort } : { proto, address, port: peerPort, connId };
    l.fe.onMessage(data, peer, local, waited > init.shedAfterMs);
  }

  async function onControl(m: Control): Promise<void> {
    switch (m.t) {
      case 'flows': {
        const next = compile(m.flows);
        for (const l of listeners) l.fe.setFlows(next.service, next.resolve);
        return;
      }
      case 'invalidate':
        directoryChanges.changed();
        return;
      case 'locks':
        if (m.replace) locks.replace(m.locks);
        else for (const [username, until] of m.locks) locks.set(username, until);
        return;
      case 'historyDebug':
        observers?.history?.setDebugNumbers(m.numbers);
        return;
      case 'metrics':
        post({ t: 'metrics', id: m.id, json: await metrics.registry.getMetricsAsJSON() });
        return;
      case 'drain': {
        for (const l of listeners) l.fe.drain();
        await drained(
          () => listeners.some((l) => l.fe.busy),
          m.graceMs,
          undefined,
          () => Math.max(0, ...listeners.map((l) => l.fe.lastMessageAt)),
        );
        // the calls being recorded are written, then what the outbox holds (CDRs of calls that just
        // ended, history records among it) reaches the dispatcher before 'drained'
        await observers?.close();
        outbox.flush();
        post({ t: 'drained' });
        return;
      }
      case 'stop': {
        // Nothing more is handled or sent: messages still queued are dropped, not answered from a
        // closed socket (logic runs still waiting on a store call are abandoned with the thread).
        stopped = true;
        for (const l of listeners) {
          l.fe.close();
          for (const s of l.local) await s.close();
        }
        await observers?.close();
        await queries.close();
        await http.close();
        threadMetrics?.stop();
        post({ t: 'stopped' });
        port.close();
        return;
      }
    }
  }

  start().then(
    () => post({ t: 'ready' }),
    (e: Error) => {
      post({ t: 'failed', error: e.message });
      port.close();
    },
  );
}
