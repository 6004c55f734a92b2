/**
 * The pure parts of the flows store (server/flows): composition of the active set, and the compile
 * cache (a summary parses the development copy and compiles nothing; releases compile once).
 */
import { readFileSync } from 'fs';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import { NodeRegistry } from '../../../engine/registry';
import { builtinRegistry } from '../../../nodes';
import { createFlowCompiler } from '../../../server/flows/compile-cache';
import { composeFlows, logicsOfDocument, orderFlows } from '../../../server/flows/compose';
import { FlowProblemsError } from '../../../server/flows/errors';

const registry = builtinRegistry();
const read = (name: string) => readFileSync(path.join(__dirname, '../../../flows', `${name}.slid`), 'utf8');
const compile = (name: string) => loadSlidText(read(name), `${name}.slid`, registry).service!;

/** A registry that counts how often node types are looked up (loading a file looks them up). */
function countingRegistry(): { registry: NodeRegistry; lookups(): number } {
  let n = 0;
  const r = builtinRegistry();
  const get = r.get.bind(r);
  r.get = (type: string) => { n++; return get(type); };
  return { registry: r, lookups: () => n };
}

test('orderFlows: the primary flow first, then by name', () => {
  const flows = [{ flow: 'b' }, { flow: 'pbx' }, { flow: 'a' }];
  expect(orderFlows(flows, 'pbx').map((f) => f.flow)).toEqual(['pbx', 'a', 'b']);
  expect(orderFlows(flows).map((f) => f.flow)).toEqual(['a', 'b', 'pbx']);
  expect(flows.map((f) => f.flow)).toEqual(['b', 'pbx', 'a']);
});

test('logicsOfDocument: id and name of each logic; nothing for what is not a document', () => {
  expect(logicsOfDocument({ 24: { name: 'registration', nodes: {} }, 7: { nodes: {} } })).toEqual([{ id: '7', name: '' }, { id: '24', name: 'registration' }]);
  expect(logicsOfDocument([1, 2])).toEqual([]);
  expect(logicsOfDocument(null)).toEqual([]);
  expect(logicsOfDocument(undefined)).toEqual([]);
});

test('composeFlows: unqualified refs in flow order, `flow/ref` qualified, secrets united', () => {
  const registration = compile('registration');
  const pbx = compile('pbx');
  const c = composeFlows([{ flow: 'pbx', version: 2, service: pbx }, { flow: 'registration', version: 1, service: registration }]);
  const [id] = [...registration.logics.keys()];
  expect(c.resolve(`registration/${id}`)).toMatchObject({ flow: 'registration', version: 1 });
  expect(c.service.find(`registration/${id}`)).toBe(registration.logics.get(id));
  expect(c.resolve('no-such-logic')).toBeUndefined();
  expect(c.resolve('no-such-flow/x')).toBeUndefined();
  for (const s of registration.secrets ?? []) expect(c.service.secrets?.has(s)).toBe(true);
  const empty = composeFlows([]);
  expect(empty.service.logics.size).toBe(0);
  expect(empty.service.find('24')).toBeUndefined();
});

test('a development copy: logics without compiling, compiled once on first load, again when the text changes', () => {
  const { registry: counting, lookups } = countingRegistry();
  const compiler = createFlowCompiler(counting);
  const text = read('registration');
  const dev = compiler.development('registration', text);
  expect(dev.logics()).toEqual(logicsOfDocument(JSON.parse(text)));
  expect(lookups()).toBe(0);
  expect(compiler.development('registration', text)).toBe(dev);
  const loaded = dev.load();
  expect(loaded.service).toBeDefined();
  const after = lookups();
  expect(after).toBeGreaterThan(0);
  expect(dev.load()).toBe(loaded);
  expect(lookups()).toBe(after);
  const edited = text.replace('"registration"', '"registration 2"');
  const dev2 = compiler.development('registration', edited);
  expect(dev2).not.toBe(dev);
  expect(dev2.logics().map((l) => l.name)).toContain('registration 2');
});

test('remember: a saved copy is not compiled again', () => {
  const { registry: counting, lookups } = countingRegistry();
  const compiler = createFlowCompiler(counting);
  const text = read('pbx');
  const loaded = compiler.load(text, 'pbx.slid');
  compiler.remember('pbx', text, loaded);
  const before = lookups();
  expect(compiler.development('pbx', text).load()).toBe(loaded);
  expect(compiler.development('pbx', text).logics().length).toBeGreaterThan(0);
  expect(lookups()).toBe(before);
});

test('a release compiles once (releases are frozen); one that does not compile is refused', async () => {
  const compiler = createFlowCompiler(registry);
  let reads = 0;
  const text = async () => { reads++; return read('registration'); };
  const a = await compiler.release('registration', 1, text);
  const b = await compiler.release('registration', 1, text);
  expect(b).toBe(a);
  expect(reads).toBe(2); // the stored text is read to check the hit: compiled once
  expect(a.text).toBe(read('registration'));
  // the name deleted and taken again, another text as v1: compiled afresh
  const c = await compiler.release('registration', 1, async () => read('routing'));
  expect(c).not.toBe(a);
  expect(c.text).toBe(read('routing'));
  compiler.forget('registration');
  expect(await compiler.release('registration', 1, text)).not.toBe(c);
  await expect(compiler.release('broken', 1, async () => '{"1": {"name": "x", "nodes": {}}}')).rejects.toBeInstanceOf(FlowProblemsError);
  await expect(compiler.release('broken', 1, async () => '{"1": {"name": "x", "nodes": {}}}')).rejects.toThrow(/release 1 does not compile/);
});
