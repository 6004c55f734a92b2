/**
 * `sipflow serve` as a process (built CLI, `npm test` builds first): listens on a free port,
 * answers SIP, and exits cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import { UdpUa, sipRequest } from './ua';

const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');
const FLOWS = path.join(__dirname, 'fixtures');

test('serve: port 0 reported, OPTIONS and a relay-flow REGISTER answered, clean exit on SIGTERM', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-serve-'));
  let child: ChildProcess | null = null;
  try {
    child = spawn(
      process.execPath,
      [
        MAIN,
        'serve',
        '--data-dir',
        dataDir,
        '--directory-url',
        'memory://',
        '--location-url',
        'memory',
        '--flows',
        FLOWS,
        '--sip-host',
        '127.0.0.1',
        '--sip-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--http-port',
        '0',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stderr!.on('data', (b) => {
      out += b;
    });
    let httpPort = 0;
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`not listening: ${out}`)), 60_000);
      child!.stdout!.on('data', (b) => {
        out += b;
        const m = /udp:(\d+)/.exec(out);
        const h = /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m && h) {
          clearTimeout(t);
          httpPort = Number(h[1]);
          resolve(Number(m[1]));
        }
      });
      child!.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(port).toBeGreaterThan(0);
    const ua = await UdpUa.open(port);
    try {
      ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
      expect((await ua.response()).status).toBe(200);
      // test-flows.slid has no `pbx`: the first logic (proxy-test) saves the REGISTER
      ua.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua,
          from: '<sip:zed@example.test>',
          to: '<sip:zed@example.test>',
          headers: { Expires: '60' },
        }),
      );
      expect((await ua.response()).status).toBe(200);

      // a release activated over the HTTP API changes what the running server does for the next REGISTER
      const api = `http://127.0.0.1:${httpPort}/api/v1`;
      const auth = { authorization: `Bearer ${readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim()}` };
      const flows = (await (await fetch(`${api}/flows`, { headers: auth })).json()) as { flows?: Array<{ name: string }> } | Array<{ name: string }>;
      const name = (Array.isArray(flows) ? flows : (flows.flows ?? []))[0]?.name;
      expect(name).toBe('test-flows');
      const source = JSON.parse(readFileSync(path.join(FLOWS, 'test-flows.slid'), 'utf8'));
      const [firstId] = Object.keys(source);
      source[firstId].nodes = {
        0: { id: 0, name: 'Start', type: 'enter.start', values: { next: 1 }, x: 0, y: 0 },
        1: { id: 1, name: 'closed', type: 'output.reply', values: { code: 403, reason: 'Closed For Maintenance' }, x: 200, y: 0 },
      };
      const saved = await fetch(`${api}/flows/${name}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(source),
      });
      expect(saved.status).toBeLessThan(300);
      const release = await fetch(`${api}/flows/${name}/releases`, { method: 'POST', headers: auth });
      expect(release.status).toBe(201);
      const { version } = (await release.json()) as { version: number };
      const activated = await fetch(`${api}/flows/${name}/releases/${version}/activate`, { method: 'POST', headers: auth });
      expect(activated.status).toBeLessThan(300);
      ua.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua,
          from: '<sip:zed@example.test>',
          to: '<sip:zed@example.test>',
          headers: { Expires: '60' },
        }),
      );
      const after = await ua.response();
      expect(after.status).toBe(403);
      expect(after.reason).toBe('Closed For Maintenance');
    } finally {
      await ua.close();
    }
    const code = await new Promise<number | null>((resolve) => {
      child!.once('exit', (c) => resolve(c));
      child!.kill('SIGTERM');
    });
    expect(code).toBe(0);
    child = null;
  } finally {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);
