/**
 * The test cases of a flow: the sidecar document `<flow>.tests.json` beside `<flow>.slid`, stored
 * beside the flow in the database (development copy and each release) and exported with it.
 *
 *   { "tests": [ { "name", "logic"?, "cd", "credentials"?, "directory"?, "location"?, "http"?, "now"?,
 *                  "callLimit"?, "relayFailed"?, "expect": { "kind", "status"?, "path"? } } ],
 *     "directory"?: { "<schema.table>": [rows…] }, "location"?: [bindings…], "http"?: [answers…] }
 *
 * The schema is declared once here (zod); docs/flows.md documents it. Parsing never throws: a bad
 * document answers every problem as `<file>: <JSON pointer>: <what>`, and sizes are bounded so a
 * document cannot make a runner do unbounded work.
 */
import { z } from 'zod';
import { buildCallDescriptor } from '../../../engine/cd';
import { parseInstant } from '../../../engine/instant';

/** Bounds: tests per document, fixture rows (directory and location) per test, bytes of a document. */
export const TEST_LIMITS = {
  maxTests: 200,
  maxRows: 500,
  maxBytes: 1024 * 1024,
  maxNameLength: 200,
} as const;

export const OUTCOME_KINDS = ['challenge', 'register', 'relay', 'reply', 'redirect', 'exit', 'error'] as const;
export type OutcomeKind = (typeof OUTCOME_KINDS)[number];

const TABLE = /^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/;
const cell = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Record keys checked one by one, so that a problem names its key (zod's own says only "Invalid key"). */
const keyed = <T extends z.ZodType>(value: T, pattern: RegExp, what: string) =>
  z.record(z.string(), value).superRefine((r, ctx) => {
    for (const k of Object.keys(r)) if (!pattern.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: what });
  });
const rows = z.array(keyed(cell, COLUMN, 'must be a column name'));
const directorySchema = keyed(rows, TABLE, 'must be a table as schema.table (e.g. registration.customers)');

/** A registered binding the location service holds for the test (the runner's location service is private). */
const bindingSchema = z.strictObject({
  /** AoR: `user` or `user@domain` (single-domain lookups use the user part). */
  aor: z.string().min(1).max(300),
  contact: z.string().min(1).max(500),
  /** Seconds left (default 3600); 0 or less: an expired binding. */
  expires: z.number().int().min(-86400).max(31536000).optional(),
  received: z.string().max(300).optional(),
  path: z.string().max(1000).optional(),
  q: z.number().min(-1).max(1).optional(),
});
const locationSchema = z.array(bindingSchema);

/** An answer of the routing API or any HTTP service query.httpRequest asks: the runner never reaches the network. */
const httpSchema = z.array(
  z.strictObject({
    method: z.string().min(1).max(16).optional(),
    /** The exact URL asked (placeholders resolved, percent-encoded as the node sends it). */
    url: z.string().min(1).max(2000),
    status: z.number().int().min(100).max(599).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** Text, or JSON (sent as its text). */
    body: z.unknown().optional(),
    /** The request fails instead ('timeout' or 'failure'). */
    fail: z.enum(['timeout', 'failure']).optional(),
  }),
);

const instant = z.string().max(40).refine((s) => !(parseInstant(s) instanceof Error), {
  message: 'must be an ISO 8601 date-time with an offset, e.g. 2026-12-24T18:30:00+01:00',
});

const cdSchema = z.record(z.string(), z.unknown()).superRefine((cd, ctx) => {
  try {
    buildCallDescriptor(cd);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^invalid call descriptor: /, '') });
  }
});

export const testCaseSchema = z.strictObject({
  name: z.string().min(1).max(TEST_LIMITS.maxNameLength),
  /** Logic id or name; default: the flow's first logic. */
  logic: z.string().min(1).max(200).optional(),
  cd: cdSchema,
  /** The runner plays the UA: a 401/407 challenge is answered with these (MD5, qop=auth) and the request sent again. */
  credentials: z.strictObject({ username: z.string().min(1).max(200), password: z.string().max(200) }).optional(),
  directory: directorySchema.optional(),
  location: locationSchema.optional(),
  http: httpSchema.optional(),
  now: instant.optional(),
  /** What analysis.callLimit's limiter answers: a limit reached, the rate exceeded, or down (default: a fresh limiter, every call admitted). */
  callLimit: z.enum(['full', 'rate', 'unavailable']).optional(),
  /** The run relays with somewhere to go when every attempt fails (ifAllFailed): the front end reports this status for every attempt and the logic resumes there. */
  relayFailed: z.number().int().min(300).max(699).optional(),
  expect: z.strictObject({
    kind: z.enum(OUTCOME_KINDS),
    status: z.number().int().min(100).max(699).optional(),
    /** Node ids the final request went through, in this order (others may come between); `logic/node` for a called logic's node. */
    path: z.array(z.union([z.string().min(1).max(100), z.number().int()]).transform(String)).max(1000).optional(),
  }),
});

export const testDocumentSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Fixture rows every test of the document gets (before its own). */
  directory: directorySchema.optional(),
  /** Bindings every test of the document gets (before its own). */
  location: locationSchema.optional(),
  /** HTTP answers every test of the document gets (after its own). */
  http: httpSchema.optional(),
  tests: z.array(testCaseSchema).max(TEST_LIMITS.maxTests),
});

export type TestCase = z.output<typeof testCaseSchema>;
export type TestDocument = z.output<typeof testDocumentSchema>;
export type DirectoryFixture = NonNullable<TestCase['directory']>;
export type LocationFixture = NonNullable<TestCase['location']>;
export type HttpFixture = NonNullable<TestCase['http']>;

/** A test document that cannot be used: every problem, as `file: /pointer: what`. */
export class TestDocumentError extends Error {
  readonly status = 400;
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
  }
}

const pointer = (path: PropertyKey[]) => (path.length ? `/${path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}` : '/');
const rowCount = (d?: DirectoryFixture, l?: LocationFixture) =>
  Object.values(d ?? {}).reduce((n, r) => n + r.length, 0) + (l?.length ?? 0);

/** Checks a parsed document; throws TestDocumentError naming `file` and the pointer of each problem. */
export function checkTestDocument(value: unknown, file: string): TestDocument {
  const r = testDocumentSchema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues.slice(0, 20).map((i) => `${pointer(i.path)}: ${i.message}`);
    throw new TestDocumentError(file, problems);
  }
  const doc = r.data;
  const problems: string[] = [];
  const names = new Set<string>();
  doc.tests.forEach((t, i) => {
    if (names.has(t.name)) problems.push(`/tests/${i}/name: "${t.name}" names another test too`);
    names.add(t.name);
    const n = rowCount(doc.directory, doc.location) + rowCount(t.directory, t.location) + (doc.http?.length ?? 0) + (t.http?.length ?? 0);
    if (n > TEST_LIMITS.maxRows) problems.push(`/tests/${i}: ${n} fixture rows (at most ${TEST_LIMITS.maxRows} with the document's own)`);
  });
  if (problems.length) throw new TestDocumentError(file, problems);
  return doc;
}

/** Parses the text of a `.tests.json`; throws TestDocumentError naming `file` (invalid JSON, too large, wrong shape). */
export function parseTestDocument(text: string, file: string): TestDocument {
  if (Buffer.byteLength(text, 'utf8') > TEST_LIMITS.maxBytes) throw new TestDocumentError(file, [`/: larger than ${TEST_LIMITS.maxBytes} bytes`]);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TestDocumentError(file, [`/: invalid JSON: ${(e as Error).message}`]);
  }
  return checkTestDocument(value, file);
}

/** The sidecar's file name: `flows/pbx.slid` → `flows/pbx.tests.json`. */
export const testsFileOf = (slidFile: string) => slidFile.replace(/\.slid$/i, '') + '.tests.json';
