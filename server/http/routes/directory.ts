/**
 * /api/v1/customers, /api/v1/numbers, /api/v1/import and the CSV exports.
 *
 * Passwords (the note's clear-text column) are secrets: JSON listings show `hasPassword` and leave
 * `password` out unless `?includePasswords=true`; the customers CSV export has a password column
 * only with `?includePasswords=true`. Both need the API token like everything else.
 */
import type { FastifyInstance } from 'fastify';
import { CsvError, parseCsv, type Customer, type ImportRowError } from '../../../services/directory';
import type { ApiDeps } from '../deps';
import { ApiError } from '../errors';
import {
  customerPatchBody,
  customerSchema,
  errorResponses,
  idParam,
  newCustomerBody,
  newNumberBody,
  numberPatchBody,
  numberSchema,
  pageOf,
  pagingQuery,
} from '../schemas';

interface Paging {
  search?: string;
  limit?: number;
  offset?: number;
  includePasswords?: boolean;
}

const includePasswords = { includePasswords: { type: 'boolean', default: false, description: 'include clear-text passwords' } };
const passwordsOnly = { type: 'object', properties: includePasswords, additionalProperties: false };

function customerJson(c: Customer, withPassword: boolean) {
  const { password, ...rest } = c;
  return withPassword ? { ...rest, hasPassword: password !== null, password } : { ...rest, hasPassword: password !== null };
}

const noContent = { 204: { type: 'null', description: 'deleted' } };

export async function directoryRoutes(app: FastifyInstance, deps: ApiDeps) {
  const s = deps.subscribers;
  const admin = deps.subscribersAdmin;
  const C = ['customers'];
  const N = ['numbers'];

  // ------------------------------------------------------------ customers
  app.get<{ Querystring: Paging }>(
    '/customers',
    {
      schema: {
        tags: C,
        summary: 'List customers (search in name, username, aor)',
        querystring: pagingQuery(includePasswords),
        response: { 200: pageOf(customerSchema), ...errorResponses },
      },
    },
    async (req) => {
      const { limit = 50, offset = 0 } = req.query;
      const page = await s.listCustomers({ search: req.query.search, limit, offset });
      return { rows: page.rows.map((c) => customerJson(c, req.query.includePasswords === true)), total: page.total, limit, offset };
    },
  );

  app.post<{ Body: { name: string; username?: string | null; password?: string | null; aor?: string | null } }>(
    '/customers',
    {
      schema: { tags: C, summary: 'Add a customer', body: newCustomerBody, response: { 201: customerSchema, ...errorResponses } },
    },
    async (req, reply) => {
      const b = req.body;
      const c = await s.addCustomer({ name: b.name, username: b.username ?? null, password: b.password ?? null, aor: b.aor ?? null });
      return reply.code(201).send(customerJson(c, false));
    },
  );

  app.get<{ Params: { id: number }; Querystring: { includePasswords?: boolean } }>(
    '/customers/:id',
    {
      schema: { tags: C, summary: 'One customer', params: idParam, querystring: passwordsOnly, response: { 200: customerSchema, ...errorResponses } },
    },
    async (req) => customerJson(await admin.getCustomer(req.params.id), req.query.includePasswords === true),
  );

  app.put<{ Params: { id: number }; Body: { name?: string; username?: string | null; password?: string | null; aor?: string | null } }>(
    '/customers/:id',
    {
      schema: {
        tags: C,
        summary: 'Update a customer (the fields given)',
        params: idParam,
        body: customerPatchBody,
        response: { 200: customerSchema, ...errorResponses },
      },
    },
    async (req) => customerJson(await admin.updateCustomer(req.params.id, req.body), false),
  );

  app.delete<{ Params: { id: number } }>(
    '/customers/:id',
    {
      schema: { tags: C, summary: 'Delete a customer (409 while it has numbers)', params: idParam, response: { ...noContent, ...errorResponses } },
    },
    async (req, reply) => {
      await admin.deleteCustomer(req.params.id);
      return reply.code(204).send();
    },
  );

  // ------------------------------------------------------------ numbers
  app.get<{ Querystring: Paging & { customer?: string } }>(
    '/numbers',
    {
      schema: {
        tags: N,
        summary: 'List numbers (search in number; filter by customer id or name)',
        querystring: pagingQuery({ customer: { type: 'string', minLength: 1, description: 'customer id or name' } }),
        response: { 200: pageOf(numberSchema), ...errorResponses },
      },
    },
    async (req) => {
      const { limit = 50, offset = 0, customer } = req.query;
      const ref = customer === undefined ? undefined : /^\d+$/.test(customer) ? Number(customer) : customer;
      const page = await s.listNumbers({ search: req.query.search, limit, offset, customer: ref });
      return { ...page, limit, offset };
    },
  );

  app.post<{ Body: { number: string; is_range?: boolean; customer: number | string } }>(
    '/numbers',
    {
      schema: { tags: N, summary: 'Add a number to a customer', body: newNumberBody, response: { 201: numberSchema, ...errorResponses } },
    },
    async (req, reply) =>
      reply.code(201).send(await s.addNumber({ number: req.body.number, is_range: req.body.is_range ?? false, customer: req.body.customer })),
  );

  app.get<{ Params: { id: number } }>(
    '/numbers/:id',
    {
      schema: { tags: N, summary: 'One number', params: idParam, response: { 200: numberSchema, ...errorResponses } },
    },
    async (req) => admin.getNumber(req.params.id),
  );

  app.put<{ Params: { id: number }; Body: { number?: string; is_range?: boolean; customer?: number | string } }>(
    '/numbers/:id',
    {
      schema: {
        tags: N,
        summary: 'Update a number (the fields given)',
        params: idParam,
        body: numberPatchBody,
        response: { 200: numberSchema, ...errorResponses },
      },
    },
    async (req) => admin.updateNumber(req.params.id, req.body),
  );

  app.delete<{ Params: { id: number } }>(
    '/numbers/:id',
    {
      schema: { tags: N, summary: 'Delete a number', params: idParam, response: { ...noContent, ...errorResponses } },
    },
    async (req, reply) => {
      await admin.deleteNumber(req.params.id);
      return reply.code(204).send();
    },
  );

  // ------------------------------------------------------------ batch import / export
  app.post<{ Body: { customers?: string; numbers?: string } }>(
    '/import',
    {
      schema: {
        tags: ['import'],
        summary: 'Batch import from CSV texts: every row or none; 400 lists every row error',
        description:
          'customers CSV header: name,username,password,aor (name required). numbers CSV header: number,is_range,customer (customer = name or id, of this batch or already in the directory).',
        body: {
          type: 'object',
          properties: {
            customers: { type: 'string', description: 'customers CSV text' },
            numbers: { type: 'string', description: 'numbers CSV text' },
          },
          minProperties: 1,
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', properties: { customers: { type: 'integer' }, numbers: { type: 'integer' } }, required: ['customers', 'numbers'] },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const batch: { customers?: Array<Record<string, string>>; numbers?: Array<Record<string, string>> } = {};
      const errors: ImportRowError[] = [];
      for (const file of ['customers', 'numbers'] as const) {
        const text = req.body[file];
        if (text === undefined) continue;
        try {
          batch[file] = parseCsv(text, file);
        } catch (e) {
          if (!(e instanceof CsvError)) throw e;
          errors.push({ file, row: 0, column: '', message: e.message });
        }
      }
      if (errors.length) throw new ApiError(400, errors.map((e) => e.message).join('; '), { errors });
      const r = await s.importBatch(batch);
      if (!r.ok) {
        const summary = r.errors
          .slice(0, 20)
          .map((e) => `${e.file} row ${e.row} ${e.column}: ${e.message}`)
          .join('; ');
        throw new ApiError(400, `import refused, nothing written: ${r.errors.length} error(s): ${summary}${r.errors.length > 20 ? '; …' : ''}`, {
          errors: r.errors,
        });
      }
      return { customers: r.customers, numbers: r.numbers };
    },
  );

  app.get<{ Querystring: { includePasswords?: boolean } }>(
    '/customers.csv',
    {
      schema: {
        tags: C,
        summary: 'Export customers as CSV (the import format); the password column only with includePasswords=true',
        querystring: passwordsOnly,
        produces: ['text/csv'],
        response: { 200: { type: 'string', description: 'CSV' }, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply
        .header('Content-Type', 'text/csv; charset=utf-8')
        .header('Content-Disposition', 'attachment; filename="customers.csv"')
        .send(await admin.customersCsv(req.query.includePasswords === true)),
  );

  app.get(
    '/numbers.csv',
    {
      schema: {
        tags: N,
        summary: 'Export numbers as CSV (the import format: number,is_range,customer)',
        produces: ['text/csv'],
        response: { 200: { type: 'string', description: 'CSV' }, ...errorResponses },
      },
    },
    async (_req, reply) =>
      reply
        .header('Content-Type', 'text/csv; charset=utf-8')
        .header('Content-Disposition', 'attachment; filename="numbers.csv"')
        .send(await admin.numbersCsv()),
  );
}
