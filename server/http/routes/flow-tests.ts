/**
 * /api/v1/flows/:name/tests…: a flow's test cases (server/flows/test-cases), stored beside it and
 * frozen with each release.
 *
 *   GET    /flows/:name/tests                  the development copy's test document ({ tests: [] } when none)
 *   PUT    /flows/:name/tests                  replace it (validated: 400 naming the file and the pointer)
 *   DELETE /flows/:name/tests                  remove it
 *   POST   /flows/:name/tests/run?version=     run them (development by default, or release N)
 *   GET    /flows/:name/tests/export?version=  download `<flow>.tests.json` as stored (204 when the flow has none)
 *
 * Work is bounded: the body (TEST_LIMITS.maxBytes), the tests and their fixture rows per document,
 * two requests per test each held by the engine's limits, one run at a time on the private test
 * directory, and a wall-clock budget per run. The activation gate (`activationGate`) runs a
 * release's tests before `POST /flows/:name/releases/:version/activate` (routes/flows.ts) activates it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { closeFlowTests, runFlowTests, TEST_LIMITS, type FlowTestRun } from '../../flows/test-cases';
import type { TestRunOptions } from '../../flows/test-cases';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import { errorResponses, flowNameParam } from '../schemas';

const TAG = ['flows'];

const versionQuery = {
  type: 'object',
  properties: {
    version: { type: 'string', pattern: '^([1-9][0-9]*|development)$', description: 'release number or "development" (default)' },
  },
  additionalProperties: false,
};
const versionOf = (v: string | undefined): number | 'development' => (v === undefined || v === 'development' ? 'development' : Number(v));

const testResultSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    passed: { type: 'boolean' },
    logic: { type: 'string' },
    actual: {
      type: ['object', 'null'],
      properties: { kind: { type: 'string' }, status: { type: ['integer', 'null'] }, path: { type: 'array', items: { type: 'string' } } },
    },
    message: { type: 'string', description: 'what differed (empty when passed)' },
    durationMs: { type: 'number' },
  },
  required: ['name', 'passed', 'message'],
};
export const testRunSchema = {
  type: 'object',
  description: "The results of a flow's test cases",
  properties: {
    flow: { type: 'string' },
    version: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
    hasTests: { type: 'boolean' },
    passed: { type: 'integer' },
    failed: { type: 'integer' },
    results: { type: 'array', items: testResultSchema },
  },
  required: ['flow', 'version', 'hasTests', 'passed', 'failed', 'results'],
};
/** 422 of the activation gate: problem JSON with the failing tests. */
export const activationRefusedSchema = {
  type: 'object',
  description: 'Activation refused: a test case of the release failed (`?force=true` activates anyway)',
  properties: {
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    tests: {
      type: 'object',
      properties: { passed: { type: 'integer' }, failed: { type: 'integer' }, results: { type: 'array', items: testResultSchema } },
      required: ['passed', 'failed', 'results'],
    },
  },
  required: ['title', 'status', 'detail', 'tests'],
};

const runOptions = (deps: ApiDeps): TestRunOptions => ({ realm: deps.ctx.realm, limits: deps.limits, registrar: deps.registrarOptions });

/**
 * Runs the test cases of release `version` before it is activated. Answers the 422 (and returns
 * true) when one fails and `force` is not set; with `force`, logs the failures and returns false.
 * A release without test cases passes.
 */
export async function activationGate(deps: ApiDeps, req: FastifyRequest, reply: FastifyReply, name: string, version: number, force: boolean): Promise<boolean> {
  const run = await runFlowTests(deps.flows, name, version, runOptions(deps));
  if (!run.hasTests || run.failed === 0) return false;
  const failures = run.results.filter((r) => !r.passed).map((r) => ({ name: r.name, message: r.message }));
  if (force) {
    req.log.warn({ flow: name, version, failed: run.failed, failures }, 'activation forced despite failing test cases');
    return false;
  }
  const detail = `flow "${name}" release ${version}: ${run.failed} of ${run.results.length} test case(s) failed (${failures.map((f) => `${f.name}: ${f.message}`).join('; ')}); nothing was activated (?force=true activates anyway)`;
  await reply.code(422).send({
    title: 'Test cases failed',
    status: 422,
    detail,
    statusCode: 422,
    error: 'Unprocessable Entity',
    message: detail,
    tests: {
      passed: run.passed,
      failed: run.failed,
      results: run.results.map((r) => ({ name: r.name, passed: r.passed, message: r.message, logic: r.logic, actual: r.actual })),
    },
  });
  return true;
}

/** The routes that take the document as raw text: stored byte for byte, exported as given. */
async function rawTestRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain', 'application/octet-stream'],
    { parseAs: 'string', bodyLimit: TEST_LIMITS.maxBytes },
    (_req, body, done) => done(null, body),
  );
  app.put<{ Body: string; Params: { name: string } }>(
    '/flows/:name/tests',
    {
      schema: {
        tags: TAG,
        summary: 'Replace the test cases of the development copy (validated: 400 naming the file and the JSON pointer of each problem)',
        consumes: ['application/json', 'text/plain', 'application/octet-stream'],
        params: flowNameParam,
        body: { type: 'string', description: `the .tests.json document (at most ${TEST_LIMITS.maxBytes} bytes, ${TEST_LIMITS.maxTests} tests)` },
        response: {
          200: { type: 'object', properties: { name: { type: 'string' }, tests: { type: 'integer' } }, required: ['name', 'tests'] },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      if (typeof req.body !== 'string' || req.body.trim() === '') throw new ApiError(400, 'body: the .tests.json document is required');
      await deps.flows.saveTests(req.params.name, req.body);
      return { name: req.params.name, tests: (JSON.parse(req.body) as { tests: unknown[] }).tests.length };
    },
  );
}

export async function flowTestRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.addHook('onClose', () => closeFlowTests(deps.flows));
  await app.register(async (child) => rawTestRoutes(child, deps));

  app.get<{ Params: { name: string } }>(
    '/flows/:name/tests',
    {
      schema: {
        tags: TAG,
        summary: 'The development copy\'s test cases (`{ "tests": [] }` when it has none)',
        params: flowNameParam,
        response: { 200: { type: 'object', properties: { tests: { type: 'array' } }, required: ['tests'], additionalProperties: true }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { text } = await deps.flows.testsText(req.params.name, 'development');
      return reply.header('Content-Type', 'application/json; charset=utf-8').send(text ?? '{ "tests": [] }');
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/flows/:name/tests',
    {
      schema: {
        tags: TAG,
        summary: 'Remove the test cases of the development copy',
        params: flowNameParam,
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      await deps.flows.saveTests(req.params.name, null);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/flows/:name/tests/run',
    {
      schema: {
        tags: TAG,
        summary: 'Run the test cases of the development copy (default) or of a release, on a private directory (nothing real is read or written)',
        params: flowNameParam,
        querystring: versionQuery,
        response: { 200: testRunSchema, ...errorResponses },
      },
    },
    async (req): Promise<FlowTestRun> => runFlowTests(deps.flows, req.params.name, versionOf(req.query.version), runOptions(deps)),
  );

  app.get<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/flows/:name/tests/export',
    {
      schema: {
        tags: TAG,
        summary: 'Download `<flow>.tests.json` as stored (development by default, or a release); 204 when the flow has no test cases (404: no such flow)',
        params: flowNameParam,
        querystring: versionQuery,
        produces: ['application/json'],
        response: {
          200: { type: 'object', additionalProperties: true, description: 'the .tests.json file (Content-Disposition: attachment)' },
          204: { type: 'null', description: 'the flow has no test cases' },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const { text, version } = await deps.flows.testsText(req.params.name, versionOf(req.query.version));
      // no test cases is an answer, not an error: the designer's Export asks for every flow
      if (text === null) return reply.code(204).header('X-Sipflow-Version', String(version)).send();
      return reply
        .header('Content-Type', 'application/json; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="${req.params.name}.tests.json"`)
        .header('X-Sipflow-Version', String(version))
        .send(text);
    },
  );
}
