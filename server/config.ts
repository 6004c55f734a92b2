/**
 * sipflow's configuration: one YAML or JSON file, validated with zod, with environment overrides.
 * Every key has a default, and the defaults are the embedded setup (PGlite directory and SQL
 * location service in the data dir, SIP on 5060). The schema is declared once: validation,
 * the TypeScript type, the JSON Schema and the reference in docs/operations.md derive from it.
 */
import { readFileSync } from 'fs';
import { isIP } from 'net';
import path from 'path';
import YAML from 'yaml';
import { z } from 'zod';
import { parseInstant } from '../engine/instant';
import { SECRET_NAME } from '../engine/secrets';
import { parseCollectorAddress } from '../services/collector-address';
import { parseDirectoryUrl } from '../services/directory/url';
import { HEP_DEFAULT_PORT } from '../services/hep/sender';
import { transportNamed, transportNames } from '../sip/transports';

const port = z.number().int().min(0).max(65535);

/**
 * The string schemas of path-valued keys (pathString()): loadConfig resolves their values against
 * the config file's folder, environment overrides against the working directory (resolvePaths), so
 * a start from another directory finds the same files. A Set of schema objects, not a zod .meta(),
 * because leaves() sees the inner schema once optional/default are unwrapped.
 */
const PATH_SCHEMAS = new Map<z.ZodType, (value: string) => boolean>();
/** A path-valued key (a file or folder): see PATH_SCHEMAS. `keep`: the values that are names, not paths. */
function pathString(keep: (value: string) => boolean = () => false): z.ZodString {
  const s = z.string().min(1);
  PATH_SCHEMAS.set(s, keep);
  return s;
}
/** directory.url `memory`: PGlite in memory (services/directory/connect.ts), not a folder. */
const isMemoryDirectory = (v: string) => v.trim() === 'memory';
const seconds = z.number().int().min(0);
/** A UDP collector's address (output.syslog's target, hep.collector), checked by the parser that later reads it. */
const collectorAddress = (defaultPort: number) =>
  z.string().refine((v) => {
    try {
      parseCollectorAddress(v, defaultPort);
      return true;
    } catch {
      return false;
    }
  }, `must be host:port, [ipv6]:port or a host (port ${defaultPort})`);

/** An ISO-8601 instant with its offset: `2026-12-24T10:00:00+01:00`, `2026-12-24T09:00:00Z`. */
export const isoInstant = z.string().superRefine((v, ctx) => {
  const at = parseInstant(v);
  if (at instanceof Error) ctx.addIssue({ code: 'custom', message: at.message });
});

/** `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32` (security.trustedSources; parsed by services/guard/trusted.ts). */
function isAddressOrCidr(s: string): boolean {
  const [addr, bits, more] = s.trim().split('/');
  const family = isIP(addr.replace(/^::ffff:(?=\d+\.)/i, ''));
  if (family === 0 || more !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
}

/**
 * A `nodes.plugins` entry naming an npm package (`name`, `@scope/name`: npm's naming rules);
 * anything else (`./x`, `a/b`, `/opt/x`) is a path. As with require(), a file or folder next to
 * the config file is written `./name`.
 */
export function isPluginPackageName(spec: string): boolean {
  return /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/.test(spec);
}

/** The registered SIP transports (sip/transports: udp, tcp, …). */
const transportName = z.enum(transportNames() as [string, ...string[]]);
/** What a listener entry without `transport` nor `transports` gets (the deprecated form's default). */
const DEFAULT_TRANSPORTS = ['udp', 'tcp'];

/**
 * One SIP socket, as Kamailio's `listen=udp:192.0.2.10:5060`: `{transport, host, port}`. Entries
 * with the same `name` are one listener (one front end; routes select it by name) with one socket
 * per transport. Deprecated, still accepted: `transports: [udp, tcp]` for several transports on
 * one host and port (the default when an entry gives neither).
 */
export const listenerSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .default('default')
      .describe('name used by routes to select this listener; entries with the same name are one listener with a socket per transport'),
    transport: transportName.optional().describe('transport of this socket (one entry per transport and address, as Kamailio listen=udp:host:port)'),
    host: z.string().min(1).default('0.0.0.0').describe('address to bind'),
    port: port.optional().describe("SIP port (0 = any free port; default: the transport's, 5060, or 5061 for tls)"),
    transports: z
      .array(transportName)
      .min(1)
      .optional()
      .describe('deprecated (use one entry per transport): several transports on this host and port; default [udp, tcp] when transport is not given'),
    advertise: z.string().optional().describe('address written in Via/Record-Route when the bind address is not reachable (e.g. behind NAT)'),
  })
  .strict()
  .refine((l) => l.transport === undefined || l.transports === undefined, {
    message: 'give transport or the deprecated transports, not both',
    path: ['transports'],
  })
  .transform(({ port, ...l }) => ({
    ...(l.transport === undefined && l.transports === undefined ? { ...l, transports: DEFAULT_TRANSPORTS.slice() } : l),
    port: port ?? (l.transport !== undefined ? transportNamed(l.transport)?.defaultPort : undefined) ?? 5060,
  }));

export type ListenerEntry = z.output<typeof listenerSchema>;

/** A configured listener: one front end and its sockets (one per transport). */
export interface SipListener {
  name: string;
  advertise?: string;
  sockets: Array<{ transport: string; host: string; port: number }>;
}

/**
 * `sip.listeners` as listeners: entries grouped by name (in the order names first appear), the
 * deprecated `transports` form expanded to a socket per transport.
 */
export function sipListeners(entries: readonly ListenerEntry[]): SipListener[] {
  const byName = new Map<string, SipListener>();
  for (const e of entries) {
    let l = byName.get(e.name);
    if (!l) {
      l = { name: e.name, sockets: [] };
      byName.set(e.name, l);
    }
    if (e.advertise !== undefined) l.advertise ??= e.advertise;
    for (const transport of e.transport !== undefined ? [e.transport] : (e.transports ?? DEFAULT_TRANSPORTS)) {
      l.sockets.push({ transport, host: e.host, port: e.port });
    }
  }
  return [...byName.values()];
}

/** Problems of a listener list: a transport twice in one listener, two advertised addresses for one. */
function listenerProblems(entries: readonly ListenerEntry[]): string[] {
  const problems: string[] = [];
  for (const l of sipListeners(entries)) {
    const seen = new Set<string>();
    for (const s of l.sockets) {
      if (seen.has(s.transport)) problems.push(`listener "${l.name}" has two ${s.transport} sockets (give the second one another name)`);
      seen.add(s.transport);
    }
    const advertised = new Set(entries.filter((e) => e.name === l.name && e.advertise !== undefined).map((e) => e.advertise));
    if (advertised.size > 1) problems.push(`listener "${l.name}" advertises ${[...advertised].join(' and ')} (one address per listener)`);
  }
  return problems;
}

/** A listener socket over TLS (tls, wss) without the certificate and key to serve it. */
export function tlsProblems(listeners: readonly SipListener[], tls: { certFile?: string; keyFile?: string }): string[] {
  const missing = [tls.certFile ? null : 'sip.tls.certFile (--tls-cert)', tls.keyFile ? null : 'sip.tls.keyFile (--tls-key)'].filter((k) => k !== null);
  if (missing.length === 0) return [];
  const problems: string[] = [];
  for (const l of listeners)
    for (const s of l.sockets)
      if (transportNamed(s.transport)?.secure)
        problems.push(`listener "${l.name}" has a ${s.transport} socket on port ${s.port}: set ${missing.join(' and ')}`);
  return problems;
}

export const routeSchema = z
  .object({
    listener: z.string().optional().describe('listener name; any when absent'),
    method: z
      .string()
      .regex(/^[A-Z]+$/, 'must be an upper-case SIP method')
      .optional()
      .describe('SIP method; any when absent'),
    source: z.string().optional().describe('source address prefix (e.g. 10.0.12. or 192.168.1.10); any when absent'),
    logic: z.string().min(1).describe('logic id or name to run'),
  })
  .strict();

export const configSchema = z
  .object({
    dataDir: pathString().default('.data').describe('embedded data: PGlite directory, nonce secret (relative: to the config file, else the working directory)'),
    flows: pathString()
      .optional()
      .describe(
        '.slid file or folder of .slid files imported at start (docs/operations.md, "Paths and shipped flows"); default: the flows shipped with sipflow (flows/ of the installation)',
      ),
    defaultLogic: z.string().min(1).default('pbx').describe('logic run when no route matches (id or name)'),
    sip: z
      .object({
        listeners: z
          .array(listenerSchema)
          .min(1)
          .superRefine((entries, ctx) => {
            for (const message of listenerProblems(entries)) ctx.addIssue({ code: 'custom', message });
          })
          .prefault([{}])
          .describe(
            'SIP sockets: [{transport, host, port}] (Kamailio listen=); entries sharing a name are one listener. The deprecated {host, port, transports: [udp, tcp]} still works',
          ),
        domain: z.string().min(1).optional().describe('registrar domain = digest realm; default: the From host of each request'),
        aliases: z.array(z.string().min(1)).default([]).describe('other names of this domain (Request-URIs addressed to the server)'),
        called: z.enum(['requestUri', 'to']).default('requestUri').describe('where the called variable comes from'),
        recordRoute: z.boolean().default(false).describe('add Record-Route to relayed requests'),
        workers: z
          .union([z.literal('auto'), z.number().int().min(1)])
          .default('auto')
          .describe(
            'SIP worker threads; messages are dispatched to them by Call-ID, stores stay in the main thread; "auto" = one per core, 1 = everything in the main thread',
          ),
        inlineMaxRate: z
          .number()
          .int()
          .min(0)
          .default(3000)
          .describe(
            'with worker threads: messages per second up to which the main thread handles REGISTERs and OPTIONS itself instead of waking a worker for each (at low rates the hand-offs cost more than the work, docs/performance.md); above it they go to the workers until the rate stays under 60 % of it for 2 s; 0 = always the workers',
          ),
        handOffHoldMs: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(3)
          .describe(
            'with worker threads: how long the main thread gathers the datagrams for a worker and hands them over as one batch, while they keep coming (the first after a quiet spell goes at once). A hand-off costs the main thread tens of µs, most of it waking the worker: 3 ms took 7–16 % off the CPU per call at 3,000–9,000 calls/s against 1 ms, for about 8 ms more mean response time per call (docs/performance.md, "The hand-off\'s hold"); 0 = hand over at the end of every event-loop turn',
          ),
        maxQueueMs: z
          .number()
          .int()
          .min(1)
          .default(400)
          .describe('a request that waited longer than this for a worker thread is dropped (overload: the UA retransmits; responses are never dropped)'),
        shedAfterMs: z
          .number()
          .int()
          .min(1)
          .default(200)
          .describe(
            'past this wait for a worker thread, a UDP request that would start new work (no credentials, outside a dialog) is shed before any logic runs on it (sip.shedRetryAfterSec says how), so an overloaded thread completes the calls it started (retransmissions are still answered; TCP and TLS requests are never shed)',
          ),
        shedRetryAfterSec: z
          .number()
          .int()
          .min(0)
          .max(3600)
          .default(0)
          .describe(
            'above 0, a shed request (sip.shedAfterMs) is answered 503 Service Unavailable with a Retry-After of this many seconds to twice that, at random (an SBC in front then tries another instance; a phone comes back later); 0, the default, drops it silently and its UA retransmits it, which completed more calls past capacity on the SIP bench (docs/performance.md, Overload)',
          ),
        defaultRoute: z
          .object({
            status: z.number().int().min(300).max(699).default(404),
            reason: z.string().default('Not Found'),
          })
          .strict()
          .prefault({})
          .describe('answer when a top-level logic exits'),
        loopGuard: z
          .object({
            maxOccurrences: z.number().int().min(1).default(10).describe('max requests with the same calling/called/call-id per window'),
            windowSec: z.number().positive().default(5),
          })
          .strict()
          .prefault({}),
        tls: z
          .object({
            certFile: pathString().optional().describe('PEM certificate chain of the TLS and WSS listeners (sips:); required when a listener uses tls or wss'),
            keyFile: pathString().optional().describe('PEM private key of certFile (never logged)'),
            caFile: pathString()
              .optional()
              .describe('PEM CA certificates: client certificates are verified against them (verifyClient), and so are servers sipflow connects to'),
            verifyClient: z
              .enum(['off', 'optional', 'required'])
              .default('off')
              .describe(
                'client certificates on inbound TLS: off = not asked; optional = asked, verified when given; required = a connection without a valid one is closed',
              ),
            verifyServer: z
              .boolean()
              .default(true)
              .describe(
                "verify the certificate of a server sipflow connects to over TLS (relayed requests to sips: or transport=tls targets) against caFile or the system's CAs",
              ),
            handshakeTimeoutMs: z
              .number()
              .int()
              .min(100)
              .default(10_000)
              .describe('an inbound TLS handshake must complete within this time, else the connection is closed'),
            reloadCheckSec: z
              .number()
              .int()
              .min(0)
              .default(60)
              .describe(
                'the certificate, key and CA files are watched and reloaded when they change (no restart; SIGHUP forces it); they are also checked this often, for file systems where watching misses changes (0 = watching only)',
              ),
          })
          .strict()
          .prefault({}),
        websocket: z
          .object({
            trustedProxies: z
              .array(z.string().min(1).refine(isAddressOrCidr, 'must be an IP address or a CIDR block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)'))
              .default([])
              .describe(
                'reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For names the WebSocket client: its address is then the source for bans, rate limits and connection caps. security.trustedSources are believed too; from anyone else the header is ignored',
              ),
          })
          .strict()
          .prefault({})
          .describe(
            'SIP over WebSocket (ws, wss listeners, http.sipWebSocket); limits: sip.tcp (connections, idle timeout, handshake within messageTimeoutMs)',
          ),
        tcp: z
          .object({
            messageTimeoutMs: z
              .number()
              .int()
              .min(100)
              .default(10_000)
              .describe(
                'a SIP message whose first byte arrived on a TCP connection must be complete within this time, else the connection is closed (slowloris: a trickle of bytes defeats the idle timeout, not this one)',
              ),
            idleTimeoutSec: z
              .number()
              .int()
              .min(1)
              .default(300)
              .describe('TCP connections with no traffic this long are closed (RFC 5626 CRLF keep-alives count as traffic)'),
            maxConnections: z
              .number()
              .int()
              .min(1)
              .default(4096)
              .describe(
                'inbound SIP TCP connections open at once, all listeners and sources together; further ones are reset at once so that the HTTP API, the health checks and the stores keep file descriptors. Applied at most half the soft open-file limit (ulimit -n, read from /proc/self/limits at start; logged when lowered)',
              ),
            maxConnectionsPerSource: z
              .number()
              .int()
              .min(1)
              .default(64)
              .describe(
                'inbound SIP TCP connections open at once from one source address; further ones are reset at once (security.trustedSources are exempt, an SBC or a NATed office may need more)',
              ),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine((sip, ctx) => {
        for (const message of tlsProblems(sipListeners(sip.listeners), sip.tls)) ctx.addIssue({ code: 'custom', message, path: ['tls'] });
      })
      .prefault({}),
    security: z
      .object({
        trustedSources: z
          .array(z.string().min(1).refine(isAddressOrCidr, 'must be an IP address or a CIDR block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)'))
          .default([])
          .describe(
            'addresses or CIDR blocks (trunks, SBCs, monitoring) never banned, rate-limited or dropped as scanners; their authentication failures still count against the username. Behind an SBC, list it here: the per-username lock is then the remaining brute-force defence',
          ),
        bans: z
          .object({
            enabled: z
              .boolean()
              .default(true)
              .describe(
                'count failed authentications and ban sources / lock usernames past the thresholds, ban sources over their rate or using a scanner User-Agent; false = no ban or lock at all (the rate limit and the scanner check still drop the messages concerned)',
              ),
            windowSec: z.number().int().min(1).default(60).describe('sliding window over which failures are counted'),
            maxFailuresPerSource: z
              .number()
              .int()
              .min(1)
              .default(20)
              .describe('failed authentications from one source address within the window before it is banned'),
            maxFailuresPerUser: z
              .number()
              .int()
              .min(1)
              .default(50)
              .describe(
                'failed authentications for one auth username (any case, from any source) within the window before it is locked; keep it above maxFailuresPerSource, so that one source is banned before it can lock a user out',
              ),
            banSec: z.number().int().min(1).default(900).describe('how long a banned source (failures, rate, scanner) is dropped silently'),
            lockSec: z.number().int().min(1).default(300).describe('how long a locked username is refused, whatever its password'),
          })
          .strict()
          .prefault({}),
        rateLimit: z
          .object({
            requestsPerSec: z
              .number()
              .min(0)
              .default(200)
              .describe(
                'SIP messages (requests and responses) accepted per second from one source address, token bucket (0 = no limit); past it they are dropped silently',
              ),
            burst: z.number().int().min(1).default(400).describe('messages a source may send at once above the steady rate (the bucket size)'),
            banAfterSec: z
              .number()
              .int()
              .min(0)
              .default(10)
              .describe(
                'a source over its rate for this many seconds in a row (drops at most 1 s apart) is banned for security.bans.banSec (0 = never ban for rate)',
              ),
          })
          .strict()
          .prefault({}),
        scannerUserAgents: z
          .array(z.string().min(1))
          .default([
            'friendly-scanner',
            'sipvicious',
            'sipcli',
            'VaxSIPUserAgent',
            'sip-scan',
            'sundayddr',
            'iWar',
            'SIPScan',
            'smap',
            'PortSIP VoIP SDK',
            'pplsip',
          ])
          .describe('requests whose User-Agent contains one of these (case-insensitive) are dropped silently and their source banned'),
      })
      .strict()
      .prefault({}),
    routes: z.array(routeSchema).default([]).describe('interfaces → logics, first match wins'),
    directory: z
      .object({
        url: pathString(isMemoryDirectory).optional().describe('PGlite data dir, memory://, or postgres://user:pass@host/db (default <dataDir>/directory)'),
        poolMax: z.number().int().min(1).default(10),
        cacheSec: z
          .number()
          .min(0)
          .optional()
          .describe(
            'reuse directory query results this many seconds (0 = every query reads the database); writes through this process invalidate the cache. Default: 3600 with the embedded directory (PGlite or memory://: only this process can write it, so every change invalidates), 0 with PostgreSQL (other processes write it; the TTL bounds what they see stale)',
          ),
        cacheNegativeSec: z.number().min(0).default(5).describe('how long an empty result is reused (at most cacheSec)'),
        cacheMaxEntries: z.number().int().min(1).default(100000).describe('cached results kept at most (oldest dropped first)'),
        vacuumSec: z
          .number()
          .int()
          .min(0)
          .default(60)
          .describe(
            "embedded directory (PGlite) only: every this many seconds, VACUUM and ANALYZE the tables past autovacuum's own thresholds, which PGlite does not run itself (services/directory/embedded-vacuum.ts); 0 = never (dead rows and transaction ids then pile up)",
          ),
        startupLockWaitSec: z
          .number()
          .int()
          .min(1)
          .default(120)
          .describe(
            'instances starting together take turns at the schema work (migrations, first import of the shipped flows) under a PostgreSQL advisory lock; one that waits longer than this for it gives up, naming the holder, and exits',
          ),
      })
      .strict()
      .prefault({}),
    location: z
      .object({
        url: z
          .string()
          .min(1)
          .default('sql')
          .describe('"sql" (directory database), "memory", postgres://…, or mongodb://h1,h2,h3/kamailio?replicaSet=sre_location'),
        database: z.string().min(1).default('kamailio').describe('MongoDB database when the URL names none'),
        collection: z.string().min(1).default('location'),
        writeConcern: z.union([z.literal('majority'), z.number().int().min(0)]).default('majority'),
        writeBatch: z
          .union([z.literal('auto'), z.number().int().min(1).max(1000)])
          .default('auto')
          .describe(
            'MongoDB location: the most binding writes one command carries (concurrent REGISTERs\' writes go out together as one unordered bulkWrite); 1 sends each write as its own command, as Kamailio\'s usrloc does. "auto": 500 on MongoDB, 1 on FerretDB (told by its buildInfo at connect), which holds a PostgreSQL connection for each replacing statement of a command until the command returns (docs/operations.md, "MongoDB location on FerretDB")',
          ),
        writesInFlight: z
          .union([z.literal('auto'), z.number().int().min(1).max(64)])
          .default('auto')
          .describe(
            'MongoDB location: write commands (of up to writeBatch writes each) sent at once; the rest wait for one to return. "auto": 4 on MongoDB, 16 on FerretDB',
          ),
        commitDelayMs: z
          .number()
          .int()
          .min(0)
          .max(100)
          .optional()
          .describe(
            'SQL / PostgreSQL location: how long the first binding write of a quiet spell (no write running) waits for others to share its statement and commit (a commit delay, as PostgreSQL\'s commit_delay; a REGISTER that writes answers up to this much later, still only after its commit; while writes run, the next go as soon as one completes). Default: 10 when the location is the embedded directory (url "sql" on PGlite, whose every statement costs about 0.5 ms of the thread that receives the SIP traffic: at 500 calls/s five bindings then share one), 0 otherwise (at once; batches grow only while the database is busy)',
          ),
        mode: z
          .enum(['db-only', 'write-through'])
          .optional()
          .describe(
            'SQL / PostgreSQL / MongoDB location: "db-only" reads and writes the database on every REGISTER and lookup (Kamailio usrloc db_mode 3); "write-through" keeps every binding in memory, loaded at start, serves lookups from memory and writes each binding to the database before its 200 OK (db_mode 1, fewer statements per REGISTER), and follows other instances\' changes (PostgreSQL LISTEN/NOTIFY, MongoDB change streams, else a reload every refreshSec; docs/operations.md). Ignored by the memory location. Default: write-through when the location is the embedded directory (url "sql" on PGlite: no other process can open it, so memory and database never differ), db-only otherwise',
          ),
        refreshSec: z
          .number()
          .positive()
          .default(2)
          .describe(
            'write-through on a MongoDB server without change streams (FerretDB, a standalone mongod): bindings other instances write are picked up by a full reload this often',
          ),
        serverId: z
          .number()
          .int()
          .min(0)
          .max(0x7fffffff)
          .default(0)
          .describe(
            "this instance's id, stored in each binding's server_id (usrloc's server_id): only the instance whose id a binding carries relays over its connection and sends it keepalives. Give every instance sharing a location store its own",
          ),
      })
      .strict()
      .prefault({}),
    registrar: z
      .object({
        defaultExpires: seconds.default(3600),
        minExpires: seconds.default(60),
        maxExpires: seconds.default(86400),
        rejectBelowMin: z.boolean().default(true).describe('423 + Min-Expires (else raise to minExpires)'),
        maxContacts: seconds.default(10).describe('bindings per AoR (0 = unlimited); a REGISTER that would add one more is answered 403 and changes nothing'),
        ownership: z
          .object({
            mode: z
              .enum(['directory', 'username', 'off'])
              .default('directory')
              .describe(
                'after authentication, which AoR the credentials may register: "directory" = the AoR of the authenticated username\'s row (table, usernameColumn, aorColumn; an empty AoR column = the username itself), "username" = an AoR whose user is the auth username (Kamailio auth_check with the To-user check), "off" = any AoR (only behind a front end that checks it; logged at start). Other AoRs get 403, nothing stored or removed',
              ),
            table: z
              .string()
              .regex(/^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$/, 'must be schema.table')
              .default('registration.customers')
              .describe('directory table holding the username → AoR tie'),
            usernameColumn: z
              .string()
              .regex(/^[A-Za-z_][\w]*$/, 'must be a column name')
              .default('username')
              .describe('column matched against the digest username'),
            aorColumn: z
              .string()
              .regex(/^[A-Za-z_][\w]*$/, 'must be a column name')
              .default('aor')
              .describe('column holding the owned AoR (user, user@domain or sip:user@domain)'),
            matchDomain: z
              .boolean()
              .default(false)
              .describe('compare the AoR domain too (multi-domain registrars); by default the user part alone, as the realm is the From host'),
          })
          .strict()
          .prefault({}),
        purgeIntervalSec: z.number().int().min(1).default(60),
        nat: z
          .object({
            udpMaxExpires: seconds
              .default(0)
              .describe(
                'longest expiry granted to a NATed contact registered over UDP, answered in the 200 OK (0 = no cap): the UA refreshes, and so reopens its pinhole, this often',
              ),
            branchFlag: z
              .number()
              .int()
              .min(-1)
              .max(30)
              .default(6)
              .describe("bit set in a NATed binding's cflags (Kamailio's nat_bflag; kamailio.cfg's FLB_NATB is 6; -1 = none)"),
          })
          .strict()
          .prefault({}),
        connections: z
          .object({
            removeOnClose: z
              .boolean()
              .default(true)
              .describe(
                "remove the bindings tied to a TCP/TLS/WebSocket connection when it closes (Kamailio's handle_lost_tcp). Off: they stay until they expire but are never used (a call to them gets 480, no new connection is opened)",
              ),
          })
          .strict()
          .prefault({}),
        keepalive: z
          .object({
            intervalSec: z
              .number()
              .int()
              .min(0)
              .default(30)
              .describe(
                'keepalives to the bindings this instance holds (server_id) that are NATed or tied to a connection: CRLFCRLF on the connection (RFC 5626), OPTIONS over UDP, each binding once per interval, spread over it (0 = off)',
              ),
            batch: z
              .number()
              .int()
              .min(1)
              .default(200)
              .describe(
                'keepalives sent at most per tick (one tick a second): the bound on the traffic; bindings beyond interval × batch are pinged less often',
              ),
            dropAfterSec: seconds
              .default(0)
              .describe('remove a UDP binding whose device answered no OPTIONS keepalive for this long (0 = never; Kamailio usrloc keepalive_timeout)'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        nonceSecret: z.string().min(16).optional().describe('shared by all instances (hex or text); default: generated once in dataDir'),
        nonceLifetimeSec: z.number().int().min(1).default(300),
        algorithms: z
          .array(z.enum(['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess']))
          .min(1)
          .default(['MD5'])
          .describe('offered digest algorithms'),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxTransitions: z.number().int().min(1).default(1000),
        maxRestarts: z.number().int().min(0).default(2),
        maxCallDepth: z.number().int().min(1).default(16),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(8080),
        token: z.string().min(16).optional().describe('bearer token for the API; default: generated once in dataDir'),
        sipWebSocket: z
          .object({
            enabled: z
              .boolean()
              .default(false)
              .describe(
                'accept SIP over WebSocket (subprotocol sip) on the HTTP port too, for one reverse proxy in front of both; unauthenticated here (SIP digest authenticates), admitted as sip.tcp connections',
              ),
            path: z
              .string()
              .regex(/^\/[^?#\s]*$/, 'must be a URL path (/sip)')
              .default('/sip')
              .describe('URL path of the upgrades; others are refused'),
            listener: z
              .string()
              .min(1)
              .optional()
              .describe('listener whose ws socket takes these connections (Via, Record-Route, routes); default: the first listener with a ws socket'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    nodes: z
      .object({
        plugins: z
          .array(pathString(isPluginPackageName))
          .default([])
          .describe(
            'node plug-ins loaded at start (trusted code, run in-process: docs/plugins.md): a folder or .js file (absolute, or relative to the config file: ./name for one beside it) or an npm package name (name, @scope/name: resolved from the working directory); each exports nodeTypes declared like the built-in nodes',
          ),

        http: z
          .object({
            maxResponseBytes: z.number().int().min(1).default(1048576).describe('query.httpRequest: a longer response body takes the failure exit'),
            connectionsPerOrigin: z.number().int().min(1).default(16).describe('query.httpRequest: pooled connections kept per origin (scheme, host, port)'),
            caFile: pathString()
              .optional()
              .describe(
                "query.httpRequest: PEM certificates trusted for https:// in addition to Node's bundled CAs (a private CA, or a server's self-signed certificate); verification cannot be turned off",
              ),
          })
          .strict()
          .prefault({}),

        enum: z
          .object({
            servers: z
              .array(
                z
                  .string()
                  .refine(
                    (s) => isIP(s) !== 0 || isIP(s.replace(/^\[(.*)\](:\d{1,5})?$/, '$1')) === 6 || (/^[\d.]+:\d{1,5}$/.test(s) && isIP(s.split(':')[0]) === 4),
                    {
                      message: 'must be an IP address, ip:port or [ipv6]:port',
                    },
                  ),
              )
              .default([])
              .describe('query.enum: DNS servers (ip or ip:port); empty = the system resolvers'),
          })
          .strict()
          .prefault({}),

        ldap: z
          .object({
            url: z
              .string()
              .min(1)
              .optional()
              .describe('query.ldap: ldap:// or ldaps:// URL of the directory server (unset: query.ldap takes its failure exit)'),
            bindDn: z.string().min(1).optional().describe('query.ldap: DN to bind as (unset: anonymous)'),
            bindPassword: z.string().optional().describe('query.ldap: password of bindDn (never logged nor shown in traces; prefer the environment variable)'),
          })
          .strict()
          .prefault({}),

        numbers: z
          .object({
            defaultCountry: z
              .string()
              .regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code (FR, US)')
              .optional()
              .describe('action.normalizeNumber: country of national numbers when the node names none'),
          })
          .strict()
          .prefault({}),

        now: isoInstant
          .optional()
          .describe(
            'for trying a service at a given instant: the clock of the date and time nodes starts at this instant when the process starts and runs on from there (registrations, nonces and caches keep the real clock); logged at start, never for production',
          ),

        syslog: z
          .object({
            target: collectorAddress(514)
              .optional()
              .describe('output.syslog: the collector, over UDP (RFC 5426); unset: the messages of output.syslog are dropped'),
            hostname: z.string().min(1).optional().describe('output.syslog: HOSTNAME of the RFC 5424 header (default the machine name)'),
            maxMessageBytes: z.number().int().min(480).max(65000).default(2048).describe('output.syslog: longest datagram; a longer message is cut'),
          })
          .strict()
          .prefault({}),

        cache: z
          .object({
            maxEntries: z.number().int().min(1).default(100000).describe('action.cacheSet: entries kept at most (least recently used dropped first)'),
            maxValueBytes: z.number().int().min(1).default(65536).describe('action.cacheSet: a longer value is not stored'),
            maxTotalBytes: z
              .number()
              .int()
              .min(1024)
              .default(67108864)
              .describe('action.cacheSet: keys and values held together at most, bytes (least recently used dropped first)'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    accounting: z
      .object({
        enabled: z.boolean().default(false).describe('call detail records (CDRs) of INVITE calls (services/accounting); off: no call is followed'),
        database: z.boolean().default(true).describe('write CDRs to the table cdrs of the directory database (searched by GET /api/v1/cdrs)'),
        file: pathString().nullable().default(null).describe('also write CDRs to this JSON-lines file (one record per line), rotated by size; null = no file'),
        fileRotateBytes: z.number().int().min(4096).default(104857600).describe('the file is rotated (file.1, file.2, …) before it would pass this size'),
        fileKeep: z.number().int().min(0).max(1000).default(10).describe('rotated files kept (the oldest is removed)'),
        start: z.boolean().default(false).describe('a start record when a call connects (2xx)'),
        stop: z.boolean().default(true).describe('a stop record when a connected call ends (BYE)'),
        reject: z
          .boolean()
          .default(true)
          .describe('a reject record when a call ends on a 4xx, 5xx or 6xx final (487 after a CANCEL too); 401/407 challenges are not calls and get none'),
        redirect: z.boolean().default(false).describe('a redirect record when a call ends on a 3xx'),
        recurse: z.boolean().default(true).describe('a recurse record per failed attempt followed by another (failover, crankback)'),
        interimSec: z.number().int().min(0).default(0).describe('interim records of connected calls every N seconds; 0 = none'),
        timeoutSec: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('a connected call without any in-dialog request (re-INVITE, UPDATE, …) for N seconds ends with a timeout record; 0 = never'),
        variables: z
          .array(
            z
              .string()
              .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'must be a variable name')
              .refine((v) => !SECRET_NAME.test(v), 'names a secret (pass, secret, ha1, token): never copied into a CDR'),
          )
          .max(32)
          .default([])
          .describe('CD variables copied into each CDR as the logic left them (e.g. customer); variables holding secrets never are'),
        maxCalls: z.number().int().min(1).default(100000).describe('calls followed at once per SIP thread; beyond, new calls get no CDR (logged once)'),
        batchSize: z.number().int().min(1).max(10000).default(500).describe('CDRs per database insert / file write'),
        flushMs: z.number().int().min(1).max(60000).default(1000).describe('a CDR waits at most this long before its batch is written'),
        backlogMax: z
          .number()
          .int()
          .min(1)
          .default(100000)
          .describe('CDRs kept per sink while it cannot be written (database down); beyond, new ones are dropped, counted and logged'),
      })
      .strict()
      .prefault({}),
    callLimit: z
      .object({
        store: z
          .enum(['instance', 'database'])
          .default('instance')
          .describe(
            'analysis.callLimit: where slots and rate windows live. "instance": this process\'s memory, shared by its SIP threads (no database round trip; each instance counts alone). "database": shared by every instance on the location database when it is MongoDB or PostgreSQL, else the directory database (a round trip or more per initial INVITE under a limit; the database down → the node\'s status unavailable, fail closed)',
          ),
        slotTimeoutSec: z
          .number()
          .int()
          .min(60)
          .max(604800)
          .default(10800)
          .describe('analysis.callLimit: a slot whose call was never seen to end (no BYE passed here) is freed after this long'),
        maxKeys: z
          .number()
          .int()
          .min(1)
          .default(100000)
          .describe(
            'analysis.callLimit, store "instance": keys held at most (a key lives while it has slots or calls in its rate window); a new key beyond → status unavailable',
          ),
        timeoutMs: z
          .number()
          .int()
          .min(100)
          .max(30000)
          .default(2000)
          .describe('analysis.callLimit, store "database": longest wait for the database per acquire or release (then status unavailable)'),
      })
      .strict()
      .prefault({}),
    history: z
      .object({
        mode: z
          .enum(['off', 'all', 'sampled', 'failures'])
          .default('off')
          .describe(
            'call history (services/history, GET /api/v1/calls): "off" records nothing (the debug filter still does), "all" every request that reaches a logic and the rest of its Call-ID, "sampled" a share of them (sampleRate, decided per Call-ID), "failures" only those that end in a failure (a final 4xx–6xx other than a 401/407 challenge, an error, or no final response)',
          ),
        sampleRate: z.number().min(0).max(1).default(0.01).describe('mode "sampled": the share of Call-IDs recorded (0.01 = 1 %)'),
        debugNumbers: z
          .array(z.string().min(1).max(128))
          .max(100)
          .default([])
          .describe(
            'recorded whatever the mode: requests whose calling or called number or From / To / Request-URI user is one of these, or whose From / To / Request-URI user@host is (the debug filter; replaced at run time by PUT /api/v1/calls/debug-filter, which lasts until a restart)',
          ),
        maxMessagesPerCall: z.number().int().min(4).max(10000).default(200).describe('SIP messages kept per call; later ones are counted, not kept'),
        maxMessageBytes: z.number().int().min(512).max(65535).default(8192).describe('a longer SIP message is kept cut to this size'),
        maxOpenCalls: z
          .number()
          .int()
          .min(1)
          .default(20000)
          .describe('calls being recorded at once per SIP thread; beyond, new calls are not recorded (counted in sipflow_history_dropped_total)'),
        idleFlushSec: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(4)
          .describe('a call with no message for this long is written; a later message of its Call-ID (a BYE, a re-REGISTER) is added to the same call'),
        maxAgeDays: z
          .number()
          .min(0.001)
          .max(3650)
          .default(7)
          .describe('retention: calls whose last message is older than this are deleted (checked every purgeEverySec)'),
        maxBytes: z
          .number()
          .int()
          .min(1048576)
          .default(1073741824)
          .describe('retention: the stored messages and runs together at most, bytes (their JSON); the calls with the oldest last message are deleted first'),
        purgeEverySec: z.number().int().min(1).max(86400).default(300).describe('how often retention runs'),
        batchSize: z
          .number()
          .int()
          .min(1)
          .max(5000)
          .default(10)
          .describe('recorded calls (segments) per database write; small, because the embedded PGlite writes on the thread that dispatches SIP messages'),
        flushMs: z.number().int().min(1).max(60000).default(1000).describe('a finished call waits at most this long before its batch is written'),
        backlogMax: z
          .number()
          .int()
          .min(1)
          .default(5000)
          .describe(
            'calls recorded and not yet written, for the instance: each SIP thread records at most its share (backlogMax / threads; open calls included), and a new call beyond is not recorded at all, counted in sipflow_history_dropped_total{reason="backlog"}; so a slow or down database costs the SIP threads nothing, never a SIP message',
          ),
        maxWriteShare: z
          .number()
          .gt(0)
          .max(1)
          .default(0.25)
          .describe(
            "with the embedded PGlite directory (it writes on the thread that dispatches SIP messages): the share of that thread's idle time the history writes may take; after a batch that took t, the next waits until the thread has been idle t × (1/share − 1), so the busier SIP keeps it the less is written (nothing while it is saturated); what cannot be written waits in the backlog, and new calls are not recorded while it is full (backlogMax). 1 = no pause. Not applied to PostgreSQL (its work is the server's)",
          ),
      })
      .strict()
      .prefault({}),
    hep: z
      .object({
        collector: collectorAddress(HEP_DEFAULT_PORT)
          .nullable()
          .default(null)
          .describe('HEP v3 (sipcapture) copy of every SIP message sent and received, over UDP to this collector (Homer, heplify-server); null = off'),
        captureId: z.number().int().min(0).max(4294967295).default(2001).describe("HEP capture agent id (chunk 0x000c), as siptrace's hep_capture_id"),
        password: z.string().max(256).nullable().default(null).describe('HEP authentication key (chunk 0x000e) the collector expects; null = none'),
        maxInFlight: z
          .number()
          .int()
          .min(1)
          .max(100000)
          .default(1000)
          .describe('datagrams handed to the socket and not yet sent, per SIP thread; beyond, messages are dropped and counted, never delayed'),
        resolveEverySec: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(30)
          .describe('a collector name that failed to resolve (or a failed send) is resolved again at most this often'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .strict();

/**
 * The listener whose ws socket takes the HTTP port's SIP WebSocket connections (http.sipWebSocket),
 * or undefined when off; throws naming the keys when no listener can (checked at start, not by the
 * schema: `--ws-port` adds the socket after the file is read).
 */
export function sipWebSocketListener(c: Config): string | undefined {
  const w = c.http.sipWebSocket;
  if (!w.enabled) return undefined;
  const withWs = sipListeners(c.sip.listeners).filter((l) => l.sockets.some((s) => s.transport === 'ws'));
  const l = w.listener === undefined ? withWs[0] : withWs.find((x) => x.name === w.listener);
  if (l === undefined) {
    throw new Error(
      `http.sipWebSocket: ${w.listener === undefined ? 'no listener' : `listener "${w.listener}"`} has a ws socket to take the HTTP port's WebSocket connections (add {transport: ws, host: 127.0.0.1, port: 0} to sip.listeners, or --ws-port)`,
    );
  }
  return l.name;
}

export type Config = z.output<typeof configSchema>;

/** The directory is this process's own (PGlite or memory://): nothing else can write it while we run. */
const embeddedDirectory = (c: Config): boolean => c.directory.url === undefined || parseDirectoryUrl(c.directory.url).kind !== 'postgres';
/** The bindings in the embedded directory's PGlite (`location.url` sql on it): only this process opens that database. */
const embeddedLocation = (c: Config): boolean => c.location.url === 'sql' && embeddedDirectory(c);

/**
 * `directory.cacheSec` as it applies: as set, else 3600 s on the embedded directory, whose every
 * change goes through this process's change feed (services/directory/changes.ts) and so empties
 * the cache, and 0 on PostgreSQL, where other processes write unseen.
 */
export const directoryCacheSec = (c: Config): number => c.directory.cacheSec ?? (embeddedDirectory(c) ? 3600 : 0);

/**
 * `location.mode` as it applies: as set, else write-through for bindings in the embedded
 * directory (one process holds PGlite, so the bindings in memory are the database's), db-only for
 * a database other instances may share until the operator says they follow each other.
 */
export const locationMode = (c: Config): 'db-only' | 'write-through' => c.location.mode ?? (embeddedLocation(c) ? 'write-through' : 'db-only');

/** The embedded location's commit delay by default (docs/performance.md, "The embedded default"). */
export const EMBEDDED_COMMIT_DELAY_MS = 10;
/** `location.commitDelayMs` as it applies: as set, else EMBEDDED_COMMIT_DELAY_MS on the embedded directory's PGlite, 0 elsewhere. */
export const locationCommitDelayMs = (c: Config): number => c.location.commitDelayMs ?? (embeddedLocation(c) ? EMBEDDED_COMMIT_DELAY_MS : 0);
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    where: string,
  ) {
    super(`${where}: invalid configuration\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** `sip.listeners.0.port: must be …` from zod issues. */
function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const key = i.path.length ? i.path.join('.') : '(root)';
    if (i.code === 'unrecognized_keys') return `${key === '(root)' ? '' : key + '.'}${i.keys.join(', ')}: unknown key(s)`;
    return `${key}: ${i.message}`;
  });
}

/** Leaf keys and their zod types, for environment overrides (`sip.domain` → SIPFLOW_SIP_DOMAIN). */
function leaves(schema: z.ZodType, prefix: string[] = [], out: Array<{ path: string[]; schema: z.ZodType }> = []) {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    for (const [k, v] of Object.entries(inner.shape)) leaves(v as z.ZodType, [...prefix, k], out);
  } else out.push({ path: prefix, schema: inner });
  return out;
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur: z.ZodType = s;
  while (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodPrefault)
    cur = (cur as z.ZodDefault<z.ZodType>).unwrap() as z.ZodType;
  return cur;
}

export const envName = (p: string[]) => 'SIPFLOW_' + p.map((s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');

function parseEnvValue(raw: string, schema: z.ZodType): unknown {
  const t = raw.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  if (schema instanceof z.ZodNumber) return t === '' ? raw : Number(t);
  if (schema instanceof z.ZodBoolean) return t === 'true' ? true : t === 'false' ? false : raw;
  if (schema instanceof z.ZodArray) return t === '' ? [] : t.split(',').map((x) => x.trim());
  if (schema instanceof z.ZodUnion && /^\d+$/.test(t)) return Number(t);
  return raw;
}

/**
 * Applies SIPFLOW_* environment variables on top of the file's values. A path-valued key's value
 * is resolved against `cwd` here (the shell's directory, as for a command-line option), so that
 * loadConfig's resolution against the config file leaves it as it is.
 */
export function applyEnv(input: Record<string, unknown>, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Record<string, unknown> {
  const out = structuredClone(input);
  const paths = new Map(pathLeaves().map((l) => [l.path.join('.'), l.keep]));
  for (const leaf of leaves(configSchema)) {
    const raw = env[envName(leaf.path)];
    if (raw === undefined) continue;
    let cur = out as Record<string, unknown>;
    for (const seg of leaf.path.slice(0, -1)) {
      if (typeof cur[seg] !== 'object' || cur[seg] === null || Array.isArray(cur[seg])) cur[seg] = {};
      cur = cur[seg] as Record<string, unknown>;
    }
    const value = parseEnvValue(raw, leaf.schema);
    const keep = paths.get(leaf.path.join('.'));
    cur[leaf.path[leaf.path.length - 1]] = keep === undefined ? value : resolveValue(value, cwd, keep);
  }
  return out;
}

/** The keys declared with pathString() (or lists of them, `nodes.plugins`), with the values each leaves as they are. */
export function pathLeaves(): Array<{ path: string[]; keep: (value: string) => boolean }> {
  const out: Array<{ path: string[]; keep: (value: string) => boolean }> = [];
  for (const leaf of leaves(configSchema)) {
    let s = leaf.schema;
    while (s instanceof z.ZodNullable || s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    const keep = PATH_SCHEMAS.get(s);
    if (keep) out.push({ path: leaf.path, keep });
  }
  return out;
}

/**
 * The value of path-valued `key` (`dataDir`, `directory.url`, …) made absolute against `base` (the
 * config file's folder, or the working directory for the command line and the environment). Left
 * as they are: absolute paths, URLs (memory://, postgres://, pglite:dir, file://: directory.url
 * takes them) and the key's names (directory.url `memory`; nodes.plugins' npm package names,
 * `name`, `@scope/name`, resolved by server/node-plugins.ts as require() does).
 */
export function resolveConfigPath(key: string, value: string, base: string): string {
  const leaf = pathLeaves().find((l) => l.path.join('.') === key);
  if (!leaf) throw new Error(`${key} is not a path-valued key`);
  return resolveAgainst(value, base, leaf.keep);
}

function resolveAgainst(value: string, base: string, keep: (value: string) => boolean): string {
  if (path.isAbsolute(value) || keep(value)) return value;
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) && !/^[a-z]:[\\/]/i.test(value)) return value;
  return path.resolve(base, value);
}

const resolveValue = (v: unknown, base: string, keep: (value: string) => boolean): unknown =>
  typeof v === 'string' ? resolveAgainst(v, base, keep) : Array.isArray(v) ? v.map((x) => resolveValue(x, base, keep)) : v;

/** Every path-valued key of a parsed configuration made absolute against `base` (a new object). */
export function resolvePaths(config: Config, base: string): Config {
  const out = structuredClone(config);
  for (const leaf of pathLeaves()) {
    let cur = out as unknown as Record<string, unknown>;
    for (const seg of leaf.path.slice(0, -1)) cur = cur[seg] as Record<string, unknown>;
    const key = leaf.path[leaf.path.length - 1];
    if (cur[key] !== undefined && cur[key] !== null) cur[key] = resolveValue(cur[key], base, leaf.keep);
  }
  return out;
}

/** Parses and validates configuration text (YAML is a superset of JSON). */
export function parseConfig(text: string, where: string, env: NodeJS.ProcessEnv = {}, cwd: string = process.cwd()): Config {
  let raw: unknown;
  try {
    raw = text.trim() === '' ? {} : YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    throw new ConfigError([(e as Error).message.split('\n')[0]], where);
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(['(root): must be a mapping of keys to values'], where);
  const result = configSchema.safeParse(applyEnv(raw as Record<string, unknown>, env, cwd));
  if (!result.success) throw new ConfigError(describeIssues(result.error), where);
  return result.data;
}

/**
 * Loads the config file (or the defaults when none is given), with environment overrides. Paths
 * come out absolute: a file's relative ones (and the defaults, .data) against the file's folder,
 * so `sipflow serve --config /etc/sipflow/sipflow.yaml` reads the same files from any directory;
 * without a file, against the working directory; environment values against the working directory.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  if (!file) return resolvePaths(parseConfig('', 'defaults', env, cwd), cwd);
  let text: string;
  try {
    text = readFileSync(path.resolve(cwd, file), 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`], file);
  }
  return resolvePaths(parseConfig(text, file, env, cwd), path.dirname(path.resolve(cwd, file)));
}

/** JSON Schema of the configuration (for editors and the docs). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** Rows `key | type | default | description` for docs/operations.md, with the env variable of each key. */
export function configReference(): Array<{ key: string; env: string; type: string; default: string; description: string }> {
  const rows: Array<{ key: string; env: string; type: string; default: string; description: string }> = [];
  const defaults = configSchema.parse({}) as unknown as Record<string, unknown>;
  for (const leaf of leaves(configSchema)) {
    let def: unknown = defaults;
    for (const seg of leaf.path) def = (def as Record<string, unknown> | undefined)?.[seg];
    const json = z.toJSONSchema(leaf.schema, { unrepresentable: 'any' }) as Record<string, unknown>;
    const type = Array.isArray(json.enum) ? (json.enum as unknown[]).map(String).join(' \\| ') : String(json.type ?? (json.anyOf ? 'union' : 'any'));
    rows.push({
      key: leaf.path.join('.'),
      env: envName(leaf.path),
      type,
      default: def === undefined ? '' : JSON.stringify(def),
      description: findDescription(leaf.path),
    });
  }
  return rows;
}

function findDescription(p: string[]): string {
  let cur: z.ZodType | undefined = configSchema;
  let desc = '';
  for (const seg of p) {
    const inner: z.ZodType | undefined = cur ? unwrap(cur) : undefined;
    cur = inner instanceof z.ZodObject ? (inner.shape as Record<string, z.ZodType>)[seg] : undefined;
    desc = cur?.description ?? '';
  }
  return desc;
}

/** docs/configuration.md: every key with its environment variable, type, default and meaning. */
export function configReferenceMarkdown(): string {
  const lines = [
    '# Configuration reference',
    '',
    'Generated from the zod schema in `server/config.ts` (`npm run docs`); do not edit by hand.',
    'One YAML or JSON file (`sipflow serve --config sipflow.yaml`, `sipflow config check sipflow.yaml`); every key',
    'is optional and the defaults are the embedded setup. Each key can be overridden by its environment variable',
    '(lists: comma-separated or JSON; objects and lists of objects: JSON).',
    '',
    '| key | environment | type | default | meaning |',
    '|---|---|---|---|---|',
  ];
  for (const r of configReference()) {
    lines.push(
      `| \`${r.key}\` | \`${r.env}\` | ${r.type} | ${r.default ? `\`${r.default.replace(/\|/g, '\\|')}\`` : ''} | ${r.description.replace(/\|/g, '\\|')} |`,
    );
  }
  return lines.join('\n');
}
