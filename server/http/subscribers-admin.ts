/**
 * What the HTTP API needs beyond `Subscribers` (services/directory/subscribers.ts, which adds,
 * lists and imports): read one, update, delete, and CSV export. Same tables, same DirectoryError
 * kinds, so the API maps every failure the same way.
 */
import type { Knex } from 'knex';
import { DirectoryError, toDirectoryError, type Customer, type CustomerNumber, type Subscribers } from '../../services/directory';

const CUSTOMERS = 'registration.customers';
const NUMBERS = 'registration.customer_numbers';

export class NotFoundError extends Error {
  readonly status = 404;
}
export class ConflictError extends Error {
  readonly status = 409;
}

export interface CustomerPatch {
  name?: string;
  username?: string | null;
  password?: string | null;
  aor?: string | null;
}
export interface NumberPatch {
  number?: string;
  is_range?: boolean;
  customer?: number | string;
}

export interface SubscribersAdmin {
  getCustomer(id: number): Promise<Customer>;
  updateCustomer(id: number, patch: CustomerPatch): Promise<Customer>;
  /** Refuses (409) while numbers still belong to the customer. */
  deleteCustomer(id: number): Promise<void>;
  getNumber(id: number): Promise<CustomerNumber>;
  updateNumber(id: number, patch: NumberPatch): Promise<CustomerNumber>;
  deleteNumber(id: number): Promise<void>;
  customersCsv(includePasswords: boolean): Promise<string>;
  numbersCsv(): Promise<string>;
}

/** RFC 4180: quote a cell holding a comma, quote, CR/LF or edge spaces (passwords keep theirs). */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
const csvLine = (cells: unknown[]) => cells.map(csvCell).join(',') + '\r\n';

const clean = (v: string | null | undefined) => (v == null || v.trim() === '' ? null : v.trim());

/** `onWrite` is called after every update or delete, committed or failed (runtime: DirectoryChanges.changed). */
export function createSubscribersAdmin(knex: Knex, subscribers: Subscribers, onWrite?: () => void): SubscribersAdmin {
  /** Runs a write, then tells the caches of directory reads (also after a failure: it may have committed). */
  async function writing<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await guarded(what, fn);
    } finally {
      onWrite?.();
    }
  }
  async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ConflictError || err instanceof DirectoryError) throw err;
      const e = err as { code?: string; detail?: string };
      if (e?.code === '23505') throw new ConflictError(`${what}: already exists (${e.detail ?? 'unique constraint'})`);
      if (e?.code === '23503') throw new ConflictError(`${what}: still referenced (${e.detail ?? 'foreign key'})`);
      throw toDirectoryError(err, what);
    }
  }

  const customerCols = ['id', 'name', 'username', 'password', 'aor'];
  async function getCustomer(id: number, db: Knex | Knex.Transaction = knex): Promise<Customer> {
    const row = (await db(CUSTOMERS).where({ id }).first(customerCols)) as Customer | undefined;
    if (!row) throw new NotFoundError(`no customer ${id}`);
    return row;
  }
  async function getNumber(id: number, db: Knex | Knex.Transaction = knex): Promise<CustomerNumber> {
    const row = (await db(`${NUMBERS} as n`)
      .join(`${CUSTOMERS} as c`, 'c.id', 'n.customer_id')
      .where('n.id', id)
      .first('n.id', 'n.number', 'n.is_range', 'n.customer_id', { customer_name: 'c.name' })) as CustomerNumber | undefined;
    if (!row) throw new NotFoundError(`no number ${id}`);
    return row;
  }
  async function customerIdOf(db: Knex | Knex.Transaction, ref: number | string): Promise<number> {
    const byName = typeof ref === 'string' ? ((await db(CUSTOMERS).where({ name: ref.trim() }).first('id')) as { id: number } | undefined) : undefined;
    if (byName) return byName.id;
    const id = typeof ref === 'number' ? ref : /^\d{1,9}$/.test(ref.trim()) ? Number(ref.trim()) : undefined;
    if (id !== undefined && (await db(CUSTOMERS).where({ id }).first('id'))) return id;
    throw new DirectoryError(`customer: unknown customer ${JSON.stringify(ref)}`, 'invalid');
  }

  return {
    getCustomer: (id) => guarded('get customer', () => getCustomer(id)),
    updateCustomer: (id, patch) =>
      writing('update customer', () =>
        knex.transaction(async (trx) => {
          await getCustomer(id, trx);
          const set: Record<string, unknown> = {};
          if (patch.name !== undefined) {
            if (patch.name.trim() === '') throw new DirectoryError('customer: name must not be empty', 'invalid');
            set.name = patch.name.trim();
          }
          if (patch.username !== undefined) set.username = clean(patch.username);
          if (patch.aor !== undefined) set.aor = clean(patch.aor);
          // Passwords are kept byte for byte (as the import does).
          if (patch.password !== undefined) set.password = patch.password === '' ? null : patch.password;
          if (Object.keys(set).length) await trx(CUSTOMERS).where({ id }).update(set);
          return getCustomer(id, trx);
        }),
      ),
    deleteCustomer: (id) =>
      writing('delete customer', () =>
        knex.transaction(async (trx) => {
          await getCustomer(id, trx);
          const { n } = (await trx(NUMBERS).where({ customer_id: id }).count({ n: '*' }).first()) as { n: string | number };
          if (Number(n) > 0) throw new ConflictError(`customer ${id} still has ${n} number(s): delete or move them first`);
          await trx(CUSTOMERS).where({ id }).delete();
        }),
      ),
    getNumber: (id) => guarded('get number', () => getNumber(id)),
    updateNumber: (id, patch) =>
      writing('update number', () =>
        knex.transaction(async (trx) => {
          await getNumber(id, trx);
          const set: Record<string, unknown> = {};
          if (patch.number !== undefined) {
            const n = patch.number.trim();
            if (n === '' || /\s/.test(n)) throw new DirectoryError('number: must not be empty nor contain spaces', 'invalid');
            set.number = n;
          }
          if (patch.is_range !== undefined) set.is_range = patch.is_range;
          if (patch.customer !== undefined) set.customer_id = await customerIdOf(trx, patch.customer);
          if (Object.keys(set).length) await trx(NUMBERS).where({ id }).update(set);
          return getNumber(id, trx);
        }),
      ),
    deleteNumber: (id) =>
      writing('delete number', async () => {
        await getNumber(id);
        await knex(NUMBERS).where({ id }).delete();
      }),

    async customersCsv(includePasswords) {
      const header = includePasswords ? ['name', 'username', 'password', 'aor'] : ['name', 'username', 'aor'];
      let out = csvLine(header);
      for (let offset = 0; ; offset += 1000) {
        const page = await subscribers.listCustomers({ limit: 1000, offset });
        for (const c of page.rows) out += csvLine(header.map((h) => c[h as keyof Customer]));
        if (page.rows.length < 1000) break;
      }
      return out;
    },
    async numbersCsv() {
      let out = csvLine(['number', 'is_range', 'customer']);
      for (let offset = 0; ; offset += 1000) {
        const page = await subscribers.listNumbers({ limit: 1000, offset });
        for (const n of page.rows) out += csvLine([n.number, n.is_range ? 'true' : 'false', n.customer_name]);
        if (page.rows.length < 1000) break;
      }
      return out;
    },
  };
}
