/**
 * A real Kamailio for tests: installed by the project's script when missing (never skipped), started
 * on a free UDP port of 127.0.0.1 with a test's config, and ready once it answers OPTIONS with the
 * config's `Keepalive` reply (every config under test/ and examples/kamailio answers so).
 *
 * Used by test/e2e/kamailio (Kamailio invoking sipflow over HTTP) and
 * test/integration/location/kamailio-written.test.ts (Kamailio writing the shared location).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UdpUa, sipRequest } from '../integration/sip/ua';
import { freeUdpPort } from './sipp';

const INSTALL = path.resolve(__dirname, '../../scripts/install-system-deps.sh');
const MODULES = ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules'];
const hasModule = (m: string) => MODULES.some((d) => existsSync(path.join(d, m)));
const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Kamailio with these modules (`db_mongodb.so` …) and these commands, else the install script for `deps`. */
export function ensureKamailio(o: { modules: string[]; commands?: string[]; deps?: string }): void {
  if (onPath('kamailio') && (o.commands ?? []).every(onPath) && o.modules.every(hasModule)) return;
  const r = spawnSync('bash', [INSTALL], { env: { ...process.env, SIPFLOW_SYSTEM_DEPS: o.deps ?? 'kamailio' }, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`scripts/install-system-deps.sh failed (${r.status}): ${r.stderr || r.stdout}`);
}

export interface Kamailio {
  proc: ChildProcess;
  port: number;
  /** Everything it wrote to stdout and stderr so far. */
  log(): string;
  /** SIGTERM, SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/**
 * Starts Kamailio on `cfg` (`-DD -E`, 32 MB shared, 8 MB private, working dir `dir`) with
 * `LISTEN=udp:127.0.0.1:<free port>` and each of `defines` as `-A`; resolves once it answers
 * OPTIONS, else rejects within 15 s with its log.
 */
export async function startKamailio(o: { cfg: string; dir: string; defines: string[] }): Promise<Kamailio> {
  const port = await freeUdpPort('127.0.0.1');
  const args = ['-f', o.cfg, '-DD', '-E', '-m', '32', '-M', '8', '-w', o.dir, '-A', `LISTEN=udp:127.0.0.1:${port}`];
  for (const d of o.defines) args.push('-A', d);
  const proc = spawn('kamailio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  let exited: string | null = null;
  proc.on('exit', (code, sig) => (exited = `exited (code ${code}, signal ${sig})`));
  proc.on('error', (e) => (exited = `could not start: ${e.message}`));
  const k: Kamailio = {
    proc,
    port,
    log: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    },
  };
  const ua = await UdpUa.open(port);
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited) throw new Error(`Kamailio ${exited}:\n${out.slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`Kamailio did not answer OPTIONS on udp:127.0.0.1:${port} within 15 s:\n${out.slice(-4000)}`);
      ua.send(sipRequest({ method: 'OPTIONS', uri: `sip:127.0.0.1:${port}`, ua, contact: null }));
      try {
        if ((await ua.response(200, 300)).reason === 'Keepalive') break;
      } catch {
        /* not up yet */
      }
    }
  } catch (e) {
    await k.stop();
    throw e;
  } finally {
    await ua.close();
  }
  return k;
}
