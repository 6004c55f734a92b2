/**
 * Node plug-ins end to end: a real `sipflow serve` (dispatcher + 2 SIP worker threads) with
 * `nodes.plugins: [examples/node-plugin]` runs a flow using `example.hashValue` for SIP requests
 * (each worker thread loaded the plug-in from the configuration it received), the node-types API
 * lists it for the designer's palette, the simulator compiles it, and the CLI's `docs nodes` and
 * `validate` take it with `--config`. A plug-in that cannot be used refuses the start.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header } from '../../sip/message';
import { startServe, type ServeProcess } from '../support/serve';
import { UdpUa, rand, sipRequest } from './sip/ua';
import { runCli as sipflow } from '../support/cli';

const EXAMPLE = path.resolve(__dirname, '../../examples/node-plugin');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The logic `hashing`: the caller's user part hashed by the plug-in, answered 480 with the digest in a header. */
const HASHING = {
  1: {
    name: 'hashing',
    description: '',
    nodes: {
      0: { id: 0, name: 'start', type: 'enter.start', description: '', values: { next: 1 }, archived: false, x: 0, y: 0 },
      1: {
        id: 1,
        name: 'hash caller',
        type: 'example.hashValue',
        description: '',
        values: { value: 'fromUsername', storeInto: 'callerHash', next: 2, ifTooLong: 2 },
        archived: false,
        x: 0,
        y: 0,
      },
      2: {
        id: 2,
        name: 'answer',
        type: 'output.reply',
        description: '',
        values: { code: 480, headers: { 'X-Caller-Hash': '[callerHash]' } },
        archived: false,
        x: 0,
        y: 0,
      },
    },
  },
};

let dir: string;
let flowFile: string;
let configFile: string;
let server: ServeProcess;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-plugin-it-'));
  flowFile = path.join(dir, 'hashing.slid');
  writeFileSync(flowFile, JSON.stringify(HASHING));
  // relative to the config file, as an operator writes it
  configFile = path.join(dir, 'sipflow.yaml');
  writeFileSync(configFile, `nodes:\n  plugins: [${path.relative(dir, EXAMPLE)}]\n`);
  server = await startServe({ flows: flowFile, workers: 2, config: { defaultLogic: 'hashing', nodes: { plugins: [EXAMPLE] } } });
}, 90_000);

afterAll(async () => {
  const stopped = await server?.stop();
  expect(stopped?.code).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('sipflow serve with nodes.plugins: [examples/node-plugin]', () => {
  test('logs the plug-in it loaded', () => {
    expect(server.output()).toContain('node plug-in loaded');
    expect(server.output()).toContain('example.hashValue');
  });

  test("the plug-in's node runs for SIP requests in the SIP worker threads", async () => {
    const ua = await UdpUa.open(server.sipPort);
    try {
      // several Call-IDs: the dispatcher spreads them over both workers
      for (const user of ['alice', 'bob', 'carol', 'dave']) {
        ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:service@127.0.0.1', ua, callId: `${rand()}@test`, from: `<sip:${user}@example.test>` }));
        const res = await ua.response();
        expect(res.status).toBe(480);
        expect(header(res, 'x-caller-hash')).toBe(sha256(user));
      }
    } finally {
      await ua.close();
    }
  });

  test('the node-types API lists it for the palette, with its schema', async () => {
    const r = await server.api('/api/v1/node-types');
    expect(r.status).toBe(200);
    const types = (await r.json()) as Array<{ type: string; category: string; title: string; valuesSchema: { properties: Record<string, unknown> } }>;
    const hash = types.find((t) => t.type === 'example.hashValue');
    expect(hash).toMatchObject({ title: 'Hash a value', category: 'manipulation' });
    expect(Object.keys(hash!.valuesSchema.properties)).toEqual(['value', 'algorithm', 'encoding', 'truncate', 'storeInto', 'next', 'ifTooLong']);
    expect(types.map((t) => t.type)).toContain('action.setVariables');
  });

  test('the simulator and flow validation compile it; its check() problems come back located', async () => {
    const sim = await server.api('/api/v1/simulate', {
      method: 'POST',
      body: JSON.stringify({ slid: HASHING, logic: 'hashing', cd: { fromUsername: 'erin' } }),
      headers: { 'content-type': 'application/json' },
    });
    expect(sim.status).toBe(200);
    const body = (await sim.json()) as { outcome: { status: number; headers: Record<string, string> } };
    expect(body.outcome).toMatchObject({ status: 480, headers: { 'X-Caller-Hash': sha256('erin') } });

    const bad = structuredClone(HASHING) as unknown as { 1: { nodes: { 1: { values: Record<string, unknown> } } } };
    bad[1].nodes[1].values.truncate = 99;
    const refused = await server.api('/api/v1/simulate', {
      method: 'POST',
      body: JSON.stringify({ slid: bad, logic: 'hashing', cd: {} }),
      headers: { 'content-type': 'application/json' },
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain('is longer than a sha256 hex digest (64 characters)');
  });
});

describe('the CLI with --config', () => {
  test('docs nodes lists the plug-in node, naming its plug-in; without --config only the built-ins', async () => {
    const withPlugins = await sipflow('docs', 'nodes', '--config', configFile);
    expect(withPlugins.code).toBe(0);
    expect(withPlugins.out).toContain('## Hash a value — `example.hashValue`');
    expect(withPlugins.out).toContain(`Category: manipulation. Plug-in: \`${EXAMPLE}\`.`);
    expect(withPlugins.out).toContain('| `storeInto` | string | yes | variable that receives the digest; names a variable this node writes |');
    const builtins = await sipflow('docs', 'nodes');
    expect(builtins.out).not.toContain('example.hashValue');
  });

  test('validate knows the plug-in node with --config, and names the unknown type without', async () => {
    const ok = await sipflow('validate', '--config', configFile, flowFile);
    expect(ok.out).toContain('1 file(s): 0 error(s), 0 warning(s)');
    expect(ok.code).toBe(0);
    const unknown = await sipflow('validate', flowFile);
    expect(unknown.out).toContain('hashing.slid › logic 1 "hashing" › node 1 "hash caller" › type: unknown node type "example.hashValue"');
    expect(unknown.code).toBe(1);
  });

  test('a plug-in that cannot be used: the command refuses with the plug-in and the problem; config check finds it', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'nodes:\n  plugins: [./missing-plugin]\n');
    const missing = path.join(dir, 'missing-plugin');
    const r = await sipflow('docs', 'nodes', '--config', bad);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`sipflow: nodes.plugins: plug-in "${missing}": ${missing} does not exist`);
    const check = await sipflow('config', 'check', bad);
    expect(check.code).toBe(1);
    expect(check.err).toBe(`nodes.plugins: plug-in "${missing}": ${missing} does not exist`);
    const good = await sipflow('config', 'check', configFile);
    expect(good.code).toBe(0);
    expect(good.out).toContain('plug-in node types example.hashValue');
  });
});

test('sipflow serve refuses to start with a plug-in that reuses a built-in type, naming it', async () => {
  const pluginDir = path.join(dir, 'overrides-reply');
  mkdirSync(pluginDir);
  writeFileSync(
    path.join(pluginDir, 'index.js'),
    `module.exports = { nodeTypes: [{ type: 'output.reply', title: 'Reply', category: 'output', description: 'always 200',
      valuesSchema: { type: 'object' }, compile: () => () => ({ finish: { kind: 'reply', status: 200, reason: 'OK' } }) }] };`,
  );
  await expect(startServe({ workers: 2, config: { nodes: { plugins: [pluginDir] } } })).rejects.toThrow(
    `nodes.plugins: plug-in "${pluginDir}": node type "output.reply": is a built-in node type; a plug-in cannot replace it`,
  );
}, 60_000);
