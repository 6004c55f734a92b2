/**
 * `sipflow serve` as a process (built CLI, `npm test` builds first): listens on a free port,
 * answers SIP, and exits cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import { UdpUa, sipRequest } from './ua';

const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');
const FLOWS = path.join(__dirname, 'fixtures');

test('serve: port 0 reported, OPTIONS and a relay-flow REGISTER answered, clean exit on SIGTERM', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-serve-'));
  let child: ChildProcess | null = null;
  try {
    child = spawn(process.execPath, [MAIN, 'serve', '--data-dir', dataDir, '--directory-url', 'memory://', '--location-url', 'memory',
      '--flows', FLOWS, '--sip-host', '127.0.0.1', '--sip-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr!.on('data', (b) => { out += b; });
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`not listening: ${out}`)), 60_000);
      child!.stdout!.on('data', (b) => {
        out += b;
        const m = /udp:(\d+)/.exec(out);
        if (m) { clearTimeout(t); resolve(Number(m[1])); }
      });
      child!.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(port).toBeGreaterThan(0);
    const ua = await UdpUa.open(port);
    try {
      ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
      expect((await ua.response()).status).toBe(200);
      // test-flows.slid has no `pbx`: the first logic (proxy-test) saves the REGISTER
      ua.send(sipRequest({ method: 'REGISTER', uri: 'sip:example.test', ua, from: '<sip:zed@example.test>', to: '<sip:zed@example.test>', headers: { Expires: '60' } }));
      expect((await ua.response()).status).toBe(200);
    } finally {
      await ua.close();
    }
    const code = await new Promise<number | null>((resolve) => { child!.once('exit', (c) => resolve(c)); child!.kill('SIGTERM'); });
    expect(code).toBe(0);
    child = null;
  } finally {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);
