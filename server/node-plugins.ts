/**
 * Node plug-ins: custom node types loaded at start from the folders and npm packages the
 * configuration names (`nodes.plugins`; never from an API request). A plug-in is trusted code that
 * runs in-process, as a Kamailio module does: it is checked for shape, not sandboxed
 * (docs/plugins.md). Every node type it exports is held to the built-in contract
 * (engine/node-type.ts), and anything off refuses the start with an error naming the plug-in and
 * the problem, rather than a palette that half works.
 *
 * Layout: resolve (a path → the folder's package main or index.js, or the file; a package name →
 * from the working directory) → require → the exported list → each node type's members → one
 * registry of the built-in types plus the plug-ins' (NodeRegistry compiles every schema once).
 *
 * Limits: CommonJS modules only (require). Each thread loads its own copy: the main thread at
 * start, each SIP thread from the configuration it receives (server/sip-threads/sip-thread.ts).
 * A plug-in can neither replace a built-in type nor take a namespace of the built-in types
 * (`action.…`, `query.…`): a later sipflow adding a type of that name would collide with it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NODE_CATEGORIES, type NodeType } from '../engine/node-type';
import { NodeRegistry, createAjv } from '../engine/registry';
import { NODE_TYPES, builtinRegistry } from '../nodes';
import { isPluginPackageName } from './config';

/** A plug-in that cannot be used: sipflow does not start. */
export class PluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly problem: string,
  ) {
    super(`nodes.plugins: plug-in "${plugin}": ${problem}`);
  }
}

export interface LoadedPlugin {
  /** The entry of `nodes.plugins` as configured. */
  plugin: string;
  /** The module file required. */
  file: string;
  types: NodeType[];
}

/** `namespace.name`, as `acme.lookupRoute`. */
const PLUGIN_TYPE = /^([a-z][a-z0-9-]*)\.([A-Za-z][A-Za-z0-9_]*)$/;
/** The members of the contract a plug-in declares; exits, written variables and secrets come from the schema's annotations. */
const MEMBERS = ['type', 'title', 'category', 'description', 'summary', 'valuesSchema', 'check', 'compile'];
const REQUIRED_TEXT = ['title', 'description'] as const;

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** The module file a `nodes.plugins` entry names. */
function resolvePlugin(spec: string, cwd: string): string {
  if (isPluginPackageName(spec)) {
    try {
      return require.resolve(spec, { paths: [cwd] });
    } catch (e) {
      throw new PluginError(spec, `npm package not found from ${cwd} (install it there, or give a folder path: ./${spec}): ${firstLine(e)}`);
    }
  }
  const target = path.resolve(cwd, spec);
  if (!existsSync(target)) throw new PluginError(spec, `${target} does not exist`);
  try {
    return require.resolve(target);
  } catch (e) {
    throw new PluginError(spec, `${target} has no module to load (a package.json "main", an index.js, or a .js file): ${firstLine(e)}`);
  }
}

/** What a module exports as its node types: `nodeTypes`, or the default export (a list, or an object with `nodeTypes`). */
function exportedTypes(spec: string, mod: unknown): unknown[] {
  const m = mod as { nodeTypes?: unknown; default?: unknown } | null | undefined;
  const d = m?.default as { nodeTypes?: unknown } | undefined;
  const list = m?.nodeTypes ?? (Array.isArray(d) ? d : d?.nodeTypes);
  if (!Array.isArray(list))
    throw new PluginError(spec, 'exports no node types (module.exports.nodeTypes, or the default export, must be a list of node types)');
  if (list.length === 0) throw new PluginError(spec, 'exports an empty list of node types');
  return list;
}

/** Built-in types and their namespaces (`action`, `query`, …): not for plug-ins. */
function builtinNames(): { types: Set<string>; namespaces: Set<string> } {
  const types = new Set(NODE_TYPES.map((t) => t.type));
  return { types, namespaces: new Set([...types].map((t) => t.split('.')[0])) };
}

/** The first problem of one exported node type, or null when it keeps the contract. */
function problemOf(t: unknown, index: number, builtin: ReturnType<typeof builtinNames>): string | null {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) {
    return `nodeTypes[${index}] is not a node type (an object with type, title, category, description, valuesSchema and compile)`;
  }
  const o = t as Record<string, unknown>;
  const label = typeof o.type === 'string' ? `node type "${o.type}"` : `nodeTypes[${index}]`;
  const unknown = Object.keys(o).filter((k) => !MEMBERS.includes(k));
  if (unknown.length > 0) {
    return `${label}: unknown member(s) ${unknown.join(', ')} (a plug-in declares ${MEMBERS.join(', ')}; exits, written variables and secrets come from x-exit, x-writes and x-secret in valuesSchema)`;
  }
  if (typeof o.type !== 'string') return `${label}: type must be a string in namespace.name form (e.g. acme.lookupRoute)`;
  if (builtin.types.has(o.type)) return `${label}: is a built-in node type; a plug-in cannot replace it`;
  const m = PLUGIN_TYPE.exec(o.type);
  if (!m) return `${label}: type is not in namespace.name form (letters and digits, e.g. acme.lookupRoute)`;
  if (builtin.namespaces.has(m[1])) return `${label}: namespace "${m[1]}" is reserved for built-in node types (use your own, e.g. acme.${m[2]})`;
  for (const k of REQUIRED_TEXT) if (typeof o[k] !== 'string' || o[k] === '') return `${label}: ${k} must be a non-empty string`;
  if (!(NODE_CATEGORIES as readonly unknown[]).includes(o.category)) {
    return `${label}: category ${JSON.stringify(o.category)} is not one of ${NODE_CATEGORIES.join(', ')}`;
  }
  const schema = o.valuesSchema as Record<string, unknown> | undefined;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || schema.type !== 'object') {
    return `${label}: valuesSchema must be the JSON Schema of an object ({ type: "object", properties: … })`;
  }
  try {
    createAjv().compile(schema);
  } catch (e) {
    return `${label}: valuesSchema is not a valid JSON Schema (ajv, strict mode): ${firstLine(e)}`;
  }
  if (o.summary !== undefined && typeof o.summary !== 'string') return `${label}: summary must be a string (a template over values: docs/plugins.md)`;
  if (typeof o.compile !== 'function') return `${label}: compile must be a function (values, context) → run function`;
  if (o.check !== undefined && typeof o.check !== 'function') return `${label}: check must be a function (values) → [pointer, message] problems`;
  return null;
}

/**
 * Loads `nodes.plugins` entries, in order; throws a PluginError at the first plug-in that cannot
 * be used. Relative paths and package names resolve from `cwd` (default the working directory;
 * loadConfig has already made a config file's relative paths absolute).
 */
export function loadNodePlugins(specs: readonly string[], o: { cwd?: string } = {}): LoadedPlugin[] {
  const cwd = o.cwd ?? process.cwd();
  const builtin = builtinNames();
  const owner = new Map<string, string>();
  const out: LoadedPlugin[] = [];
  for (const spec of specs) {
    const file = resolvePlugin(spec, cwd);
    let mod: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- plug-ins are CommonJS modules named at run time
      mod = require(file);
    } catch (e) {
      throw new PluginError(spec, `failed to load ${file}: ${firstLine(e)}`);
    }
    const types = exportedTypes(spec, mod);
    types.forEach((t, i) => {
      const problem = problemOf(t, i, builtin);
      if (problem) throw new PluginError(spec, problem);
      const type = (t as NodeType).type;
      const other = owner.get(type);
      if (other !== undefined) throw new PluginError(spec, `node type "${type}" is also declared by ${other === spec ? 'this plug-in' : `plug-in "${other}"`}`);
      owner.set(type, spec);
    });
    out.push({ plugin: spec, file, types: types as NodeType[] });
  }
  return out;
}

/** The built-in node types plus the plug-ins', or the shared built-in registry when there is none. */
export function registryOf(plugins: readonly LoadedPlugin[]): NodeRegistry {
  if (plugins.length === 0) return builtinRegistry();
  try {
    return new NodeRegistry([...NODE_TYPES, ...plugins.flatMap((p) => p.types)]);
  } catch (e) {
    // every schema compiled alone; together they may clash (two schemas with one $id)
    throw new PluginError(plugins.map((p) => p.plugin).join('", "'), `the node types do not load together: ${firstLine(e)}`);
  }
}

/** The node registry of a configuration: built-ins plus `nodes.plugins` (throws a PluginError naming the plug-in). */
export function nodeRegistry(plugins: readonly string[], o: { cwd?: string } = {}): NodeRegistry {
  return registryOf(loadNodePlugins(plugins, o));
}
