/**
 * Operator traps of `sipflow serve` (the built CLI, spawned as an operator runs it): started from
 * another directory with the configuration elsewhere it finds its flows (the shipped ones by
 * default, the configuration's relative to its file); an edited flow file on a later start is
 * imported as a release and said in the log; a flows folder that does not exist stops the start
 * with one line naming it; a Kamailio DBURL's slaveOk is dropped with a log line.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mongoUrl } from '../../setup/servers';
import { SHIPPED_FLOWS, startServe } from '../../support/serve';

jest.setTimeout(180_000);

const tmp = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), prefix));
/** pino writes asynchronously: a line logged before "listening" may arrive just after it. */
async function outputWith(s: Awaited<ReturnType<typeof startServe>>, text: string, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  while (!s.output().includes(text) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return s.output();
}
const flowsOf = async (s: Awaited<ReturnType<typeof startServe>>) =>
  ((await (await s.api('/api/v1/flows')).json()) as { flows: Array<{ name: string; latestVersion: number; activeVersion: number }> }).flows;

test('from another directory, no --flows: the shipped flows are imported and active (no ENOENT on flows)', async () => {
  const cwd = tmp('sipflow-cwd-');
  const s = await startServe({ cwd, flows: null, directoryUrl: 'data', workers: 1 });
  try {
    const flows = await flowsOf(s);
    expect(flows.map((f) => f.name)).toEqual(['call-screening', 'incoming-call', 'outgoing-call', 'pbx', 'registration', 'routing']);
    expect(flows.every((f) => f.activeVersion === 1)).toBe(true);
  } finally {
    await s.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('flows relative to a config file elsewhere; an edited file on the next start: a release not active, and a log line saying how to activate it', async () => {
  const cwd = tmp('sipflow-cwd-');
  const etc = tmp('sipflow-etc-');
  const dataDir = tmp('sipflow-data-');
  mkdirSync(path.join(etc, 'myflows'));
  for (const f of ['pbx.slid', 'registration.slid']) cpSync(path.join(SHIPPED_FLOWS, f), path.join(etc, 'myflows', f));
  const config = path.join(etc, 'sipflow.yaml');
  writeFileSync(config, 'flows: myflows\n');
  const spec = { cwd, dataDir, flows: null, directoryUrl: 'data', workers: 1, args: ['--config', config] };
  try {
    const first = await startServe(spec);
    try {
      expect((await flowsOf(first)).map((f) => [f.name, f.activeVersion])).toEqual([
        ['pbx', 1],
        ['registration', 1],
      ]);
    } finally {
      await first.stop();
    }
    const pbx = path.join(etc, 'myflows', 'pbx.slid');
    writeFileSync(pbx, JSON.stringify(JSON.parse(readFileSync(pbx, 'utf8')), null, 4));
    const second = await startServe(spec);
    try {
      const line = `flows: ${pbx} differs from every release of flow \\"pbx\\": imported as release 2, not active (release 1 stays active); activate it in the designer (Releases) or with POST /api/v1/flows/pbx/releases/2/activate`;
      expect(await outputWith(second, line)).toContain(line);
      expect((await flowsOf(second)).find((f) => f.name === 'pbx')).toMatchObject({ latestVersion: 2, activeVersion: 1 });
    } finally {
      await second.stop();
    }
  } finally {
    for (const d of [cwd, etc, dataDir]) rmSync(d, { recursive: true, force: true });
  }
});

test('a flows folder that does not exist: exit 1 with one line naming the option and the resolved path, no stack', async () => {
  const cwd = tmp('sipflow-cwd-');
  try {
    const err = await startServe({ cwd, flows: 'no-such-flows', workers: 1 }).then(
      (s) => s.stop().then(() => null),
      (e: Error) => e,
    );
    expect(err?.message).toContain('exited 1');
    expect(err?.message).toContain(`--flows no-such-flows: ${path.join(cwd, 'no-such-flows')} does not exist`);
    expect(err?.message).not.toMatch(/ENOENT|\n\s+at /);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('a MongoDB location URL with slaveOk (a Kamailio DBURL): dropped, with a log line, and the instance starts', async () => {
  const base = new URL(mongoUrl());
  base.pathname = `/slaveok_${process.pid}`;
  base.searchParams.set('slaveOk', 'true');
  const s = await startServe({ locationUrl: base.toString(), workers: 1 });
  try {
    const line = 'location.url: dropped legacy slaveOk from the MongoDB URL (the Node driver rejects it); using readPreference=primaryPreferred';
    expect(await outputWith(s, line)).toContain(line);
    expect((await s.api('/api/v1/flows')).status).toBe(200);
  } finally {
    await s.stop();
  }
});
