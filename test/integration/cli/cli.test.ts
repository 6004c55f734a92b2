import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'fs';
import os from 'os';
import path from 'path';
import { answerChallenge } from '../../support/sip';
import { runCli as sipflow } from '../../support/cli';

const repo = path.join(__dirname, '../../..');
const seedFlow = path.join(repo, 'flows/registration.slid');
const registerCd = path.join(repo, 'examples/cd/register.json');

describe('sipflow CLI', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cli-'));
  const tmp = (name: string, text: string) => {
    const f = path.join(dataDir, name);
    writeFileSync(f, text);
    return f;
  };

  test('validate: the seed is clean (exit 0)', async () => {
    const r = await sipflow('validate', seedFlow);
    expect(r.code).toBe(0);
    expect(r.out).toContain('1 file(s): 0 error(s), 0 warning(s)');
  });

  test('validate: every problem located, exit 1', async () => {
    const bad = tmp(
      'bad.slid',
      JSON.stringify({
        7: {
          name: 'broken',
          nodes: {
            0: { id: 0, name: 'Start', type: 'enter.start', values: { next: 9 } },
            1: { id: 1, name: 'odd', type: 'analysis.nope', values: {} },
          },
        },
      }),
    );
    const r = await sipflow('validate', bad);
    expect(r.code).toBe(1);
    expect(r.out).toContain('/bad.slid › logic 7 "broken" › node 0 "Start" › values/next: points to missing node 9');
    expect(r.out).toContain('/bad.slid › logic 7 "broken" › node 1 "odd" › type: unknown node type "analysis.nope"');
    expect(r.out).toContain('2 error(s)');
  });

  test('validate: malformed JSON names line and column', async () => {
    const r = await sipflow('validate', tmp('syntax.slid', '{\n  "1": { "name": "x",, }\n}'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/syntax\.slid: invalid JSON at line 2, column \d+/);
  });

  test('db seed, then run: a nonce issued by one run verifies in the next (three passes)', async () => {
    expect((await sipflow('db', 'seed', '--data-dir', dataDir)).code).toBe(0);
    const first = await sipflow('run', seedFlow, '--logic', 'registration', '--cd', registerCd, '--data-dir', dataDir);
    expect(first.code).toBe(0);
    const challenge = JSON.parse(first.out);
    expect(challenge.outcome).toMatchObject({
      kind: 'challenge',
      status: 401,
      header: 'WWW-Authenticate',
      realm: 'nl.netaxis.be',
      qop: 'auth',
      algorithm: 'MD5',
      stale: false,
    });
    expect(existsSync(path.join(dataDir, 'nonce-secret'))).toBe(true);

    const cd = JSON.parse(readFileSync(registerCd, 'utf8'));
    cd.headers.Authorization = answerChallenge(challenge.outcome.challenges[0], {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    cd.headers.CSeq = '62651 REGISTER';
    const second = await sipflow('run', seedFlow, '--logic', '24', '--cd', tmp('cd2.json', JSON.stringify(cd)), '--data-dir', dataDir, '--trace');
    const result = JSON.parse(second.out);
    expect(result.outcome).toMatchObject({ kind: 'register', status: 200, bindings: [{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300 }] });
    expect(result.cd).toMatchObject({ authStatus: 1, authUsername: 'francesco', customer_name: 'Netaxis NL' });
    expect(result.trace.map((t: { exit: string }) => t.exit)).toContain('restart');
    // secrets are redacted as in the API answers, unless --reveal-secrets
    expect(result.cd.password).toBe('[redacted]');
    expect(result.cd.headers.authorization).toEqual(['[redacted]']);
    expect(second.out).not.toContain('123456');
    const revealed = JSON.parse(
      (
        await sipflow(
          'run',
          seedFlow,
          '--logic',
          '24',
          '--cd',
          tmp('cd3.json', JSON.stringify({ ...cd, headers: { ...cd.headers, 'Call-ID': 'reveal-1' } })),
          '--data-dir',
          dataDir,
          '--reveal-secrets',
        )
      ).out,
    );
    expect(revealed.cd.password).toBe('123456');
  });

  test('run: a call descriptor with wrong types is refused with its path', async () => {
    const r = await sipflow(
      'run',
      seedFlow,
      '--logic',
      '24',
      '--cd',
      tmp('bad-cd.json', JSON.stringify({ requestMethod: 'REGISTER', headers: 5 })),
      '--data-dir',
      dataDir,
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('invalid call descriptor: headers');
  });

  test('run: unknown logic lists the logics of the file', async () => {
    const r = await sipflow('run', seedFlow, '--logic', 'nope', '--cd', registerCd, '--data-dir', dataDir);
    expect(r.code).toBe(1);
    expect(r.err).toContain('has no logic "nope" (logics: 24 "registration")');
  });

  test('customers and numbers: add and list; passwords never printed', async () => {
    expect((await sipflow('customers', 'add', '--name', 'ACME', '--username', 'acme', '--password', 's3cret!', '--data-dir', dataDir)).code).toBe(0);
    expect((await sipflow('numbers', 'add', '--number', '0031201', '--range', '--customer', 'ACME', '--data-dir', dataDir)).code).toBe(0);
    const list = await sipflow('customers', 'list', '--search', 'ACME', '--data-dir', dataDir);
    expect(list.out).toContain('"name":"ACME"');
    expect(list.out).not.toContain('s3cret!');
    const numbers = await sipflow('numbers', 'list', '--customer', 'ACME', '--data-dir', dataDir);
    expect(numbers.out).toContain('"number":"0031201"');
    expect(numbers.out).toContain('"is_range":true');
  });

  test('import: all rows or none, each bad row listed', async () => {
    const customers = tmp('c.csv', 'name,username,password,aor\nPBX One,one,pw1,one@example.test\nPBX Two,two,pw2,two@example.test\n');
    const badNumbers = tmp('n-bad.csv', 'number,is_range,customer\n0101,false,PBX One\n0202,maybe,PBX Two\n0303,false,Nobody\n');
    const rejected = await sipflow('import', '--customers', customers, '--numbers', badNumbers, '--data-dir', dataDir);
    expect(rejected.code).toBe(1);
    expect(rejected.err).toMatch(/n-bad\.csv row 2 column is_range: /);
    expect(rejected.err).toMatch(/n-bad\.csv row 3 column customer: /);
    expect((await sipflow('customers', 'list', '--search', 'PBX', '--data-dir', dataDir)).out).toContain('0 of 0');

    const numbers = tmp('n.csv', 'number,is_range,customer\n0101,false,PBX One\n0202,true,PBX Two\n');
    const ok = await sipflow('import', '--customers', customers, '--numbers', numbers, '--data-dir', dataDir);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('imported 2 customer(s) and 2 number(s)');
  });

  test('import: malformed CSV names the file and line', async () => {
    const r = await sipflow('import', '--customers', tmp('broken.csv', 'name,username\n"unterminated,x\n'), '--data-dir', dataDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/broken\.csv: customers CSV, line \d+/);
  });
});

describe('sipflow config check', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cfg-'));
  test('a valid file passes, a bad one lists every key at fault', async () => {
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'sip:\n  domain: nl.netaxis.be\nlocation:\n  url: mongodb://10.0.12.146,10.0.12.147/kamailio?replicaSet=sre_location\n');
    const ok = await sipflow('config', 'check', good);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('OK (1 listener(s)');
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'sip:\n  listeners: []\nhttp:\n  port: -1\n  colour: blue\n');
    const r = await sipflow('config', 'check', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain('bad.yaml: invalid configuration');
    expect(r.err).toMatch(/sip\.listeners: /);
    expect(r.err).toMatch(/http\.port: /);
    expect(r.err).toContain('http.colour: unknown key(s)');
  });
});
