/**
 * The SIP server of one listener: its transports (a socket per transport, sip/transports) and the front end over a
 * loaded service and a run context. `sipflow serve` wires it to the runtime; tests use it directly.
 */
import { createHmac } from 'crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import path from 'path';
import { formatProblem, loadSlidText, type CompiledLogic, type CompiledService, type Problem } from '../engine/load';
import type { LogPort } from '../engine/ports';
import type { RunContext } from '../engine/types';
import type { NodeRegistry } from '../engine/registry';
import { builtinRegistry } from '../nodes';
import { FrontEnd, drained, type FrontEndOptions, type LogicTarget } from '../sip/front-end';
import { ListenerGroup } from '../sip/listener-group';
import { SipTransports, type Peer, type TransportOptions } from '../sip/transport';
import type { Config, SipListener } from './config';

/**
 * The key of the dialog signature in our Record-Route, derived from the nonce secret: every SIP
 * thread and every instance sharing `auth.nonceSecret` recognises the others' routes.
 */
export function routeSecretFrom(nonceSecret: Buffer | Uint8Array): Buffer {
  return createHmac('sha256', nonceSecret).update('sipflow record-route signature').digest();
}

/**
 * The front end of one configured listener, as every SIP thread builds it (the single-process
 * server and each worker thread): routes, default logic, aliases, loop guard, limits.
 */
export function listenerFrontEndOptions(
  config: Config,
  l: Pick<SipListener, 'name' | 'advertise'>,
  a: {
    service: CompiledService;
    resolve: (ref: string) => LogicTarget | undefined;
    ctx: RunContext;
    log?: LogPort;
    observe?: FrontEndOptions['observe'];
    /** The call-event consumers of this SIP thread (server/call-consumers.ts). */
    calls?: FrontEndOptions['calls'];
    /** The message observers of this SIP thread (server/message-consumers.ts): call history, HEP. */
    tap?: FrontEndOptions['tap'];
    runs?: FrontEndOptions['runs'];
    /** The process's nonce secret (the Record-Route signature key derives from it). */
    nonceSecret?: Buffer | Uint8Array;
  },
): FrontEndOptions {
  return {
    service: a.service,
    resolve: a.resolve,
    ctx: a.ctx,
    listenerName: l.name,
    advertisedHost: l.advertise,
    aliases: [...config.sip.aliases, ...(config.sip.domain ? [config.sip.domain] : [])],
    routes: config.routes,
    defaultLogic: a.resolve(config.defaultLogic) ? config.defaultLogic : undefined,
    called: config.sip.called,
    recordRoute: config.sip.recordRoute,
    exitResponse: config.sip.defaultRoute,
    loopGuard: { maxPerCallId: config.sip.loopGuard.maxOccurrences, windowSec: config.sip.loopGuard.windowSec },
    run: { limits: config.limits },
    log: a.log,
    observe: a.observe,
    calls: a.calls,
    tap: a.tap,
    runs: a.runs,
    routeSecret: a.nonceSecret ? routeSecretFrom(a.nonceSecret) : undefined,
    serverId: config.location.serverId,
    shedRetryAfterSec: config.sip.shedRetryAfterSec,
  };
}

/** A listener's sockets as bound (port 0 → the real one), for the logs and `sipflow serve`'s listening line. */
export function listening(
  l: SipListener,
  ports: ReadonlyMap<string, number>,
): {
  name: string;
  host: string;
  sockets: Array<{ transport: string; host: string; port: number }>;
  udpPort: number;
  tcpPort: number;
} {
  const sockets = l.sockets.map((s) => ({ transport: s.transport, host: s.host, port: ports.get(s.transport) ?? s.port }));
  // udpPort / tcpPort: kept for the callers that read them (0 when the listener has no such socket)
  return { name: l.name, host: sockets[0].host, sockets, udpPort: ports.get('udp') ?? 0, tcpPort: ports.get('tcp') ?? 0 };
}

/** The front end's options plus the transports' socket settings (host and port default to 0.0.0.0:5060). */
export interface SipServerOptions
  extends
    Omit<FrontEndOptions, 'service' | 'ctx' | 'log'>,
    Partial<
      Pick<
        TransportOptions,
        | 'host'
        | 'port'
        | 'sockets'
        | 'udp'
        | 'tcp'
        | 'recvBufferSize'
        | 'sendBufferSize'
        | 'tcpIdleTimeoutMs'
        | 'maxMessageSize'
        | 'reuseAddr'
        | 'tcpMessageTimeoutMs'
        | 'tcpGate'
        | 'onTcpClosed'
        | 'tls'
        | 'onConnectionClosed'
        | 'trustedProxy'
      >
    > {
  service: CompiledService;
  ctx: RunContext;
  log?: LogPort;
  /** Checked on each raw message before the front end sees it; false = dropped unanswered (server/security.ts). */
  admit?: (data: Buffer, peer: Peer) => boolean;
  /** The other listeners of this process (one group for all: a relay leaves from the socket of the destination's family). */
  group?: ListenerGroup;
}

export interface SipServer {
  /** Transport name → bound port. */
  ports: ReadonlyMap<string, number>;
  /** The UDP socket's port (0 when none). */
  udpPort: number;
  /** The TCP socket's port (0 when none). */
  tcpPort: number;
  frontEnd: FrontEnd;
  transports: SipTransports;
  /** Stops taking requests, waits up to `graceMs` for transactions in progress, closes sockets. */
  close(graceMs?: number): Promise<void>;
}

export async function startSipServer(o: SipServerOptions): Promise<SipServer> {
  let fe: FrontEnd | null = null;
  const transports = new SipTransports({
    host: o.host ?? '0.0.0.0',
    port: o.port ?? 5060,
    sockets: o.sockets,
    udp: o.udp,
    tcp: o.tcp,
    recvBufferSize: o.recvBufferSize,
    sendBufferSize: o.sendBufferSize,
    tcpIdleTimeoutMs: o.tcpIdleTimeoutMs,
    maxMessageSize: o.maxMessageSize,
    reuseAddr: o.reuseAddr,
    tcpMessageTimeoutMs: o.tcpMessageTimeoutMs,
    tls: o.tls,
    tcpGate: o.tcpGate,
    trustedProxy: o.trustedProxy,
    onTcpClosed: o.onTcpClosed,
    onConnectionClosed: o.onConnectionClosed,
    onMessage: (data, peer, local) => {
      if (fe && (o.admit === undefined || o.admit(data, peer))) fe.onMessage(data, peer, local);
    },
    onWarning: (m) => o.log?.log('warn', m),
  });
  await transports.start();
  const group = o.group ?? new ListenerGroup();
  const sender = group.add(transports, transports.bound, o.advertisedHost);
  try {
    fe = new FrontEnd(sender, { ...o, service: o.service, ctx: o.ctx, log: o.log, group });
  } catch (e) {
    group.remove(sender);
    await transports.close();
    throw e;
  }
  const frontEnd = fe;
  let closed: Promise<void> | null = null;
  return {
    ports: transports.ports,
    udpPort: transports.udpPort,
    tcpPort: transports.tcpPort,
    frontEnd,
    transports,
    close(graceMs = 2000) {
      closed ??= (async () => {
        frontEnd.drain();
        transports.pauseAccepting();
        await drained(
          () => frontEnd.busy,
          graceMs,
          undefined,
          () => frontEnd.lastMessageAt,
        );
        frontEnd.close();
        group.remove(sender);
        await transports.close();
      })();
      return closed;
    },
  };
}

// ---------------------------------------------------------------- loading flows

export interface LoadedFlows {
  /** All logics; a ref (id or name) names the first file, in file-name order, that has it. */
  service: CompiledService;
  /** Each file is its own service: sub-logic calls resolve inside the file. */
  files: Array<{ file: string; service: CompiledService }>;
  problems: Problem[];
  /** `ref` or `file.slid:ref` → the owning file's service and the logic. */
  resolve(ref: string): LogicTarget | undefined;
}

/**
 * Loads every `.slid` of a directory (or one file). Every file is compiled on its own, as the
 * editor exports it (the same logic may appear in several files, e.g. `registration` inside
 * `pbx.slid` and alone in `registration.slid`); a logic runs with its own file's sub-logics.
 */
export function loadFlows(target: string, registry: NodeRegistry = builtinRegistry()): LoadedFlows {
  if (!existsSync(target)) throw new Error(`flows: ${target} does not exist`);
  const paths = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith('.slid'))
        .sort()
        .map((f) => path.join(target, f))
    : [target];
  if (paths.length === 0) throw new Error(`flows: no .slid file in ${target}`);
  const files: LoadedFlows['files'] = [];
  const problems: Problem[] = [];
  for (const file of paths) {
    const r = loadSlidText(readFileSync(file, 'utf8'), path.basename(file), registry);
    problems.push(...r.problems);
    if (r.service) files.push({ file: path.basename(file), service: r.service });
  }
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length) throw new Error(errors.map(formatProblem).join('\n'));
  const logics = new Map<string, CompiledLogic>();
  for (const f of files) for (const [id, l] of f.service.logics) if (!logics.has(id)) logics.set(id, l);
  const resolve = (ref: string): LogicTarget | undefined => {
    const colon = ref.indexOf(':');
    if (colon > 0) {
      const f = files.find((x) => x.file === ref.slice(0, colon) || x.file === `${ref.slice(0, colon)}.slid`);
      const l = f?.service.find(ref.slice(colon + 1));
      if (f && l) return { service: f.service, logic: l.id };
    }
    for (const f of files) {
      const l = f.service.find(ref);
      if (l) return { service: f.service, logic: l.id };
    }
    return undefined;
  };
  const service: CompiledService = {
    logics,
    find: (ref) => {
      const t = resolve(ref);
      return t?.service.find(t.logic);
    },
  };
  return { service, files, problems, resolve };
}
