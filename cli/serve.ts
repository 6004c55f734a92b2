/**
 * `sipflow serve`: loads the flows, opens the stores and listens for SIP on UDP and TCP.
 * Options override the configuration file (and its SIPFLOW_* environment overrides).
 */
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'fs';
import { ConfigError, envName, isoInstant, loadConfig, resolveConfigPath, sipListeners, tlsProblems, type Config, type ListenerEntry } from '../server/config';
import { shippedFlowsDir } from '../server/flows';
import { transportNamed } from '../sip/transports';
import { hardenDataDirs } from '../server/data-dir';
import { createLogger } from '../server/logger';
import { SHUTDOWN_DEADLINE_MS, SHUTDOWN_GRACE_MS, serve } from '../server/serve';
import { secretDirs } from './paths';

const portArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
};
const workersArg = (v: string) => {
  if (v === 'auto') return 'auto' as const;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be "auto" or a whole number ≥ 1');
  return n;
};

export interface ServeCliOptions {
  config?: string;
  flows?: string;
  dataDir?: string;
  directoryUrl?: string;
  locationUrl?: string;
  sipHost?: string;
  sipPort?: number;
  tlsPort?: number;
  tlsCert?: string;
  tlsKey?: string;
  wsPort?: number;
  wssPort?: number;
  domain?: string;
  workers?: 'auto' | number;
  recordRoute?: boolean;
  logLevel?: string;
  httpHost?: string;
  httpPort?: number;
  /** commander's `--no-http` */
  http?: boolean;
  now?: string;
}

/**
 * The configuration with command-line overrides applied. Path options (--flows, --data-dir,
 * --directory-url's data directory, --tls-cert, --tls-key) are relative to the working directory,
 * the configuration's to its file (server/config.ts loadConfig).
 */
export function serveConfig(o: ServeCliOptions, cwd: string = process.cwd()): Config {
  const c = loadConfig(o.config, process.env, cwd);
  const cli = (key: string, v: string | undefined) => (v === undefined ? undefined : resolveConfigPath(key, v, cwd));
  // --sip-host / --sip-port: every socket of the first listener (its entries share its name); --sip-port not its secure ones (--tls-port)
  const first = c.sip.listeners[0]?.name;
  // --sip-port moves the plain SIP sockets (default port 5060: UDP, TCP), not TLS or WebSocket ones
  const plainSip = (l: ListenerEntry) => l.transport === undefined || (transportNamed(l.transport)?.defaultPort ?? 5060) === 5060;
  let listeners = c.sip.listeners.map((l) => (l.name === first ? { ...l, host: o.sipHost ?? l.host, port: plainSip(l) ? (o.sipPort ?? l.port) : l.port } : l));
  // --tls-port / --ws-port / --wss-port: that socket of the first listener (its port replaced, or the socket added on the listener's host)
  for (const [transport, port] of [['tls', o.tlsPort] as const, ['ws', o.wsPort] as const, ['wss', o.wssPort] as const]) {
    if (port === undefined) continue;
    const has = listeners.some((l) => l.name === first && l.transport === transport);
    listeners = has
      ? listeners.map((l) => (l.name === first && l.transport === transport ? { ...l, port } : l))
      : [...listeners, { name: first ?? 'default', transport, host: listeners[0]?.host ?? '0.0.0.0', port }];
  }
  const tls = {
    ...c.sip.tls,
    certFile: cli('sip.tls.certFile', o.tlsCert) ?? c.sip.tls.certFile,
    keyFile: cli('sip.tls.keyFile', o.tlsKey) ?? c.sip.tls.keyFile,
  };
  // the configuration file was checked; the command line adds to it: a TLS or WSS socket needs its certificate
  const problems = tlsProblems(sipListeners(listeners), tls);
  const now = o.now === undefined ? undefined : isoInstant.safeParse(o.now);
  if (now?.success === false) problems.push(`--now "${o.now}": ${now.error.issues[0].message}`);
  const flows = flowsSource(o, c, cli('flows', o.flows));
  if (flows.problem) problems.push(flows.problem);
  if (problems.length > 0) throw new ConfigError(problems, 'command line');
  return {
    ...c,
    flows: flows.path,
    dataDir: cli('dataDir', o.dataDir) ?? c.dataDir,
    directory: { ...c.directory, url: cli('directory.url', o.directoryUrl) ?? c.directory.url },
    location: { ...c.location, url: o.locationUrl ?? c.location.url },
    sip: {
      ...c.sip,
      listeners,
      domain: o.domain ?? c.sip.domain,
      workers: o.workers ?? c.sip.workers,
      recordRoute: o.recordRoute ?? c.sip.recordRoute,
      tls,
    },
    http: { ...c.http, host: o.httpHost ?? c.http.host, port: o.httpPort ?? c.http.port, enabled: o.http === false ? false : c.http.enabled },
    log: { level: (o.logLevel as Config['log']['level']) ?? c.log.level },
    nodes: { ...c.nodes, now: o.now ?? c.nodes.now },
  };
}

/**
 * The flows folder (or file) a start imports: --flows, else the configuration's `flows` (its file
 * or SIPFLOW_FLOWS), else the shipped one. One given that does not exist is a problem naming where
 * it was given and the path it resolved to: the start stops there, not on an ENOENT later.
 */
function flowsSource(o: ServeCliOptions, c: Config, option: string | undefined): { path: string; problem?: string } {
  const given = option ?? c.flows;
  if (given === undefined) return { path: shippedFlowsDir() };
  if (existsSync(given)) return { path: given };
  const where =
    option !== undefined
      ? `--flows ${o.flows}`
      : process.env[envName(['flows'])] !== undefined
        ? `${envName(['flows'])}=${process.env[envName(['flows'])]}`
        : `flows in ${o.config}`;
  return { path: given, problem: `${where}: ${given} does not exist (a .slid file or a folder of them; leave it out for the shipped flows)` };
}

/** What keeps the event loop alive (`{ TCPSocketWrap: 2, Timeout: 1 }`), for the shutdown log lines. */
function openResources(): Record<string, number> {
  const open: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) open[r] = (open[r] ?? 0) + 1;
  return open;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the SIP registrar/proxy: flows/*.slid on UDP and TCP (default port 5060)')
    .option('--config <file>', 'YAML or JSON configuration')
    .option('--flows <dir|file>', 'a .slid file or a folder of them, imported at start (default: the shipped flows)')
    .option('--data-dir <dir>', 'embedded data directory (PGlite, nonce secret)')
    .option('--directory-url <url>', 'directory: PGlite dir, memory://, or postgres://…')
    .option('--location-url <url>', 'location service: sql, memory, postgres://… or mongodb://…')
    .option('--sip-host <host>', 'address to bind, every socket of the first listener (default 0.0.0.0)')
    .option('--sip-port <port>', 'SIP port of every socket of the first listener, UDP and TCP (default 5060; 0 = any free port)', portArg)
    .option(
      '--tls-port <port>',
      "SIP over TLS on this port beside UDP and TCP (the first listener's host; 5061 is the usual; 0 = any free port); needs --tls-cert and --tls-key",
      portArg,
    )
    .option('--ws-port <port>', 'add a SIP over WebSocket (ws) socket on this port to the first listener', portArg)
    .option('--wss-port <port>', 'add a SIP over secure WebSocket (wss) socket on this port to the first listener (needs --tls-cert/--tls-key)', portArg)
    .option('--tls-cert <file>', 'PEM certificate chain of the TLS and WSS listeners (sip.tls.certFile)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (sip.tls.keyFile)')
    .option('--domain <domain>', 'registrar domain = digest realm (default: the From host)')
    .option('--workers <n>', 'SIP worker threads: "auto" (one per core) or N (1 = no worker threads)', workersArg)
    .option('--record-route', 'add Record-Route to relayed dialog-creating requests')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--http-host <host>', 'HTTP API address (default 127.0.0.1)')
    .option('--http-port <port>', 'HTTP API port (default 8080; 0 = any free port)', portArg)
    .option('--no-http', 'do not start the HTTP API')
    .option('--now <instant>', "try the service at an instant: the date and time nodes' clock starts there (ISO-8601 with offset; nodes.now)")
    .action(async (o: ServeCliOptions) => {
      const config = serveConfig(o);
      const logger = createLogger({ level: config.log.level });
      // umask 0o077, and the data dir (+ a PGlite directory elsewhere) made private: one warning if it was not
      hardenDataDirs(secretDirs(config.dataDir, config.directory.url), (message, fields) => logger.warn(fields, message));
      const handle = await serve({
        config,
        logger,
        onListening: (info) => {
          // PGlite created its files with explicit modes (0666, 0644) whatever the umask: tighten
          // them now it is open (they sat in a 0700 folder meanwhile); not a finding, so debug only
          hardenDataDirs(secretDirs(config.dataDir, config.directory.url), (message, fields) =>
            logger.debug(fields, `${message} (written by PGlite at start)`),
          );
          for (const l of info) {
            logger.info({ listener: l.name, host: l.host, sockets: l.sockets, udpPort: l.udpPort, tcpPort: l.tcpPort, workers: l.workers }, 'SIP listening');
            // one plain line for scripts and tests (port 0 → the bound port): `udp:5060 tcp:5060`, `transport:host:port` for a socket on another address
            const sockets = l.sockets.map((s) => (s.host === l.host ? `${s.transport}:${s.port}` : `${s.transport}:${s.host}:${s.port}`)).join(' ');
            console.log(`sipflow: SIP ${l.name} listening on ${l.host} ${sockets} (${l.workers} SIP thread${l.workers > 1 ? 's' : ''})`);
          }
          const httpPort = info[0]?.httpPort;
          if (httpPort !== undefined) {
            console.log(
              `sipflow: HTTP API on http://${config.http.host}:${httpPort}/api/v1 (designer: /designer; bearer token in ${config.http.token ? 'the configuration' : `${config.dataDir}/api-token`})`,
            );
          }
        },
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          const started = Date.now();
          logger.info({ signal, graceMs: SHUTDOWN_GRACE_MS }, 'shutting down');
          // Last resort: whatever still runs (a store that does not answer, a thread that does not
          // stop), the process exits at the deadline, saying what was still open. Unref'd: it only
          // fires when something else keeps the process alive.
          setTimeout(() => {
            logger.error(
              { signal, ms: Date.now() - started, open: openResources() },
              `shutdown not finished within ${SHUTDOWN_DEADLINE_MS} ms: exiting anyway`,
            );
            process.exit(1);
          }, SHUTDOWN_DEADLINE_MS).unref();
          const stopped = () => {
            logger.info({ ms: Date.now() - started }, 'stopped');
            // Everything is closed: the event loop should be empty now; a handle left open (a
            // timer or socket of a library) must not keep the process alive.
            setTimeout(() => {
              logger.warn({ open: openResources() }, 'still open after shutdown: exiting');
              process.exit();
            }, 500).unref();
            resolve();
          };
          void handle.stop().then(stopped, (e) => {
            logger.error({ err: e, ms: Date.now() - started }, 'shutdown failed: exiting');
            process.exit(1);
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
