/** Builders for engine unit tests: small logics written inline, loaded with the built-in registry. */
import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor } from '../../../engine/cd';
import { formatProblem, loadSlid, loadSlidText, type CompiledService, type LoadResult } from '../../../engine/load';
import { runLogic, type RunOptions, type RunResult } from '../../../engine/run';
import type { RunContext } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import { testContext } from '../../support/context';

export const registry = builtinRegistry();

export const FIXTURES = path.join(__dirname, '../../fixtures/slid');

/** A node as written in a test: [id, type, values, extra node keys]. */
export type NodeSpec = [id: number | string, type: string, values: Record<string, unknown>, extra?: Record<string, unknown>];

export function slidNode([id, type, values, extra]: NodeSpec): Record<string, unknown> {
  return { id, name: `n${id}`, type, description: '', values, archived: false, x: 0, y: 0, ...extra };
}

/** One logic `1 "test"` made of these nodes (keyed by id). */
export function logicOf(nodes: NodeSpec[], name = 'test'): Record<string, unknown> {
  return { name, description: '', nodes: Object.fromEntries(nodes.map((n) => [String(n[0]), slidNode(n)])) };
}

export function docOf(nodes: NodeSpec[]): Record<string, unknown> {
  return { 1: logicOf(nodes) };
}

export const problemsOf = (r: LoadResult): string[] => r.problems.map(formatProblem);

/** Loads a document that must have no error. */
export function compile(doc: unknown, file = 'test.slid'): CompiledService {
  const r = loadSlid(doc, file, registry);
  const errors = r.problems.filter((p) => p.severity === 'error').map(formatProblem);
  if (errors.length || !r.service) throw new Error(`unexpected problems:\n${errors.join('\n')}`);
  return r.service;
}

export function loadFixture(name: string): LoadResult {
  return loadSlidText(readFileSync(path.join(FIXTURES, name), 'utf8'), path.basename(name), registry);
}

export const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });

/** Compiles `nodes` as logic 1 and runs it once on a CD built from `input`. */
export async function runNodes(
  nodes: NodeSpec[],
  input: Record<string, unknown> = {},
  ctx: RunContext = testContext(),
  opts: RunOptions = {},
): Promise<RunResult> {
  return runLogic(compile(docOf(nodes)), '1', cdOf(input), ctx, opts);
}

/** Shorthands for node specs. */
export const start = (next: number | string): NodeSpec => [0, 'enter.start', { next }];
export const reply = (id: number | string, code: number, reason?: string): NodeSpec => [id, 'output.reply', reason === undefined ? { code } : { code, reason }];
export const setVars = (id: number | string, variables: Array<Record<string, unknown>>, next?: number | string): NodeSpec => [
  id,
  'action.setVariables',
  next === undefined ? { variables } : { variables, next },
];
