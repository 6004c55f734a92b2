/**
 * The HTTP API as the designer uses it: bearer token from localStorage (or `?token=`), JSON in and
 * out. The answers' types are the server's and the engine's own (type imports: no code).
 */
import type { Problem as EngineProblem } from '../../engine/problem';
import type { NodeTypeInfo } from '../../engine/node-type';
import type { TraceStep } from '../../engine/types';
import type { FlowDetail, FlowSummary } from '../../server/flows/types';
import type { CallDetail, CallOutcome, CallSummary, HistoryMessage, HistoryRun } from '../../services/history/record';

export type { CallDetail, CallOutcome, CallSummary, FlowDetail, FlowSummary, HistoryMessage, HistoryRun, NodeTypeInfo, TraceStep };
/** What the server answers in place of a secret (unless asked to reveal secrets). */
export { REDACTED } from '../../engine/secrets';

const TOKEN_KEY = 'sipflow.apiToken';

export function initialToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: any,
  ) {
    super(message);
  }
}

/** A problem as the API answers it: the engine's, with its formatted text (server/http/errors.ts problemJson). */
export interface Problem extends EngineProblem {
  text?: string;
}

export interface DirectoryTable {
  name: string;
  /** `references`: the `schema.table.column` a foreign key of this column points to. */
  columns: Array<{ name: string; type: string; references?: string }>;
}

export interface SimulateResult {
  outcome: { kind: string; status: number | null; [k: string]: unknown };
  cd: Record<string, unknown>;
  restarts: number;
  trace?: TraceStep[];
  secretsRevealed?: boolean;
}

/** GET /api/v1/calls filters; empty ones are left out. `from` / `to`: ISO 8601 instants. */
export interface CallQuery {
  callId?: string;
  number?: string;
  aor?: string;
  from?: string;
  to?: string;
  outcome?: CallOutcome | '';
  limit?: number;
}

export class Api {
  onUnauthorized: () => void = () => undefined;
  constructor(public token: string | null) {}

  private async request(method: string, url: string, body?: string, extra: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extra };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(url, { method, headers, body });
    if (r.status === 401) this.onUnauthorized();
    return r;
  }

  private async json<T>(method: string, url: string, body?: string, headers?: Record<string, string>): Promise<T> {
    const r = await this.request(method, url, body, headers);
    const text = await r.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!r.ok) throw new ApiFailure(r.status, (parsed && parsed.message) || `${r.status} ${r.statusText}`, parsed);
    return parsed as T;
  }

  nodeTypes() {
    return this.json<NodeTypeInfo[]>('GET', '/api/v1/node-types');
  }
  async directorySchema(): Promise<DirectoryTable[]> {
    return (await this.json<{ tables: DirectoryTable[] }>('GET', '/api/v1/directory/schema')).tables;
  }
  async flows(): Promise<FlowSummary[]> {
    return (await this.json<{ flows: FlowSummary[] }>('GET', '/api/v1/flows')).flows;
  }
  flow(name: string) {
    return this.json<FlowDetail>('GET', `/api/v1/flows/${encodeURIComponent(name)}`);
  }
  async exportText(name: string, version: number | 'development'): Promise<string> {
    return (await this.exportWithRevision(name, version)).text;
  }
  /** The stored text and the development copy's revision (the `If-Match` of its next save). */
  async exportWithRevision(name: string, version: number | 'development'): Promise<{ text: string; revision: string | null }> {
    const r = await this.request('GET', `/api/v1/flows/${encodeURIComponent(name)}/export?version=${version}`);
    const text = await r.text();
    if (!r.ok) {
      let b: any;
      try {
        b = JSON.parse(text);
      } catch {
        b = text;
      }
      throw new ApiFailure(r.status, b?.message ?? text, b);
    }
    return { text, revision: r.headers.get('x-sipflow-revision') };
  }
  validate(text: string, file: string) {
    return this.json<{ valid: boolean; errors: number; warnings: number; problems: Problem[] }>(
      'POST',
      `/api/v1/flows/validate?file=${encodeURIComponent(file)}`,
      text,
    );
  }
  /**
   * Saves the development copy. `revision`: the one the edit was made from (If-Match: a 409 answers
   * when the flow changed since, with the current `revision`); null: create only (If-None-Match: *,
   * 409 when the flow exists); undefined: overwrite whatever is stored.
   */
  save(name: string, text: string, revision?: string | null) {
    const headers: Record<string, string> = revision === null ? { 'if-none-match': '*' } : revision ? { 'if-match': `"${revision}"` } : {};
    return this.json<{ name: string; created: boolean; revision: string; problems: Problem[] }>(
      'PUT',
      `/api/v1/flows/${encodeURIComponent(name)}`,
      text,
      headers,
    );
  }
  /** Imports a `.slid` as a new flow: 409 when the name exists unless `replace`. */
  importFlow(name: string, text: string, replace = false) {
    return this.json<{ name: string; created: boolean; revision: string; problems: Problem[] }>(
      'POST',
      `/api/v1/flows/import?name=${encodeURIComponent(name)}${replace ? '&replace=true' : ''}`,
      text,
    );
  }
  renameFlow(name: string, to: string) {
    return this.json<{ from: string; to: string; active: boolean }>('POST', `/api/v1/flows/${encodeURIComponent(name)}/rename`, JSON.stringify({ to }));
  }
  /** Deletes a flow with its releases; an active one only with `force` (else 409). */
  deleteFlow(name: string, force = false) {
    return this.json<{ name: string; wasActive: boolean }>('DELETE', `/api/v1/flows/${encodeURIComponent(name)}${force ? '?force=true' : ''}`);
  }
  /** `revision`: release only if the development copy is still that one (If-Match; else 409). */
  release(name: string, note?: string, revision?: string | null) {
    return this.json<{ version: number; createdAt: string }>(
      'POST',
      `/api/v1/flows/${encodeURIComponent(name)}/releases`,
      JSON.stringify(note ? { note } : {}),
      revision ? { 'if-match': `"${revision}"` } : {},
    );
  }
  /** A failing test case answers 422 `{ tests: { passed, failed, results } }` unless `force`. */
  activate(name: string, version: number, force = false) {
    return this.json<{ version: number }>('POST', `/api/v1/flows/${encodeURIComponent(name)}/releases/${version}/activate${force ? '?force=true' : ''}`, '{}');
  }
  /** Secrets (passwords, credentials headers) come back as REDACTED unless `revealSecrets`; `now` (ISO 8601 instant) fixes the run's clock. */
  simulate(body: { slid: unknown; logic: string; cd: unknown; trace: boolean; revealSecrets?: boolean; now?: string }) {
    return this.json<SimulateResult>('POST', '/api/v1/simulate', JSON.stringify(body));
  }
  async calls(q: CallQuery): Promise<CallSummary[]> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    return (await this.json<{ calls: CallSummary[] }>('GET', `/api/v1/calls${qs ? `?${qs}` : ''}`)).calls;
  }
  call(callId: string) {
    return this.json<CallDetail>('GET', `/api/v1/calls/${encodeURIComponent(callId)}`);
  }
  /** The numbers and AoRs recorded whatever history.mode says (switchable at run time). */
  debugFilter() {
    return this.json<{ numbers: string[] }>('GET', '/api/v1/calls/debug-filter');
  }
  setDebugFilter(numbers: string[]) {
    return this.json<{ numbers: string[] }>('PUT', '/api/v1/calls/debug-filter', JSON.stringify({ numbers }));
  }
}

// ---------------------------------------------------------------- test cases (helper "tests")
// A flow's test cases (`<flow>.tests.json`, docs/flows.md "Test cases"): /api/v1/flows/:name/tests…

export interface TestCaseDoc {
  name: string;
  logic?: string;
  cd: Record<string, unknown>;
  credentials?: { username: string; password: string };
  directory?: Record<string, Array<Record<string, unknown>>>;
  location?: Array<Record<string, unknown>>;
  now?: string;
  expect: { kind: string; status?: number; path?: string[] };
  [k: string]: unknown;
}
export interface TestsDoc {
  tests: TestCaseDoc[];
  [k: string]: unknown;
}
export interface TestCaseResult {
  name: string;
  passed: boolean;
  logic?: string;
  actual: { kind: string; status: number | null; path: string[] } | null;
  message: string;
}
export interface TestRun {
  flow: string;
  version: number | 'development';
  hasTests: boolean;
  passed: number;
  failed: number;
  results: TestCaseResult[];
}

async function testsCall(api: Api, method: string, path: string, body?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (api.token) headers.authorization = `Bearer ${api.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`/api/v1/flows/${path}`, { method, headers, body });
  if (r.status === 401) api.onUnauthorized();
  if (!r.ok && r.status !== 404) {
    const text = await r.text();
    let b: any;
    try {
      b = JSON.parse(text);
    } catch {
      b = text;
    }
    throw new ApiFailure(r.status, b?.message ?? `${r.status} ${r.statusText}`, b);
  }
  return r;
}

const flowPath = (name: string) => encodeURIComponent(name);

/** The development copy's test cases (`{ tests: [] }` when none). */
export async function getFlowTests(api: Api, flow: string): Promise<TestsDoc> {
  const r = await testsCall(api, 'GET', `${flowPath(flow)}/tests`);
  if (r.status === 404) throw new ApiFailure(404, `flow "${flow}" is not saved yet`, null);
  return (await r.json()) as TestsDoc;
}

/** Replaces the development copy's test cases (400 names the problem). */
export async function putFlowTests(api: Api, flow: string, text: string): Promise<{ tests: number }> {
  const r = await testsCall(api, 'PUT', `${flowPath(flow)}/tests`, text);
  if (r.status === 404) throw new ApiFailure(404, `flow "${flow}" is not saved yet: save it first`, null);
  return (await r.json()) as { tests: number };
}

/** Runs the development copy's test cases on the server's private directory. */
export async function runFlowTests(api: Api, flow: string): Promise<TestRun> {
  const r = await testsCall(api, 'POST', `${flowPath(flow)}/tests/run?version=development`);
  if (r.status === 404) throw new ApiFailure(404, `flow "${flow}" is not saved yet`, null);
  return (await r.json()) as TestRun;
}

/** `<flow>.tests.json` as stored, or null when the flow has no test cases. */
export async function exportFlowTests(api: Api, flow: string, version: number | 'development' = 'development'): Promise<string | null> {
  const r = await testsCall(api, 'GET', `${flowPath(flow)}/tests/export?version=${version}`);
  return r.status === 204 ? null : r.text();
}
