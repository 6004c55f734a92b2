/** Customers and numbers CRUD, search and paging, CSV import (all or nothing) and export. */
import { apiFixture, type Fixture } from './support';

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

const req = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
  f.call({ method, url, payload: payload as Record<string, unknown> | undefined });

describe('customers', () => {
  let id: number;
  test('create, read (password hidden unless asked), update, search, page', async () => {
    const c = await req('POST', '/api/v1/customers', { name: 'Acme', username: 'acme', password: ' s3cret ', aor: 'acme@pbx.example' });
    expect(c.statusCode).toBe(201);
    expect(c.json()).toEqual({ id: expect.any(Number), name: 'Acme', username: 'acme', aor: 'acme@pbx.example', hasPassword: true });
    id = c.json().id;
    expect((await req('GET', `/api/v1/customers/${id}`)).json().password).toBeUndefined();
    expect((await req('GET', `/api/v1/customers/${id}?includePasswords=true`)).json().password).toBe(' s3cret ');
    const u = await req('PUT', `/api/v1/customers/${id}`, { aor: 'acme@other.example', password: null });
    expect(u.statusCode).toBe(200);
    expect(u.json()).toMatchObject({ id, name: 'Acme', aor: 'acme@other.example', hasPassword: false });
    const list = (await req('GET', '/api/v1/customers?search=acm&limit=10')).json();
    expect(list).toMatchObject({ total: 1, limit: 10, offset: 0 });
    expect(list.rows[0].name).toBe('Acme');
    const all = (await req('GET', '/api/v1/customers?limit=1&offset=1')).json();
    expect(all.total).toBe(2); // the sample subscriber and Acme
    expect(all.rows).toHaveLength(1);
  });

  test('bad bodies and parameters → 400 naming the field; duplicates and unknown ids', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/api/v1/customers', { username: 'x' }, 'body/name: is required'],
      ['POST', '/api/v1/customers', { name: 'x', colour: 'red' }, 'body/colour: is not a known field'],
      ['POST', '/api/v1/customers', { name: '' }, 'body/name: must NOT have fewer than 1 characters'],
      ['PUT', `/api/v1/customers/${id}`, {}, 'body: must have at least 1 field(s)'],
      ['GET', '/api/v1/customers/abc', undefined, 'params/id: must be integer'],
      ['GET', '/api/v1/customers?limit=5000', undefined, 'querystring/limit: must be <= 1000'],
      ['GET', '/api/v1/customers?sort=name', undefined, 'querystring/sort: is not a known field'],
    ];
    for (const [method, url, payload, message] of cases) {
      const r = await req(method as 'GET', url, payload);
      expect({ url, payload, status: r.statusCode, message: r.json().message }).toEqual({ url, payload, status: 400, message });
    }
    const dup = await req('POST', '/api/v1/customers', { name: 'Acme' });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().message).toMatch(/already exists/);
    expect((await req('GET', '/api/v1/customers/999999')).statusCode).toBe(404);
    expect((await req('PUT', '/api/v1/customers/999999', { name: 'x' })).statusCode).toBe(404);
    expect((await req('DELETE', '/api/v1/customers/999999')).statusCode).toBe(404);
  });

  test('numbers: create by customer name or id, read, update, filter, delete; a customer with numbers cannot be deleted', async () => {
    const n = await req('POST', '/api/v1/numbers', { number: '+3220000', customer: 'Acme', is_range: true });
    expect(n.statusCode).toBe(201);
    expect(n.json()).toMatchObject({ number: '+3220000', is_range: true, customer_id: id, customer_name: 'Acme' });
    const nid = n.json().id;
    expect((await req('GET', `/api/v1/numbers/${nid}`)).json().number).toBe('+3220000');
    const moved = await req('PUT', `/api/v1/numbers/${nid}`, { customer: 1, is_range: false });
    expect(moved.json()).toMatchObject({ customer_id: 1, customer_name: 'Netaxis NL', is_range: false });
    const back = await req('PUT', `/api/v1/numbers/${nid}`, { customer: id });
    expect(back.json().customer_name).toBe('Acme');
    expect((await req('GET', '/api/v1/numbers?customer=Acme')).json()).toMatchObject({ total: 1 });
    expect((await req('GET', `/api/v1/numbers?customer=${id}&search=3220`)).json().total).toBe(1);
    expect((await req('GET', '/api/v1/numbers?search=nothing-like-it')).json().total).toBe(0);

    expect((await req('POST', '/api/v1/numbers', { number: '+32 1', customer: 'Acme' })).json().message).toBe('body/number: must match pattern "^\\S+$"');
    expect((await req('POST', '/api/v1/numbers', { number: '+321', customer: 'Nobody' })).json().message).toMatch(/unknown customer "Nobody"/);
    expect((await req('PUT', `/api/v1/numbers/${nid}`, { customer: 'Nobody' })).statusCode).toBe(400);

    const refused = await req('DELETE', `/api/v1/customers/${id}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toMatch(/still has 1 number/);
    expect((await req('DELETE', `/api/v1/numbers/${nid}`)).statusCode).toBe(204);
    expect((await req('GET', `/api/v1/numbers/${nid}`)).statusCode).toBe(404);
    expect((await req('DELETE', `/api/v1/customers/${id}`)).statusCode).toBe(204);
    expect((await req('GET', `/api/v1/customers/${id}`)).statusCode).toBe(404);
  });
});

describe('CSV import and export', () => {
  const customers = 'name,username,password,aor\r\nBeta BV,beta,"pw,1",beta@pbx\r\nGamma,gamma,,\r\n';
  const numbers = 'number,is_range,customer\n+3140,true,Beta BV\n+3141,false,Gamma\n+3142,,Netaxis NL\n';

  test('all rows or none: one bad row refuses the whole batch with every row error', async () => {
    const r = await req('POST', '/api/v1/import', {
      customers: 'name,username\nDelta,delta\n,nobody\n',
      numbers: 'number,customer\n+3150,Delta\n+3151,Nowhere\n000112233,Delta\n',
    });
    expect(r.statusCode).toBe(400);
    const body = r.json();
    expect(body.message).toMatch(/^import refused, nothing written: 3 error\(s\)/);
    expect(body.errors).toEqual([
      { file: 'customers', row: 2, column: 'name', message: expect.any(String) },
      { file: 'numbers', row: 2, column: 'customer', message: expect.stringMatching(/unknown customer "Nowhere"/) },
      { file: 'numbers', row: 3, column: 'number', message: expect.stringMatching(/already exists/) },
    ]);
    expect((await req('GET', '/api/v1/customers?search=Delta')).json().total).toBe(0);
  });

  test('a malformed CSV names its line; an empty body is refused', async () => {
    const r = await req('POST', '/api/v1/import', { numbers: 'number,colour\n1,red\n' });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/^numbers CSV, line 1 \(header\): unknown column\(s\) colour/);
    expect(r.json().errors[0]).toMatchObject({ file: 'numbers', row: 0 });
    const empty = await req('POST', '/api/v1/import', {});
    expect(empty.json().message).toBe('body: must have at least 1 field(s)');
    const wrongType = await req('POST', '/api/v1/import', { customers: { name: 'x' } });
    expect(wrongType.json().message).toBe('body/customers: must be string');
  });

  test('import, then export in the import format (passwords only when asked); the export re-imports', async () => {
    const r = await req('POST', '/api/v1/import', { customers, numbers });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ customers: 2, numbers: 3 });

    const csv = await req('GET', '/api/v1/customers.csv');
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe('attachment; filename="customers.csv"');
    expect(csv.body).toBe('name,username,aor\r\nNetaxis NL,francesco,francesco@nl.netaxis.be\r\nBeta BV,beta,beta@pbx\r\nGamma,gamma,\r\n');
    const withPw = await req('GET', '/api/v1/customers.csv?includePasswords=true');
    expect(withPw.body).toBe(
      'name,username,password,aor\r\nNetaxis NL,francesco,123456,francesco@nl.netaxis.be\r\nBeta BV,beta,"pw,1",beta@pbx\r\nGamma,gamma,,\r\n',
    );
    const nums = await req('GET', '/api/v1/numbers.csv');
    expect(nums.body).toBe('number,is_range,customer\r\n000112233,false,Netaxis NL\r\n+3140,true,Beta BV\r\n+3141,false,Gamma\r\n+3142,false,Netaxis NL\r\n');

    // The export is the import format: into a fresh directory, it loads as is.
    const g = await apiFixture();
    try {
      const again = await g.call({
        method: 'POST',
        url: '/api/v1/import',
        payload: {
          customers: withPw.body
            .split('\r\n')
            .filter((l) => !l.startsWith('Netaxis NL'))
            .join('\r\n'),
          numbers: nums.body
            .split('\r\n')
            .filter((l) => !l.startsWith('000112233'))
            .join('\r\n'),
        },
      });
      expect(again.json()).toEqual({ customers: 2, numbers: 3 });
      expect((await g.call({ method: 'GET', url: '/api/v1/customers.csv?includePasswords=true' })).body).toBe(withPw.body);
    } finally {
      await g.close();
    }
  });
});
