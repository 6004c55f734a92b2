/**
 * sipflow behind drachtio: a drachtio-srf application that hands every initial request to sipflow
 * (the execute contract: call descriptor in, outcome out) and carries out the outcome with
 * drachtio's primitives. drachtio-server (C++, not shipped with sipflow) owns the SIP transport
 * and transactions; this module only decides the answer.
 *
 *   const Srf = require('drachtio-srf');
 *   const srf = new Srf();
 *   srf.connect({ host: '127.0.0.1', port: 9022, secret: 'cymru' });
 *   attachDrachtio(srf, httpRunner({ url: 'http://127.0.0.1:8080/api/v1/execute', token }));
 *
 * Outcomes are answered as sipflow's own front end answers them (sip/response-for.ts): challenge →
 * 401/407 + WWW-/Proxy-Authenticate; register → status + Contact list, Date and the request's Path
 * on 2xx (the binding is already saved by sipflow); relay → srf.proxyRequest(req, targets); reply
 * → status/reason/headers; redirect → 3xx + Contact; exit → the default route (404); error → 500,
 * or 503 + Retry-After. sipflow unreachable → 503 + Retry-After.
 *
 * drachtio-srf is not imported here: the types below are the parts of its Srf, Request and
 * Response this module uses, so the module loads without the package and tests can pass fakes.
 */
import { buildCallDescriptor, callDescriptorJson } from '../../engine/cd';
import type { CompiledService } from '../../engine/load';
import { runLogic } from '../../engine/run';
import type { Outcome, RelayTarget, RunContext, RunLimits } from '../../engine/types';
import { responseFor, type ResponseHeader } from '../response-for';

// ---------------------------------------------------------------- the parts of drachtio-srf used

/** A drachtio-srf `Request` (req) as far as this module reads it. */
export interface DrachtioRequest {
  method: string;
  uri: string;
  /** Header name (lower case, as drachtio's parser stores them) → value; repeated headers comma-joined. */
  headers: Record<string, unknown>;
  body?: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
  getParsedHeader?(name: string): unknown;
  source_address?: string;
  source_port?: number;
  /** udp, tcp, tls, wss … */
  protocol?: string;
  /** The local socket the request came in on, "address:port" (drachtio-server ≥ 0.8). */
  receivedOn?: string;
}

export interface DrachtioResponse {
  send(status: number, reason?: string, opts?: { headers?: Record<string, string> }): void;
  finalResponseSent?: boolean;
}

export type DrachtioHandler = (req: DrachtioRequest, res: DrachtioResponse) => void;
export type DrachtioMiddleware = (req: DrachtioRequest, res: DrachtioResponse, next: (err?: unknown) => void) => void;

export interface ProxyOptions {
  recordRoute?: boolean;
  forking?: 'sequential' | 'simultaneous';
  followRedirects?: boolean;
  provisionalTimeout?: string;
  finalTimeout?: string;
}

export interface DrachtioSrf {
  use(fn: DrachtioMiddleware): unknown;
  proxyRequest(req: DrachtioRequest, destination: string | string[], opts?: ProxyOptions): Promise<unknown>;
  register(fn: DrachtioHandler): unknown;
  invite(fn: DrachtioHandler): unknown;
  options(fn: DrachtioHandler): unknown;
  [method: string]: unknown;
}

// ---------------------------------------------------------------- the execute contract

/** The call descriptor as the execute endpoint takes it: SRE variables + `headers`. */
export interface CdInput {
  requestMethod: string;
  requestURI: string;
  sourceAddress?: string;
  sourcePort?: number;
  transport?: string;
  destinationAddress?: string;
  destinationPort?: number;
  headers: Record<string, string | string[]>;
  body?: string;
  [name: string]: unknown;
}

export interface RunResult {
  outcome: Outcome;
  cd?: Record<string, unknown>;
}

/** Runs sipflow for one request: the HTTP execute endpoint, or the engine in process. */
export interface Runner {
  run(cd: CdInput): Promise<RunResult>;
}

/** An error answered by the execute endpoint (HTTP status ≥ 400). */
export class ExecuteError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A runner calling `POST /api/v1/execute` with the bearer token. */
export function httpRunner(o: { url: string; token: string; logic?: string; timeoutMs?: number; fetch?: typeof fetch }): Runner {
  const doFetch = o.fetch ?? fetch;
  return {
    async run(cd) {
      const res = await doFetch(o.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(o.logic ? { cd, logic: o.logic } : { cd }),
        signal: AbortSignal.timeout(o.timeoutMs ?? 2000),
      });
      const text = await res.text();
      if (!res.ok) throw new ExecuteError(res.status, `execute: HTTP ${res.status} ${text.slice(0, 500)}`);
      return JSON.parse(text) as RunResult;
    },
  };
}

/**
 * A runner executing a logic in this process (what the execute endpoint does, without HTTP): for
 * an application that embeds sipflow's engine next to drachtio-srf.
 */
export function engineRunner(o: { service: CompiledService; logic: string; ctx: RunContext; limits?: Partial<RunLimits> }): Runner {
  return {
    async run(input) {
      const cd = buildCallDescriptor(input, { credentials: o.ctx.auth.parseCredentials });
      const r = await runLogic(o.service, o.logic, cd, o.ctx, { limits: o.limits });
      return { outcome: r.outcome, cd: callDescriptorJson(r.cd) };
    },
  };
}

// ---------------------------------------------------------------- request → call descriptor

/** Hop-by-hop headers drachtio-server handles itself: not part of the call descriptor. */
const SKIPPED = new Set(['via', 'v', 'route', 'record-route', 'max-forwards', 'content-length', 'l']);

function localEndpoint(receivedOn: string | undefined): { address: string; port: number } | null {
  if (!receivedOn) return null;
  const m = /^(?:[a-z]+\/)?(\[[^\]]+\]|[^:]+):(\d+)$/i.exec(receivedOn.trim());
  return m ? { address: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) } : null;
}

/**
 * The call descriptor of a drachtio request: method, Request-URI, source, local socket, transport
 * and every header (except the hop-by-hop ones). sipflow derives callId, from/to URI and user,
 * called, calling and authUsername from the headers.
 */
export function callDescriptorOf(req: DrachtioRequest): CdInput {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (SKIPPED.has(name.toLowerCase())) continue;
    const v = typeof value === 'string' ? value : req.get(name);
    if (typeof v === 'string') headers[name] = v;
  }
  const cd: CdInput = { requestMethod: req.method, requestURI: req.uri, headers };
  if (req.source_address) cd.sourceAddress = req.source_address;
  if (req.source_port !== undefined && Number.isFinite(Number(req.source_port))) cd.sourcePort = Number(req.source_port);
  if (req.protocol) cd.transport = req.protocol.toLowerCase();
  const local = localEndpoint(req.receivedOn);
  if (local) {
    cd.destinationAddress = local.address;
    cd.destinationPort = local.port;
  }
  if (typeof req.body === 'string' && req.body.length > 0) cd.body = req.body;
  return cd;
}

// ---------------------------------------------------------------- outcome → response

export interface DrachtioFrontEndOptions {
  /** Answer when a top-level logic exits (default 404 Not Found: sipflow's `sip.defaultRoute`). */
  defaultRoute?: { status: number; reason?: string };
  /** Retry-After (s) when sipflow is unreachable, and of a 503 error outcome that gives none (default 5). */
  retryAfter?: number;
  /** Clock for the Date header of a 2xx REGISTER (default Date.now). */
  now?: () => number;
  /** Stay in the dialog of relayed INVITEs (Record-Route; default true). */
  recordRoute?: boolean;
  /** How several relay targets are tried (default simultaneous, as sipflow's own proxy). */
  forking?: 'sequential' | 'simultaneous';
  /** Methods handled (default: every method that can start a transaction outside a dialog). */
  methods?: string[];
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export const DEFAULT_METHODS = ['register', 'invite', 'options', 'message', 'subscribe', 'notify', 'publish', 'info', 'refer'];

/** Header name → value for res.send; repeated headers that must not be comma-joined stay separate lines. */
function multi(name: string, values: string[]): string {
  // drachtio-srf writes `name: value`; an embedded CRLF + name makes one header line per value
  // (RFC 3261 §7.3.1: WWW-/Proxy-Authenticate must not be combined with commas).
  return values.join(`\r\n${name}: `);
}

/**
 * Where a relay target is sent: its `received` address (NAT: the source of the REGISTER) with the
 * contact's user, else the contact URI itself; a Path is not supported by drachtio's proxy and its
 * first hop is used as the destination.
 */
export function destinationOf(t: RelayTarget): string {
  if (t.path && t.path.length) {
    const m = /<([^>]+)>/.exec(t.path[0]);
    return m ? m[1] : t.path[0].trim();
  }
  if (t.received) {
    const user = /^sips?:([^@;?]+)@/i.exec(t.uri)?.[1];
    const rcv = /^(sips?):(?:[^@]*@)?(.*)$/i.exec(t.received.trim());
    if (user && rcv) return `${rcv[1]}:${user}@${rcv[2]}`;
    return t.received;
  }
  return t.uri;
}

function send(res: DrachtioResponse, status: number, reason?: string, headers?: Record<string, string>): void {
  if (res.finalResponseSent) return;
  const opts = headers && Object.keys(headers).length ? { headers } : undefined;
  try {
    res.send(status, reason || undefined, opts);
  } catch {
    // drachtio-srf refuses codes it does not know: the class's generic code
    res.send(Math.floor(status / 100) * 100 || 500, reason || undefined, opts);
  }
}

/** responseFor's headers as res.send takes them: one string per name, repeated values comma-joined (challenges: one line each). */
function drachtioHeaders(headers: ResponseHeader[]): Record<string, string> | undefined {
  if (headers.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [name, values] of headers) {
    out[name] = /^(www|proxy)-authenticate$/i.test(name) ? multi(name, values) : values.join(', ');
  }
  return out;
}

/** The request's Path header (the only one responseFor reads), as a header map. */
function pathOf(req: DrachtioRequest): Record<string, string[]> {
  const path = req.has('path') ? req.get('path') : undefined;
  return path ? { path: [path] } : {};
}

/**
 * Carries out an outcome on a drachtio request: the response is sipflow's own front end's
 * (sip/response-for.ts `responseFor`), sent with res.send; a relay goes to srf.proxyRequest.
 */
export async function applyOutcome(
  srf: Pick<DrachtioSrf, 'proxyRequest'>,
  req: DrachtioRequest,
  res: DrachtioResponse,
  outcome: Outcome,
  o: DrachtioFrontEndOptions = {},
): Promise<void> {
  if (outcome.kind === 'error') {
    o.log?.(
      outcome.status === 503 ? 'warn' : 'error',
      `${req.method} ${req.get('call-id') ?? ''}: ${outcome.reason}${outcome.where ? ` at ${outcome.where}` : ''}`,
    );
  }
  const r = responseFor(outcome, pathOf(req), { now: (o.now ?? Date.now)(), exit: o.defaultRoute, retryAfter: o.retryAfter });
  if (r.kind === 'response') {
    send(res, r.status, r.reason, drachtioHeaders(r.headers));
    return;
  }
  // Failover (nodes/failover.ts) is drachtio's sequential forking: its own rule (any non-2xx final
  // moves on) instead of failoverCodes, provisionalTimeout for attemptTimeoutMs, no ifAllFailed.
  const failover = outcome.kind === 'relay' ? outcome.failover : undefined;
  const destinations = [...r.targets, ...(failover?.alternatives.flat() ?? [])].map(destinationOf);
  try {
    await srf.proxyRequest(req, destinations.length === 1 ? destinations[0] : destinations, {
      recordRoute: (o.recordRoute ?? true) && /^(INVITE|SUBSCRIBE|REFER)$/.test(req.method),
      forking: failover !== undefined ? 'sequential' : (o.forking ?? 'simultaneous'),
      ...(failover?.attemptTimeoutMs !== undefined ? { provisionalTimeout: `${failover.attemptTimeoutMs}ms` } : {}),
    });
  } catch (e) {
    o.log?.('error', `proxy to ${destinations.join(', ')} failed: ${(e as Error).message}`);
    send(res, 500, 'Server Internal Error');
  }
}

const hasToTag = (req: DrachtioRequest) => /;\s*tag\s*=/i.test(req.get('to') ?? '');

/**
 * Installs sipflow on a drachtio-srf instance: a middleware (`srf.use`) that keeps in-dialog
 * requests away from sipflow, and a handler per method (`srf.register`, `srf.invite`,
 * `srf.options`, …) that runs the logic and carries out its outcome. Returns the handler, for
 * applications that route some requests themselves.
 */
export function attachDrachtio(srf: DrachtioSrf, runner: Runner, o: DrachtioFrontEndOptions = {}): { handle: DrachtioHandler } {
  // In-dialog requests (To tag) are not sipflow's: drachtio-server routes those of the dialogs it
  // proxies with Record-Route; anything else reaching the application does not match a dialog.
  srf.use((req, res, next) => {
    if (!hasToTag(req) || req.method === 'CANCEL') {
      next();
      return;
    }
    if (req.method !== 'ACK') send(res, 481, 'Call/Transaction Does Not Exist');
  });

  const handle: DrachtioHandler = (req, res) => {
    if (req.method === 'ACK' || req.method === 'CANCEL') return; // drachtio-server handles both
    let cd: CdInput;
    try {
      cd = callDescriptorOf(req);
    } catch (e) {
      o.log?.('warn', `bad request: ${(e as Error).message}`);
      send(res, 400, 'Bad Request');
      return;
    }
    runner
      .run(cd)
      .then(
        (r) => applyOutcome(srf, req, res, r.outcome, o),
        (e: unknown) => {
          if (e instanceof ExecuteError && e.status < 500) {
            // this front end and sipflow disagree (token, call descriptor, logic name)
            o.log?.('error', e.message);
            send(res, 500, 'Server Internal Error');
          } else {
            o.log?.('error', `sipflow unreachable: ${(e as Error)?.message ?? String(e)}`);
            send(res, 503, 'Service Unavailable', { 'Retry-After': String(o.retryAfter ?? 5) });
          }
        },
      )
      .catch((e: unknown) => {
        o.log?.('error', `applying the outcome failed: ${(e as Error)?.message ?? String(e)}`);
        send(res, 500, 'Server Internal Error');
      });
  };

  for (const m of o.methods ?? DEFAULT_METHODS) {
    const register = srf[m.toLowerCase()];
    if (typeof register === 'function') (register as (fn: DrachtioHandler) => unknown).call(srf, handle);
  }
  return { handle };
}
