/**
 * The SIP server of one process: transports (UDP + TCP on the same port) and the front end over a
 * loaded service and a run context. `sipflow serve` wires it to the runtime; tests use it directly.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import path from 'path';
import { formatProblem, loadSlidText, type CompiledLogic, type CompiledService, type Problem } from '../engine/load';
import type { LogPort, RunContext } from '../engine/types';
import { builtinRegistry } from '../nodes';
import { FrontEnd, type FrontEndOptions } from '../sip/front-end';
import { SipTransports } from '../sip/transport';

export interface SipServerOptions extends Omit<FrontEndOptions, 'service' | 'ctx' | 'log'> {
  service: CompiledService;
  ctx: RunContext;
  host?: string;
  port?: number;
  udp?: boolean;
  tcp?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
  tcpIdleTimeoutMs?: number;
  maxMessageSize?: number;
  /** Cluster worker: share the primary's sockets. */
  shared?: boolean;
  log?: LogPort;
}

export interface SipServer {
  udpPort: number;
  tcpPort: number;
  frontEnd: FrontEnd;
  transports: SipTransports;
  /** Stops taking requests, waits up to `graceMs` for transactions in progress, closes sockets. */
  close(graceMs?: number): Promise<void>;
}

export async function startSipServer(o: SipServerOptions): Promise<SipServer> {
  let fe: FrontEnd | null = null;
  const transports = new SipTransports({
    host: o.host ?? '0.0.0.0', port: o.port ?? 5060, udp: o.udp, tcp: o.tcp,
    recvBufferSize: o.recvBufferSize, sendBufferSize: o.sendBufferSize,
    tcpIdleTimeoutMs: o.tcpIdleTimeoutMs, maxMessageSize: o.maxMessageSize, shared: o.shared,
    onMessage: (data, peer, local) => { if (fe) fe.onMessage(data, peer, local); },
    onWarning: (m) => o.log?.log('warn', m),
  });
  await transports.start();
  try {
    fe = new FrontEnd(transports, { ...o, service: o.service, ctx: o.ctx, log: o.log });
  } catch (e) {
    await transports.close();
    throw e;
  }
  const frontEnd = fe;
  let closed: Promise<void> | null = null;
  return {
    udpPort: transports.udpPort,
    tcpPort: transports.tcpPort,
    frontEnd,
    transports,
    close(graceMs = 2000) {
      closed ??= (async () => {
        frontEnd.drain();
        transports.pauseAccepting();
        const until = Date.now() + graceMs;
        while (frontEnd.busy && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        frontEnd.close();
        await transports.close();
      })();
      return closed;
    },
  };
}

// ---------------------------------------------------------------- loading flows

export interface LoadedFlows {
  service: CompiledService;
  files: string[];
  problems: Problem[];
}

/**
 * Loads every `.slid` of a directory (or one file) into one service. Logic ids must be unique
 * across files (a duplicate is an error); sub-logic calls resolve across files.
 */
export function loadFlows(target: string): LoadedFlows {
  if (!existsSync(target)) throw new Error(`flows: ${target} does not exist`);
  const files = statSync(target).isDirectory()
    ? readdirSync(target).filter((f) => f.endsWith('.slid')).sort().map((f) => path.join(target, f))
    : [target];
  if (files.length === 0) throw new Error(`flows: no .slid file in ${target}`);
  const logics = new Map<string, CompiledLogic>();
  const byName = new Map<string, CompiledLogic>();
  const problems: Problem[] = [];
  for (const file of files) {
    const r = loadSlidText(readFileSync(file, 'utf8'), path.basename(file), builtinRegistry());
    problems.push(...r.problems);
    if (!r.service) continue;
    for (const [id, l] of r.service.logics) {
      if (logics.has(id)) {
        problems.push({ severity: 'error', file: path.basename(file), logicId: id, logicName: l.name, message: 'logic id already loaded from another file' });
        continue;
      }
      logics.set(id, l);
      if (!byName.has(l.name)) byName.set(l.name, l);
    }
  }
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length) throw new Error(errors.map(formatProblem).join('\n'));
  return { service: { logics, find: (ref) => logics.get(ref) ?? byName.get(ref) }, files, problems };
}
