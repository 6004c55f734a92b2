/**
 * Subscriber repository (customers and their numbers) for the CLI and the HTTP API: single
 * additions, paged listings, and an all-or-nothing batch import that validates every row first
 * and reports every problem at once, as a spreadsheet user needs to fix a file in one go.
 * Passwords are stored as given (the note's clear-text column) and never put in a message.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { parse } from 'csv-parse/sync';
import { DirectoryError } from './types';
import { toDirectoryError } from './errors';

const CUSTOMERS = 'registration.customers';
const NUMBERS = 'registration.customer_numbers';
/** Rows per INSERT / lookup: far below PostgreSQL's 65535 bind parameters. */
const CHUNK = 1000;

export interface Customer {
  id: number;
  name: string;
  username: string | null;
  password: string | null;
  aor: string | null;
}

export interface CustomerNumber {
  id: number;
  number: string;
  is_range: boolean;
  customer_id: number;
  customer_name: string;
}

export interface Page<T> {
  rows: T[];
  total: number;
}

export interface ListOptions {
  search?: string;
  limit?: number;
  offset?: number;
}

export type ImportFile = 'customers' | 'numbers';

export interface ImportRowError {
  file: ImportFile;
  /** 1-based data row (the header is not counted). */
  row: number;
  column: string;
  message: string;
}

export type ImportResult = { ok: true; customers: number; numbers: number } | { ok: false; errors: ImportRowError[] };

/** Raw rows as read from CSV (strings) or JSON (strings, numbers, booleans). */
export type RawRow = Record<string, unknown>;

// ---------------------------------------------------------------- validation

/** Empty cells mean NULL for the note's nullable columns. */
const optionalText = z
  .string()
  .nullish()
  .transform((v) => (v == null || v.trim() === '' ? null : v.trim()));
/** Passwords are kept byte for byte: a leading or trailing space may be part of them. */
const optionalPassword = z
  .string()
  .nullish()
  .transform((v) => (v == null || v === '' ? null : v));

const booleanish = z
  .union([z.boolean(), z.number(), z.string()])
  .nullish()
  .transform((v, ctx) => {
    if (v == null || v === '') return false;
    if (typeof v === 'boolean') return v;
    const w = String(v).trim().toLowerCase();
    if (['true', 't', '1', 'yes', 'y'].includes(w)) return true;
    if (['false', 'f', '0', 'no', 'n'].includes(w)) return false;
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  });

const customerRow = z.strictObject({
  name: z.string({ error: 'is required' }).trim().min(1, 'must not be empty'),
  username: optionalText,
  password: optionalPassword,
  aor: optionalText,
});

const numberRow = z.strictObject({
  number: z.string({ error: 'is required' }).trim().min(1, 'must not be empty').regex(/^\S+$/, 'must not contain spaces'),
  is_range: booleanish,
  /** A customer id, or a customer name (of this batch or already in the directory). */
  customer: z.union([z.number().int().positive(), z.string().trim().min(1, 'must not be empty')], { error: 'is required (customer name or id)' }),
});

export type NewCustomer = z.input<typeof customerRow>;
export type NewNumber = z.input<typeof numberRow>;
type CustomerRow = z.output<typeof customerRow>;
type NumberRow = z.output<typeof numberRow>;

function issuesOf(file: ImportFile, row: number, error: z.ZodError): ImportRowError[] {
  return error.issues.map((issue) => ({
    file,
    row,
    column: issue.code === 'unrecognized_keys' ? issue.keys.join(',') : String(issue.path[0] ?? ''),
    message: issue.message,
  }));
}

function invalid(message: string): DirectoryError {
  return new DirectoryError(message, 'invalid');
}

// ---------------------------------------------------------------- CSV

export const CSV_COLUMNS: Record<ImportFile, { required: string[]; optional: string[] }> = {
  customers: { required: ['name'], optional: ['username', 'password', 'aor'] },
  numbers: { required: ['number', 'customer'], optional: ['is_range'] },
};

export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

/** Parses a customers or numbers CSV (header row required); malformed input throws CsvError with its line. */
export function parseCsv(text: string, file: ImportFile): Array<Record<string, string>> {
  const { required, optional } = CSV_COLUMNS[file];
  let records: string[][];
  try {
    // Files edited on several systems mix line endings: accept all three.
    records = parse(text, { bom: true, skip_empty_lines: true, record_delimiter: ['\r\n', '\n', '\r'] });
  } catch (err) {
    const e = err as { lines?: number; message?: string };
    throw new CsvError(`${file} CSV, line ${e.lines ?? '?'}: ${e.message ?? String(err)}`, e.lines ?? 0);
  }
  if (records.length === 0) throw new CsvError(`${file} CSV: missing header row (${[...required, ...optional].join(',')})`, 1);
  const header = records[0].map((h) => h.trim().toLowerCase());
  const unknown = header.filter((h) => !required.includes(h) && !optional.includes(h));
  const missing = required.filter((h) => !header.includes(h));
  const repeated = header.filter((h, i) => header.indexOf(h) !== i);
  if (unknown.length || missing.length || repeated.length) {
    const problems = [
      unknown.length ? `unknown column(s) ${unknown.join(', ')}` : '',
      missing.length ? `missing column(s) ${missing.join(', ')}` : '',
      repeated.length ? `repeated column(s) ${repeated.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    throw new CsvError(`${file} CSV, line 1 (header): ${problems}; expected ${[...required, ...optional].join(',')}`, 1);
  }
  return records.slice(1).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
}

// ---------------------------------------------------------------- repository

export interface Subscribers {
  addCustomer(input: NewCustomer): Promise<Customer>;
  listCustomers(options?: ListOptions): Promise<Page<Customer>>;
  addNumber(input: NewNumber): Promise<CustomerNumber>;
  listNumbers(options?: ListOptions & { customer?: number | string }): Promise<Page<CustomerNumber>>;
  /** Validates every row, then writes everything in one transaction, or nothing when any row is wrong. */
  importBatch(batch: { customers?: RawRow[]; numbers?: RawRow[] }): Promise<ImportResult>;
}

export interface SubscribersOptions {
  /**
   * Called after every write (add, import), committed or failed: the runtime passes its
   * DirectoryChanges.changed (changes.ts), so caches of directory reads forget.
   */
  onWrite?: () => void;
}

export function createSubscribers(knex: Knex, o: SubscribersOptions = {}): Subscribers {
  const onWrite = o.onWrite;
  /** Runs a write, then tells the caches (also after a failure: it may have committed). */
  async function writing<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      onWrite?.();
    }
  }

  /** Runs `fn`, turning driver failures into DirectoryErrors (unique violations name the duplicate). */
  async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { code?: string; detail?: string };
      if (e?.code === '23505') throw invalid(`${what}: already exists (${e.detail ?? 'unique constraint'})`);
      throw toDirectoryError(err, what);
    }
  }

  /** Finds customers by name and by id; `refs` are the raw references of numbers rows. */
  async function lookupCustomers(db: Knex | Knex.Transaction, names: string[], ids: number[]) {
    const byName = new Map<string, number>();
    const byId = new Set<number>();
    for (let i = 0; i < names.length; i += CHUNK) {
      const rows: Array<{ id: number; name: string }> = await db(CUSTOMERS)
        .select('id', 'name')
        .whereIn('name', names.slice(i, i + CHUNK));
      for (const r of rows) byName.set(r.name, r.id);
    }
    for (let i = 0; i < ids.length; i += CHUNK) {
      const rows: Array<{ id: number }> = await db(CUSTOMERS)
        .select('id')
        .whereIn('id', ids.slice(i, i + CHUNK));
      for (const r of rows) byId.add(r.id);
    }
    return { byName, byId };
  }

  /** Name first (a customer may well be called "2024"), then a numeric id. */
  function resolveRef(ref: string | number, byName: Map<string, number>, byId: Set<number>): number | undefined {
    if (typeof ref === 'number') return byId.has(ref) ? ref : undefined;
    const named = byName.get(ref);
    if (named !== undefined) return named;
    return /^\d+$/.test(ref) && byId.has(Number(ref)) ? Number(ref) : undefined;
  }

  const refIds = (refs: Array<string | number>) => refs.flatMap((r) => (typeof r === 'number' ? [r] : /^\d{1,9}$/.test(r) ? [Number(r)] : []));

  async function listPage<T>(
    base: Knex.QueryBuilder,
    select: (qb: Knex.QueryBuilder) => Knex.QueryBuilder,
    order: string,
    options: ListOptions,
  ): Promise<Page<T>> {
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? 50), 0), 10_000);
    const offset = Math.max(Math.trunc(options.offset ?? 0), 0);
    const [{ total }] = (await base.clone().count({ total: '*' })) as Array<{ total: string | number }>;
    const rows = (await select(base.clone()).orderBy(order).limit(limit).offset(offset)) as T[];
    return { rows, total: Number(total) };
  }

  const likeAny = (search: string) => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

  return {
    async addCustomer(input) {
      const parsed = customerRow.safeParse(input);
      if (!parsed.success) throw invalid(`customer: ${describe(issuesOf('customers', 1, parsed.error))}`);
      return guarded('add customer', () =>
        writing(async () => {
          const [row] = await knex(CUSTOMERS).insert(parsed.data).returning(['id', 'name', 'username', 'password', 'aor']);
          return row as Customer;
        }),
      );
    },

    listCustomers(options = {}) {
      return guarded('list customers', () => {
        const base = knex(CUSTOMERS);
        if (options.search) {
          const p = likeAny(options.search);
          base.where((b) => b.whereILike('name', p).orWhereILike('username', p).orWhereILike('aor', p));
        }
        return listPage<Customer>(base, (qb) => qb.select('id', 'name', 'username', 'password', 'aor'), 'id', options);
      });
    },

    async addNumber(input) {
      const parsed = numberRow.safeParse(input);
      if (!parsed.success) throw invalid(`number: ${describe(issuesOf('numbers', 1, parsed.error))}`);
      const { number, is_range, customer } = parsed.data;
      return guarded('add number', () =>
        writing(async () => {
          const { byName, byId } = await lookupCustomers(knex, typeof customer === 'string' ? [customer] : [], refIds([customer]));
          const customerId = resolveRef(customer, byName, byId);
          if (customerId === undefined) throw invalid(`add number: unknown customer ${JSON.stringify(customer)}`);
          const [row] = await knex(NUMBERS).insert({ number, is_range, customer_id: customerId }).returning(['id', 'number', 'is_range', 'customer_id']);
          const { name } = (await knex(CUSTOMERS).where({ id: customerId }).first('name')) as { name: string };
          return { ...(row as Omit<CustomerNumber, 'customer_name'>), customer_name: name };
        }),
      );
    },

    listNumbers(options = {}) {
      return guarded('list numbers', () => {
        const base = knex(`${NUMBERS} as n`).join(`${CUSTOMERS} as c`, 'c.id', 'n.customer_id');
        if (options.search) base.whereILike('n.number', likeAny(options.search));
        if (typeof options.customer === 'number') base.where('c.id', options.customer);
        else if (options.customer) base.where('c.name', options.customer);
        return listPage<CustomerNumber>(
          base,
          (qb) => qb.select('n.id', 'n.number', 'n.is_range', 'n.customer_id', { customer_name: 'c.name' }),
          'n.id',
          options,
        );
      });
    },

    async importBatch(batch) {
      const errors: ImportRowError[] = [];
      const customers: Array<{ row: number; data: CustomerRow }> = [];
      const numbers: Array<{ row: number; data: NumberRow }> = [];
      (batch.customers ?? []).forEach((raw, i) => {
        const r = customerRow.safeParse(raw);
        if (r.success) customers.push({ row: i + 1, data: r.data });
        else errors.push(...issuesOf('customers', i + 1, r.error));
      });
      (batch.numbers ?? []).forEach((raw, i) => {
        const r = numberRow.safeParse(raw);
        if (r.success) numbers.push({ row: i + 1, data: r.data });
        else errors.push(...issuesOf('numbers', i + 1, r.error));
      });

      errors.push(
        ...duplicatesWithin(
          'customers',
          'name',
          customers.map((c) => ({ row: c.row, key: c.data.name })),
        ),
      );
      errors.push(
        ...duplicatesWithin(
          'numbers',
          'number',
          numbers.map((n) => ({ row: n.row, key: n.data.number })),
        ),
      );

      return guarded('import', () =>
        writing(() =>
          knex.transaction(async (trx) => {
            // Checks against the database run inside the transaction that writes, so they see what it writes over.
            const existingNames = await existing(
              trx,
              CUSTOMERS,
              'name',
              customers.map((c) => c.data.name),
            );
            for (const c of customers) {
              if (existingNames.has(c.data.name)) {
                errors.push({ file: 'customers', row: c.row, column: 'name', message: `customer "${c.data.name}" already exists in the directory` });
              }
            }
            const existingNumbers = await existing(
              trx,
              NUMBERS,
              'number',
              numbers.map((n) => n.data.number),
            );
            for (const n of numbers) {
              if (existingNumbers.has(n.data.number)) {
                errors.push({ file: 'numbers', row: n.row, column: 'number', message: `number ${n.data.number} already exists in the directory` });
              }
            }
            const batchNames = new Set(customers.map((c) => c.data.name));
            const refs = numbers.map((n) => n.data.customer);
            const { byName, byId } = await lookupCustomers(
              trx,
              refs.filter((r): r is string => typeof r === 'string' && !batchNames.has(r)),
              refIds(refs),
            );
            for (const n of numbers) {
              const ref = n.data.customer;
              const known = (typeof ref === 'string' && batchNames.has(ref)) || resolveRef(ref, byName, byId) !== undefined;
              if (!known) {
                errors.push({
                  file: 'numbers',
                  row: n.row,
                  column: 'customer',
                  message: `unknown customer ${JSON.stringify(ref)} (not in this batch nor in the directory)`,
                });
              }
            }
            if (errors.length > 0) {
              errors.sort((a, b) => (a.file === b.file ? a.row - b.row : a.file === 'customers' ? -1 : 1));
              return { ok: false as const, errors };
            }

            const newIds = new Map<string, number>();
            for (let i = 0; i < customers.length; i += CHUNK) {
              const inserted: Array<{ id: number; name: string }> = await trx(CUSTOMERS)
                .insert(customers.slice(i, i + CHUNK).map((c) => c.data))
                .returning(['id', 'name']);
              for (const r of inserted) newIds.set(r.name, r.id);
            }
            const rows = numbers.map((n) => {
              const ref = n.data.customer;
              const customerId = (typeof ref === 'string' ? newIds.get(ref) : undefined) ?? resolveRef(ref, byName, byId);
              return { number: n.data.number, is_range: n.data.is_range, customer_id: customerId as number };
            });
            for (let i = 0; i < rows.length; i += CHUNK) await trx(NUMBERS).insert(rows.slice(i, i + CHUNK));
            return { ok: true as const, customers: customers.length, numbers: rows.length };
          }),
        ),
      );
    },
  };
}

function duplicatesWithin(file: ImportFile, column: string, rows: Array<{ row: number; key: string }>): ImportRowError[] {
  const first = new Map<string, number>();
  const errors: ImportRowError[] = [];
  for (const { row, key } of rows) {
    const seen = first.get(key);
    if (seen === undefined) first.set(key, row);
    else errors.push({ file, row, column, message: `duplicate ${column} "${key}" (already in row ${seen})` });
  }
  return errors;
}

async function existing(db: Knex.Transaction, table: string, column: string, values: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < values.length; i += CHUNK) {
    const rows: Array<Record<string, string>> = await db(table)
      .select(column)
      .whereIn(column, values.slice(i, i + CHUNK));
    for (const r of rows) found.add(r[column]);
  }
  return found;
}

function describe(errors: ImportRowError[]): string {
  return errors.map((e) => `${e.column || '(row)'} ${e.message}`).join('; ');
}
