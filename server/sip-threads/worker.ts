/**
 * A SIP worker thread: parses, runs the service logic, answers and relays the SIP messages the
 * dispatching thread hands it (all messages of a Call-ID come to the same worker, so its
 * transactions, loop guard and proxy state are complete). It sends UDP from its own socket bound to
 * the SIP port (SO_REUSEADDR), so replies leave from the port the UA talks to without another hop;
 * TCP goes through the dispatcher, which holds the connections.
 *
 * Stores stay in the dispatcher: directory queries and location updates are calls over the port
 * (one owner per binding, as Kamailio's usrloc in shared memory). Digest nonce-counts are in
 * shared memory, so a replay is caught whichever worker it reaches.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { loadSlidText, type CompiledService } from '../../engine/load';
import type { RunContext } from '../../engine/types';
import { builtinRegistry } from '../../nodes';
import { createDigestAuth, SharedNonceCounter } from '../../services/auth';
import { createCachedDirectory } from '../../services/directory/cache';
import { DirectoryChanges } from '../../services/directory/changes';
import { LockTable, refuseLockedUsernames } from '../../services/guard/locks';
import { ownershipFor } from '../../services/directory/ownership';
import type { Directory } from '../../services/directory/query';
import type { DirectoryQuery, DirectorySchema } from '../../services/directory/types';
import type { LocationPort } from '../../services/location/types';
import { FrontEnd, type LogicTarget } from '../../sip/front-end';
import { literalFirstLookup, type LocalEndpoint, type Peer, type SendCallback, type SipSender } from '../../sip/transport';
import { composeFlows } from '../flows-store';
import { createLogger, logPort } from '../logger';
import { createMetrics } from '../metrics';
import { listenerFrontEndOptions } from '../sip-server';
import {
  Outbox, own, deserializeError, type Control, type FlowText, type FromWorker, type FromWorkerItem, type StoreMethod, type ToWorker, type WorkerInit,
} from './protocol';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const outbox = new Outbox<FromWorkerItem>(port);

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
const cachedDirectory = init.directoryCacheSec > 0
  ? createCachedDirectory(remoteDirectory, {
    ttlSec: init.directoryCacheSec,
    negativeTtlSec: init.config.directory.cacheNegativeSec,
    maxEntries: init.config.directory.cacheMaxEntries,
  })
  : null;
/** This thread's view of the directory change feed: notified by the dispatcher's `invalidate`. */
const directoryChanges = new DirectoryChanges();
if (cachedDirectory) directoryChanges.subscribe(() => cachedDirectory.invalidate());

const location: LocationPort = {
  register: (req) => call('location.register', [req]),
  lookup: (username, domain, now) => call('location.lookup', [username, domain, now]),
};

// ---------------------------------------------------------------- context

const logger = createLogger({ level: init.config.log.level, base: { thread: init.index } });
const log = logPort(logger);
const metrics = createMetrics({ defaultMetrics: false });
/** Usernames locked by the main thread's guard (Control 'locks'): refused by the digest check. */
const locks = new LockTable();
const ctx: RunContext = {
  directory: cachedDirectory ?? remoteDirectory,
  ownership: ownershipFor(cachedDirectory ?? remoteDirectory, init.config.registrar.ownership),
  location,
  auth: refuseLockedUsernames(createDigestAuth({
    secret: Buffer.from(init.nonceSecret),
    nonceLifetimeSec: init.config.auth.nonceLifetimeSec,
    algorithms: init.config.auth.algorithms,
    nonceCounts: new SharedNonceCounter(init.nonceCounts),
    bootEpoch: init.bootEpoch,
  }), locks),
  clock: { now: Date.now },
  realm: init.config.sip.domain,
  log,
  directoryChanges,
};

/** The active flows compiled here, resolved like the flows store does. */
function compile(flows: FlowText[]): { service: CompiledService; resolve(ref: string): LogicTarget | undefined } {
  const registry = builtinRegistry();
  const compiled = flows.map((f) => {
    const r = loadSlidText(f.text, `${f.flow} v${f.version}`, registry);
    if (!r.service) throw new Error(`flow "${f.flow}" release ${f.version} does not compile here`);
    return { flow: f.flow, version: f.version, service: r.service };
  });
  const c = composeFlows(compiled);
  return { service: c.service, resolve: (ref) => { const r = c.resolve(ref); return r ? { service: r.service, logic: r.logic.id } : undefined; } };
}

// ---------------------------------------------------------------- transports

/** Set by the 'stop' control: the thread ends, nothing more is handled or sent. */
let stopped = false;
let sendSeq = 0;
const pendingSends = new Map<number, SendCallback>();

class ThreadSender implements SipSender {
  constructor(
    private readonly listener: number,
    readonly advertised: string,
    readonly udpPort: number,
    readonly tcpPort: number,
    private readonly udp: dgram.Socket | null,
  ) {}

  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    if (stopped) { cb?.(new Error('shutting down')); return; }
    if (peer.proto === 'udp') {
      if (!this.udp) { cb?.(new Error('no UDP transport')); return; }
      if (cb) this.udp.send(buf, peer.port, peer.address, (err) => cb(err ?? null));
      else this.udp.send(buf, peer.port, peer.address);
      return;
    }
    let id = 0;
    if (cb) { id = ++sendSeq; pendingSends.set(id, cb); }
    outbox.push([3, id, this.listener, own(buf), peer.address, peer.port, peer.connKey ?? null]);
  }
}

function bindUdp(listener: number, host: string, udpPort: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({
    type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: true, sendBufferSize: 4 * 1024 * 1024, lookup: literalFirstLookup as never,
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: host || undefined, port: udpPort }, () => {
      sock.off('error', reject);
      sock.on('error', (err) => logger.warn({ err }, 'udp send socket error'));
      // Reception belongs to the dispatcher's socket (bound last); anything that lands here anyway
      // (e.g. while the dispatcher rebinds) goes back to it for dispatch by Call-ID.
      sock.on('message', (data, rinfo) => outbox.push([5, listener, own(data), rinfo.address, rinfo.port]));
      resolve(sock);
    });
  });
}

interface ListenerRuntime { fe: FrontEnd; udp: dgram.Socket | null; locals: Map<string, LocalEndpoint> }
const listeners: ListenerRuntime[] = [];

async function start(): Promise<void> {
  const flows = compile(init.flows);
  for (let i = 0; i < init.listeners.length; i++) {
    const l = init.listeners[i];
    const udp = l.udp ? await bindUdp(i, l.host, l.udpPort) : null;
    const sender = new ThreadSender(i, l.advertised, l.udpPort, l.tcpPort, udp);
    const fe = new FrontEnd(sender, {
      ...listenerFrontEndOptions(init.config, init.config.sip.listeners[i], {
        service: flows.service, resolve: flows.resolve, ctx, log, nonceSecret: init.nonceSecret,
        observe: (method, outcome, seconds, hadCredentials) => metrics.observeRun(method, outcome, seconds, { hadCredentials }),
      }),
      // counted by the main thread's guard (server/security.ts)
      onAuthFailure: (source, username) => outbox.push([6, source, username]),
    });
    listeners.push({ fe, udp, locals: new Map() });
  }
  port.on('message', (batch: ToWorker) => {
    if (Array.isArray(batch)) {
      for (const m of batch) {
        switch (m[0]) {
          case 0: onSip(m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]); break;
          case 2: {
            const p = pendingCalls.get(m[1]);
            if (!p) break;
            pendingCalls.delete(m[1]);
            if (m[2]) p.resolve(m[3]); else p.reject(deserializeError(m[3]));
            break;
          }
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

const RESPONSE_START = 0x53; // 'S' of "SIP/2.0 …": responses are never dropped for age

function onSip(bytes: Uint8Array, proto: 0 | 1, address: string, peerPort: number, listener: number,
  localAddress: string, localPort: number, connKey: string | null, receivedAt: number): void {
  const l = listeners[listener];
  if (!l || stopped) return;
  // Overload guard: a request that queued longer than its UA waits before retransmitting is
  // stale; working on it only delays fresh ones. Drop it, as a full socket buffer would.
  if (bytes[0] !== RESPONSE_START && Date.now() - receivedAt > init.maxQueueMs) {
    l.fe.stats.dropped++;
    return;
  }
  const key = `${proto}${localAddress}:${localPort}`;
  let local = l.locals.get(key);
  if (!local) { local = { proto: proto === 0 ? 'udp' : 'tcp', address: localAddress, port: localPort }; l.locals.set(key, local); }
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const peer: Peer = proto === 0
    ? { proto: 'udp', address, port: peerPort }
    : { proto: 'tcp', address, port: peerPort, connKey: connKey ?? undefined };
  l.fe.onMessage(data, peer, local);
}

async function onControl(m: Control): Promise<void> {
  switch (m.t) {
    case 'flows': {
      const next = compile(m.flows);
      for (const l of listeners) l.fe.setFlows(next.service, next.resolve);
      return;
    }
    case 'invalidate': directoryChanges.changed(); return;
    case 'locks':
      if (m.replace) locks.replace(m.locks);
      else for (const [username, until] of m.locks) locks.set(username, until);
      return;
    case 'metrics': post({ t: 'metrics', id: m.id, json: await metrics.registry.getMetricsAsJSON() }); return;
    case 'drain': {
      for (const l of listeners) l.fe.drain();
      const until = Date.now() + m.graceMs;
      while (listeners.some((l) => l.fe.busy) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      post({ t: 'drained' });
      return;
    }
    case 'stop': {
      // Nothing more is handled or sent: messages still queued are dropped, not answered from a
      // closed socket (logic runs still waiting on a store call are abandoned with the thread).
      stopped = true;
      for (const l of listeners) {
        l.fe.close();
        if (l.udp) await new Promise<void>((r) => { try { l.udp!.close(() => r()); } catch { r(); } });
      }
      post({ t: 'stopped' });
      port.close();
      return;
    }
  }
}

start().then(
  () => post({ t: 'ready' }),
  (e: Error) => { post({ t: 'failed', error: e.message }); port.close(); },
);
