/**
 * A server the tests start as a child process (dnsmasq, slapd): spawned, considered ready when a
 * line of its output says so, killed by PID (its own process only) when the suite is done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** A server binary by path: /usr/sbin is not on every user's PATH. */
export function sbin(name: string): string {
  const p = `/usr/sbin/${name}`;
  return fs.existsSync(p) ? p : name;
}

export interface Spawned {
  child: ChildProcess;
  /** Everything it printed (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after 2 s; resolves when it has exited. */
  stop(): Promise<void>;
}

/** Starts `command` and resolves once its output matches `ready`; rejects with its output when it exits first. */
export function spawnUntil(command: string, args: string[], ready: RegExp, what: string): Promise<Spawned> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned: Spawned = {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) {
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        // keep draining so a chatty server never blocks on a full pipe
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(spawned);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${out}`)));
  });
}
