/**
 * Node plug-ins (server/node-plugins.ts): the example package loads and its node runs; every way
 * a plug-in can be unusable refuses with an error naming the plug-in and the problem; a plug-in
 * node whose check, compile or run throws is a located problem or a located 500, never a crash.
 * Plug-ins under test are written to a temporary folder (CommonJS, as a user writes them).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatProblem, loadSlid } from '../../engine/load';
import { runLogic } from '../../engine/run';
import { builtinRegistry } from '../../nodes';
import { isPluginPackageName, loadConfig } from '../../server/config';
import { loadNodePlugins, nodeRegistry, PluginError, registryOf } from '../../server/node-plugins';
import { testContext } from '../support/context';
import { cdOf, docOf, start, type NodeSpec } from './engine/helpers';

const EXAMPLE = path.resolve(__dirname, '../../examples/node-plugin');
let tmp: string;

/** A plug-in folder `name` whose index.js is `source`; returns its path. */
function plugin(name: string, source: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'index.js'), source);
  return dir;
}

/** A node type's source with `extra` members merged over a valid declaration. */
const declared = (extra = '') => `{
  type: 'acme.ok', title: 'OK', category: 'action', description: 'does nothing',
  valuesSchema: { type: 'object', properties: { next: { type: ['integer', 'string', 'null'], 'x-exit': true } } },
  compile: (values, c) => { const next = c.exit('next'); return () => next; },
  ${extra}
}`;
const exporting = (...types: string[]) => `module.exports = { nodeTypes: [${types.join(', ')}] };`;

const refusal = (spec: string): string => {
  try {
    loadNodePlugins([spec]);
  } catch (e) {
    expect(e).toBeInstanceOf(PluginError);
    return (e as Error).message;
  }
  throw new Error(`plug-in ${spec} was accepted`);
};

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sipflow-plugins-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the example plug-in (examples/node-plugin)', () => {
  const registry = nodeRegistry([EXAMPLE]);
  const hashNode = (values: Record<string, unknown>): NodeSpec => [1, 'example.hashValue', { storeInto: 'digest', next: 2, ifTooLong: 2, ...values }];
  const exitNode: NodeSpec = [2, 'exit.return', {}];

  test('adds example.hashValue to the built-in node types', () => {
    const types = registry.list().map((t) => t.type);
    expect(types).toContain('example.hashValue');
    for (const t of builtinRegistry().list()) expect(types).toContain(t.type);
    expect(registry.get('example.hashValue')?.category).toBe('manipulation');
  });

  test('its node runs: the digest of a [var] template lands in the variable named by storeInto', async () => {
    const r = loadSlid(docOf([start(1), hashNode({ value: '[fromUsername]@[requestURI]' }), exitNode]), 'hash.slid', registry);
    expect(r.problems.map(formatProblem)).toEqual([]);
    const result = await runLogic(r.service!, '1', cdOf({ fromUsername: 'alice', requestURI: 'sip:bob@example.com' }), testContext(), { trace: true });
    expect(result.cd.vars.digest).toBe(createHash('sha256').update('alice@sip:bob@example.com').digest('hex'));
    // the variable it writes is known to the logic and shows in the trace
    expect(JSON.stringify(result.trace)).toContain('digest');
  });

  test('an oversized value takes ifTooLong with the variable emptied (explicit limit)', async () => {
    const doc = docOf([start(1), hashNode({ value: 'requestURI', ifTooLong: 3 }), exitNode, [3, 'output.reply', { code: 413 }]]);
    const r = loadSlid(doc, 'hash.slid', registry);
    const result = await runLogic(r.service!, '1', cdOf({ requestURI: `sip:${'x'.repeat(65537)}@example.com` }), testContext());
    expect(result.outcome).toMatchObject({ status: 413 });
    expect(result.cd.vars.digest).toBe('');
  });

  test('its check() and schema give located problems', () => {
    const r = loadSlid(docOf([start(1), hashNode({ value: 'x', truncate: 100 }), [2, 'exit.return', {}]]), 'hash.slid', registry);
    expect(r.problems.map(formatProblem)).toEqual([
      'hash.slid › logic 1 "test" › node 1 "n1" › values/truncate: is longer than a sha256 hex digest (64 characters)',
    ]);
    const bad = loadSlid(docOf([start(1), hashNode({ value: 'x', algorithm: 'md5' }), exitNode]), 'hash.slid', registry);
    expect(bad.problems.map(formatProblem)).toEqual(['hash.slid › logic 1 "test" › node 1 "n1" › values/algorithm: must be one of "sha256", "sha512"']);
  });

  test('without the plug-in the same flow names the unknown type', () => {
    const r = loadSlid(docOf([start(1), hashNode({ value: 'x' }), exitNode]), 'hash.slid', builtinRegistry());
    expect(r.problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([
      'hash.slid › logic 1 "test" › node 1 "n1" › type: unknown node type "example.hashValue"',
    ]);
  });
});

describe('a plug-in that cannot be used refuses the start, naming the plug-in and the problem', () => {
  test('its module throws while loading', () => {
    const dir = plugin('throws', "throw new Error('missing licence key');");
    expect(refusal(dir)).toBe(`nodes.plugins: plug-in "${dir}": failed to load ${path.join(dir, 'index.js')}: missing licence key`);
  });

  test('its folder does not exist; its package is not installed; its folder has nothing to load', () => {
    const gone = path.join(tmp, 'nowhere');
    expect(refusal(gone)).toBe(`nodes.plugins: plug-in "${gone}": ${gone} does not exist`);
    expect(refusal('sipflow-no-such-plugin')).toMatch(/^nodes\.plugins: plug-in "sipflow-no-such-plugin": npm package not found from /);
    const empty = path.join(tmp, 'empty-folder');
    mkdirSync(empty);
    expect(refusal(empty)).toMatch(new RegExp(`^nodes\\.plugins: plug-in "${empty}": ${empty} has no module to load`));
  });

  test('it exports something that is not a list of node types', () => {
    const none = plugin('no-export', 'module.exports = { hashValue: {} };');
    expect(refusal(none)).toBe(
      `nodes.plugins: plug-in "${none}": exports no node types (module.exports.nodeTypes, or the default export, must be a list of node types)`,
    );
    const empty = plugin('empty-list', 'module.exports = { nodeTypes: [] };');
    expect(refusal(empty)).toBe(`nodes.plugins: plug-in "${empty}": exports an empty list of node types`);
    const notType = plugin('not-a-type', exporting(declared(), "'acme.other'"));
    expect(refusal(notType)).toBe(
      `nodes.plugins: plug-in "${notType}": nodeTypes[1] is not a node type (an object with type, title, category, description, valuesSchema and compile)`,
    );
    const noCompile = plugin('no-compile', exporting(declared('compile: undefined')));
    expect(refusal(noCompile)).toBe(`nodes.plugins: plug-in "${noCompile}": node type "acme.ok": compile must be a function (values, context) → run function`);
  });

  test('it declares members outside the contract (exits, authenticates)', () => {
    const dir = plugin('extra-members', exporting(declared('authenticates: true, exits: () => []')));
    expect(refusal(dir)).toMatch(
      new RegExp(`^nodes\\.plugins: plug-in "${dir}": node type "acme\\.ok": unknown member\\(s\\) authenticates, exits \\(a plug-in declares`),
    );
  });

  test('it reuses a built-in type string, or a namespace of the built-in types', () => {
    const builtin = plugin('builtin', exporting(declared("type: 'action.setVariables'")));
    expect(refusal(builtin)).toBe(`nodes.plugins: plug-in "${builtin}": node type "action.setVariables": is a built-in node type; a plug-in cannot replace it`);
    const start = plugin('start', exporting(declared("type: 'enter.start'")));
    expect(refusal(start)).toContain('node type "enter.start": is a built-in node type');
    const ns = plugin('namespace', exporting(declared("type: 'action.hash'")));
    expect(refusal(ns)).toBe(
      `nodes.plugins: plug-in "${ns}": node type "action.hash": namespace "action" is reserved for built-in node types (use your own, e.g. acme.hash)`,
    );
  });

  test('its type string is not namespace.name', () => {
    for (const [i, type] of ['hashValue', 'acme.hash.value', 'Acme.hash', 'acme.', 'acme.hash value'].entries()) {
      const dir = plugin(`form-${i}`, exporting(declared(`type: ${JSON.stringify(type)}`)));
      expect(refusal(dir)).toBe(
        `nodes.plugins: plug-in "${dir}": node type "${type}": type is not in namespace.name form (letters and digits, e.g. acme.lookupRoute)`,
      );
    }
  });

  test('its category is unknown', () => {
    const dir = plugin('category', exporting(declared("category: 'misc'")));
    expect(refusal(dir)).toBe(
      `nodes.plugins: plug-in "${dir}": node type "acme.ok": category "misc" is not one of start, analysis, time, query, cache, registrar, manipulation, list, action, output, flow`,
    );
  });

  test('its valuesSchema is not a valid JSON Schema (ajv strict) or not an object schema', () => {
    const typo = plugin('schema-typo', exporting(declared("valuesSchema: { type: 'object', properties: { a: { type: 'string', minLenght: 1 } } }")));
    expect(refusal(typo)).toBe(
      `nodes.plugins: plug-in "${typo}": node type "acme.ok": valuesSchema is not a valid JSON Schema (ajv, strict mode): strict mode: unknown keyword: "minLenght"`,
    );
    const badType = plugin('schema-type', exporting(declared("valuesSchema: { type: 'object', properties: { a: { type: 'text' } } }")));
    expect(refusal(badType)).toMatch(/valuesSchema is not a valid JSON Schema \(ajv, strict mode\): schema is invalid: data\/properties\/a\/type/);
    const notObject = plugin('schema-string', exporting(declared("valuesSchema: { type: 'string' }")));
    expect(refusal(notObject)).toBe(
      `nodes.plugins: plug-in "${notObject}": node type "acme.ok": valuesSchema must be the JSON Schema of an object ({ type: "object", properties: … })`,
    );
  });

  test('two plug-ins (or one, twice) declare the same type', () => {
    const a = plugin('dup-a', exporting(declared()));
    const b = plugin('dup-b', exporting(declared()));
    expect(() => loadNodePlugins([a, b])).toThrow(`nodes.plugins: plug-in "${b}": node type "acme.ok" is also declared by plug-in "${a}"`);
    const twice = plugin('dup-self', exporting(declared(), declared()));
    expect(refusal(twice)).toBe(`nodes.plugins: plug-in "${twice}": node type "acme.ok" is also declared by this plug-in`);
  });

  test('schemas valid alone that clash together (one $id twice) refuse the registry, naming the plug-ins', () => {
    const schema = "valuesSchema: { $id: 'https://acme.example/values', type: 'object' }";
    const a = plugin('id-a', exporting(declared(`type: 'acme.a', ${schema}`)));
    const b = plugin('id-b', exporting(declared(`type: 'acme.b', ${schema}`)));
    expect(() => nodeRegistry([a, b])).toThrow(
      `nodes.plugins: plug-in "${a}", "${b}": the node types do not load together: schema with key or id "https://acme.example/values" already exists`,
    );
  });
});

describe('where plug-ins come from', () => {
  test('an npm package name resolves from the working directory given; a default export is accepted', () => {
    const project = path.join(tmp, 'project');
    const pkg = path.join(project, 'node_modules', '@acme', 'sipflow-nodes');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@acme/sipflow-nodes', main: 'lib/nodes.js' }));
    mkdirSync(path.join(pkg, 'lib'));
    // what TypeScript's `export default [...]` compiles to
    writeFileSync(path.join(pkg, 'lib', 'nodes.js'), `Object.defineProperty(exports, '__esModule', { value: true }); exports.default = [${declared()}];`);
    const [loaded] = loadNodePlugins(['@acme/sipflow-nodes'], { cwd: project });
    expect(loaded).toMatchObject({ plugin: '@acme/sipflow-nodes', file: path.join(pkg, 'lib', 'nodes.js') });
    expect(loaded.types.map((t) => t.type)).toEqual(['acme.ok']);
    expect(registryOf([loaded]).has('acme.ok')).toBe(true);
  });

  test('a config file’s relative plug-in paths are relative to the file; package names stay names', () => {
    const dir = path.join(tmp, 'etc');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'sipflow.yaml');
    writeFileSync(file, 'nodes:\n  plugins: [examples/node-plugin, ./local, /opt/x, sipflow-nodes, "@acme/nodes"]\n');
    expect(loadConfig(file, {}).nodes.plugins).toEqual([
      path.join(dir, 'examples/node-plugin'),
      path.join(dir, 'local'),
      '/opt/x',
      'sipflow-nodes',
      '@acme/nodes',
    ]);
    // from the environment too (SIPFLOW_NODES_PLUGINS, comma-separated): relative to the working directory, as a command-line option
    expect(loadConfig(file, { SIPFLOW_NODES_PLUGINS: `${EXAMPLE},./b` }, tmp).nodes.plugins).toEqual([EXAMPLE, path.join(tmp, 'b')]);
  });

  test('npm names and paths are told apart as require() does, with a/b a path', () => {
    for (const name of ['sipflow-nodes', '@acme/nodes', 'highlight.js', 'a_b']) expect(isPluginPackageName(name)).toBe(true);
    for (const p of ['./x', '../x', '/opt/x', 'examples/node-plugin', 'C:\\x', 'Upper', '@acme/a/b']) expect(isPluginPackageName(p)).toBe(false);
  });

  test('no plug-in: the shared built-in registry', () => {
    expect(nodeRegistry([])).toBe(builtinRegistry());
  });
});

describe('a plug-in node that throws is the node’s problem, not the process’s', () => {
  let registry: ReturnType<typeof nodeRegistry>;
  beforeAll(() => {
    const dir = plugin(
      'faulty',
      exporting(
        declared("type: 'acme.compileThrows', compile: () => { throw new Error('no table for this region'); }"),
        declared("type: 'acme.checkThrows', check: (v) => v.x.y"),
        declared("type: 'acme.noRun', compile: () => 'not a function'"),
        declared("type: 'acme.runThrows', compile: () => () => { throw new TypeError('cannot read region of undefined'); }"),
        declared("type: 'acme.runRejects', compile: () => async () => { throw new Error('upstream said no'); }"),
      ),
    );
    registry = nodeRegistry([dir]);
  });
  const problems = (type: string) =>
    loadSlid(docOf([start(1), [1, type, { next: 2 }], [2, 'exit.return', {}]]), 'f.slid', registry).problems.map(formatProblem);

  test('compile throws, or returns no function → located validation error', () => {
    expect(problems('acme.compileThrows')).toEqual(['f.slid › logic 1 "test" › node 1 "n1": does not compile: no table for this region']);
    expect(problems('acme.noRun')).toEqual(['f.slid › logic 1 "test" › node 1 "n1": does not compile: its compile step returned no run function']);
  });

  test('check throws → located validation error', () => {
    expect(problems('acme.checkThrows')).toEqual([
      `f.slid › logic 1 "test" › node 1 "n1" › values: check failed: Cannot read properties of undefined (reading 'y')`,
    ]);
  });

  test('run throws or rejects → a 500 outcome naming the node', async () => {
    for (const [type, message] of [
      ['acme.runThrows', 'cannot read region of undefined'],
      ['acme.runRejects', 'upstream said no'],
    ]) {
      const r = loadSlid(docOf([start(1), [1, type, { next: 2 }], [2, 'exit.return', {}]]), 'f.slid', registry);
      const result = await runLogic(r.service!, '1', cdOf({}), testContext());
      expect(result.outcome).toEqual({
        kind: 'error',
        status: 500,
        reason: `Server Internal Error (node failed: ${message})`,
        where: 'logic 1 "test" › node 1 "n1"',
      });
    }
  });
});
