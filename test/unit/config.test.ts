import { mkdirSync, mkdtempSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import {
  ConfigError,
  configJsonSchema,
  configReference,
  directoryCacheSec,
  EMBEDDED_COMMIT_DELAY_MS,
  envName,
  loadConfig,
  locationCommitDelayMs,
  locationMode,
  parseConfig,
} from '../../server/config';
import { serveConfig } from '../../cli/serve';
import { calendarClock } from '../../server/calendar';

const problemsOf = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(text, 'sipflow.yaml', env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  test('no file: the embedded defaults', () => {
    const c = parseConfig('', 'defaults');
    expect(c.sip.listeners).toEqual([{ name: 'default', host: '0.0.0.0', port: 5060, transports: ['udp', 'tcp'] }]);
    expect(c.location.url).toBe('sql');
    expect(c.directory.url).toBeUndefined();
    expect(c.auth).toEqual({ nonceLifetimeSec: 300, algorithms: ['MD5'] });
    expect(c.limits).toEqual({ maxTransitions: 1000, maxRestarts: 2, maxCallDepth: 16 });
    expect(c.sip.loopGuard).toEqual({ maxOccurrences: 10, windowSec: 5 });
    expect(c.http).toMatchObject({ enabled: true, host: '127.0.0.1', port: 8080 });
  });

  test('overload: shed new work is dropped by default; above 0 it is answered 503 with a Retry-After; out of range names the key', () => {
    expect(parseConfig('', 'defaults').sip).toMatchObject({ shedAfterMs: 200, shedRetryAfterSec: 0 });
    expect(parseConfig('', 'x', { SIPFLOW_SIP_SHED_RETRY_AFTER_SEC: '5' }).sip.shedRetryAfterSec).toBe(5);
    expect(problemsOf('sip: {shedRetryAfterSec: -1}')).toEqual([expect.stringMatching(/^sip\.shedRetryAfterSec: .*0/)]);
    expect(problemsOf('sip: {shedRetryAfterSec: 3601}')).toEqual([expect.stringMatching(/^sip\.shedRetryAfterSec: .*3600/)]);
    expect(problemsOf('sip: {shedRetryAfterSec: 1.5}')).toEqual([expect.stringMatching(/^sip\.shedRetryAfterSec: .*expected int/)]);
  });

  test('the embedded directory caches and keeps its bindings write-through by default; PostgreSQL does neither unless told', () => {
    const of = (text: string) => {
      const c = parseConfig(text, 'sipflow.yaml');
      return [directoryCacheSec(c), locationMode(c)];
    };
    // PGlite (the default, a path, memory://): only this process writes it
    expect(of('')).toEqual([3600, 'write-through']);
    expect(of('directory: { url: /var/lib/sipflow/directory }')).toEqual([3600, 'write-through']);
    expect(of('directory: { url: "memory://" }')).toEqual([3600, 'write-through']);
    // a shared PostgreSQL: other processes write the directory and the bindings
    expect(of('directory: { url: "postgres://u:p@db/sipflow" }')).toEqual([0, 'db-only']);
    expect(of('directory: { url: "postgres://u:p@db/sipflow" }\nlocation: { url: "postgres://u:p@db/kamailio" }')).toEqual([0, 'db-only']);
    // bindings elsewhere than the embedded directory: shared, db-only by default
    expect(of('location: { url: "postgres://u:p@db/kamailio" }')).toEqual([3600, 'db-only']);
    expect(of('location: { url: "mongodb://a,b,c/kamailio?replicaSet=rs" }')).toEqual([3600, 'db-only']);
    // what the operator sets wins
    expect(of('directory: { cacheSec: 0 }\nlocation: { mode: db-only }')).toEqual([0, 'db-only']);
    expect(of('directory: { url: "postgres://u:p@db/sipflow", cacheSec: 30 }\nlocation: { mode: write-through }')).toEqual([30, 'write-through']);
  });

  test('binding writes wait for company on the embedded PGlite only, unless told; out of range names the key', () => {
    const delay = (text: string, env: Record<string, string> = {}) => locationCommitDelayMs(parseConfig(text, 'sipflow.yaml', env));
    expect(EMBEDDED_COMMIT_DELAY_MS).toBe(10);
    // the embedded directory's location (url "sql" on PGlite): every statement costs the receiving thread
    expect(delay('')).toBe(EMBEDDED_COMMIT_DELAY_MS);
    expect(delay('directory: { url: /var/lib/sipflow/directory }')).toBe(EMBEDDED_COMMIT_DELAY_MS);
    // PostgreSQL, MongoDB, memory: at once
    expect(delay('directory: { url: "postgres://u:p@db/sipflow" }')).toBe(0);
    expect(delay('location: { url: "postgres://u:p@db/kamailio" }')).toBe(0);
    expect(delay('location: { url: "mongodb://a,b,c/kamailio?replicaSet=rs" }')).toBe(0);
    expect(delay('location: { url: memory }')).toBe(0);
    // what the operator sets wins, from the file or the environment
    expect(delay('location: { commitDelayMs: 0 }')).toBe(0);
    expect(delay('directory: { url: "postgres://u:p@db/sipflow" }\nlocation: { commitDelayMs: 5 }')).toBe(5);
    expect(delay('', { SIPFLOW_LOCATION_COMMIT_DELAY_MS: '3' })).toBe(3);
    expect(problemsOf('location: { commitDelayMs: 101 }')).toEqual([expect.stringMatching(/^location\.commitDelayMs: .*100/)]);
    expect(problemsOf('location: { commitDelayMs: -1 }')).toEqual([expect.stringMatching(/^location\.commitDelayMs: .*0/)]);
    expect(problemsOf('location: { commitDelayMs: 2.5 }')).toEqual([expect.stringMatching(/^location\.commitDelayMs: .*expected int/)]);
  });

  test('YAML and JSON both parse; nested defaults fill in', () => {
    const yaml = parseConfig('sip:\n  domain: nl.netaxis.be\n  listeners:\n    - port: 5070\n', 'a.yaml');
    expect(yaml.sip.domain).toBe('nl.netaxis.be');
    expect(yaml.sip.listeners[0]).toEqual({ name: 'default', host: '0.0.0.0', port: 5070, transports: ['udp', 'tcp'] });
    expect(parseConfig('{"location": {"url": "mongodb://a,b,c/kamailio?replicaSet=sre_location"}}', 'a.json').location.url).toContain('replicaSet');
  });

  test('MongoDB location write batches: chosen by server ("auto") by default, or set, bounds named', () => {
    const c = parseConfig('{}', 'a.json');
    expect([c.location.writeBatch, c.location.writesInFlight]).toEqual(['auto', 'auto']);
    const explicitAuto = parseConfig('location: { writeBatch: auto, writesInFlight: auto }', 'a.yaml');
    expect([explicitAuto.location.writeBatch, explicitAuto.location.writesInFlight]).toEqual(['auto', 'auto']);
    const fromEnv = parseConfig('{}', 'a.json', { SIPFLOW_LOCATION_WRITE_BATCH: '1', SIPFLOW_LOCATION_WRITES_IN_FLIGHT: '16' });
    expect([fromEnv.location.writeBatch, fromEnv.location.writesInFlight]).toEqual([1, 16]);
    const ferret = parseConfig('location: { url: "mongodb://h/k", writeBatch: 1, writesInFlight: 8 }', 'a.yaml');
    expect([ferret.location.writeBatch, ferret.location.writesInFlight]).toEqual([1, 8]);
    expect(problemsOf('location: { writeBatch: 0, writesInFlight: 65 }\n')).toEqual([
      expect.stringMatching(/^location\.writeBatch: .*>=1/),
      expect.stringMatching(/^location\.writesInFlight: .*<=64/),
    ]);
  });

  test('every error names its key and says what is expected', () => {
    const problems = problemsOf('sip:\n  listeners:\n    - port: 99999\n  bogus: 1\nlocation: {url: 5}\nauth: {algorithms: [SHA-1]}\n');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^sip\.listeners\.0\.port: .*65535/),
        'sip.bogus: unknown key(s)',
        expect.stringMatching(/^location\.url: .*string/),
        expect.stringMatching(/^auth\.algorithms\.0: .*"MD5"/),
      ]),
    );
  });

  test('malformed YAML is a ConfigError naming the file', () => {
    expect(() => parseConfig('sip: [unclosed', 'broken.yaml')).toThrow(/broken\.yaml: invalid configuration/);
  });

  test('environment overrides, typed by the schema', () => {
    const c = parseConfig('sip: {domain: a.example}', 'x', {
      SIPFLOW_SIP_DOMAIN: 'nl.netaxis.be',
      SIPFLOW_AUTH_ALGORITHMS: 'SHA-256,MD5',
      SIPFLOW_HTTP_PORT: '9000',
      SIPFLOW_SIP_RECORD_ROUTE: 'true',
      SIPFLOW_LOCATION_URL: 'memory',
      SIPFLOW_SIP_WORKERS: '3',
    });
    expect(c.sip.domain).toBe('nl.netaxis.be');
    expect(c.auth.algorithms).toEqual(['SHA-256', 'MD5']);
    expect(c.http.port).toBe(9000);
    expect(c.sip.recordRoute).toBe(true);
    expect(c.location.url).toBe('memory');
    expect(c.sip.workers).toBe(3);
    expect(envName(['auth', 'nonceLifetimeSec'])).toBe('SIPFLOW_AUTH_NONCE_LIFETIME_SEC');
    expect(problemsOf('', { SIPFLOW_LIMITS_MAX_TRANSITIONS: 'many' })[0]).toMatch(/^limits\.maxTransitions: /);
  });

  test('paths in a file are relative to the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cfg-'));
    const file = path.join(dir, 'sipflow.yaml');
    writeFileSync(file, 'dataDir: data\nflows: ./flows\n');
    const c = loadConfig(file, {});
    expect(c.dataDir).toBe(path.join(dir, 'data'));
    expect(c.flows).toBe(path.join(dir, 'flows'));
    expect(() => loadConfig(path.join(dir, 'missing.yaml'), {})).toThrow(/missing\.yaml: invalid configuration\n {2}- cannot read: ENOENT/);
  });

  test('every path-valued key resolves against the config file, whatever the working directory', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cfg-'));
    const other = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cwd-'));
    const file = path.join(dir, 'sipflow.yaml');
    writeFileSync(
      file,
      [
        'dataDir: data',
        'flows: my-flows',
        'sip: {tls: {certFile: tls/cert.pem, keyFile: tls/key.pem, caFile: ../ca.pem}}',
        'directory: {url: pg}',
        'nodes: {plugins: [./plugin, sipflow-plugin-x, /opt/p], http: {caFile: http-ca.pem}}',
        'accounting: {file: cdrs/cdrs.jsonl}',
      ].join('\n'),
    );
    // given relative to another working directory: the same absolute paths
    const c = loadConfig(path.relative(other, file), {}, other);
    expect(c.dataDir).toBe(path.join(dir, 'data'));
    expect(c.flows).toBe(path.join(dir, 'my-flows'));
    expect(c.sip.tls).toMatchObject({
      certFile: path.join(dir, 'tls/cert.pem'),
      keyFile: path.join(dir, 'tls/key.pem'),
      caFile: path.resolve(dir, '../ca.pem'),
    });
    expect(c.directory.url).toBe(path.join(dir, 'pg'));
    // an npm package name stays a name (server/node-plugins.ts resolves it); a path is resolved
    expect(c.nodes.plugins).toEqual([path.join(dir, 'plugin'), 'sipflow-plugin-x', '/opt/p']);
    expect(c.nodes.http.caFile).toBe(path.join(dir, 'http-ca.pem'));
    expect(c.accounting.file).toBe(path.join(dir, 'cdrs/cdrs.jsonl'));
    // the default data dir sits beside the config file too; the flows default is the installation's (undefined here)
    writeFileSync(file, 'sip: {domain: a.example}\n');
    const d = loadConfig(file, {}, other);
    expect(d.dataDir).toBe(path.join(dir, '.data'));
    expect(d.flows).toBeUndefined();
  });

  test('URLs stay URLs; environment values and command-line options resolve against the working directory', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cfg-'));
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cwd-'));
    const file = path.join(dir, 'sipflow.yaml');
    writeFileSync(file, 'directory: {url: "postgres://u:p@127.0.0.1/db"}\nlocation: {url: "mongodb://h/k"}\n');
    const c = loadConfig(file, { SIPFLOW_DATA_DIR: 'env-data', SIPFLOW_NODES_PLUGINS: './a,pkg' }, cwd);
    expect(c.directory.url).toBe('postgres://u:p@127.0.0.1/db');
    expect(c.location.url).toBe('mongodb://h/k');
    expect(c.dataDir).toBe(path.join(cwd, 'env-data'));
    expect(c.nodes.plugins).toEqual([path.join(cwd, 'a'), 'pkg']);
    for (const url of ['memory', 'memory://', 'pglite:rel', 'file:///x/y'])
      expect(loadConfig(undefined, { SIPFLOW_DIRECTORY_URL: url }, cwd).directory.url).toBe(url);
    // `memory` is PGlite in memory for directory.url, a folder for dataDir
    expect(serveConfig({ directoryUrl: 'memory', dataDir: 'memory' }, cwd)).toMatchObject({ directory: { url: 'memory' }, dataDir: path.join(cwd, 'memory') });
    // no file: the working directory
    expect(loadConfig(undefined, {}, cwd).dataDir).toBe(path.join(cwd, '.data'));
    // the command line: against the working directory, over the file
    mkdirSync(path.join(cwd, 'f'));
    const s = serveConfig({ config: file, flows: 'f', dataDir: 'd', tlsCert: 'c.pem', tlsKey: 'k.pem', directoryUrl: 'dir' }, cwd);
    expect(s).toMatchObject({ flows: path.join(cwd, 'f'), dataDir: path.join(cwd, 'd'), directory: { url: path.join(cwd, 'dir') } });
    expect(s.sip.tls).toMatchObject({ certFile: path.join(cwd, 'c.pem'), keyFile: path.join(cwd, 'k.pem') });
  });

  test('flows: the shipped folder by default, from any directory; one that does not exist is an error naming where it was given', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cwd-'));
    expect(serveConfig({}, cwd).flows).toBe(path.resolve(__dirname, '../../flows'));
    expect(() => serveConfig({ flows: 'nope' }, cwd)).toThrow(`--flows nope: ${path.join(cwd, 'nope')} does not exist`);
    const file = path.join(cwd, 'sipflow.yaml');
    writeFileSync(file, 'flows: gone/\n');
    expect(() => serveConfig({ config: file }, '/')).toThrow(`flows in ${file}: ${path.join(cwd, 'gone')} does not exist`);
  });

  test('the JSON Schema and the reference derive from the same schema', () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['sip', 'directory', 'location', 'auth', 'limits', 'http', 'routes']));
    const rows = configReference();
    expect(rows.find((r) => r.key === 'auth.nonceLifetimeSec')).toMatchObject({ env: 'SIPFLOW_AUTH_NONCE_LIFETIME_SEC', default: '300' });
    expect(rows.find((r) => r.key === 'location.url')?.description).toContain('mongodb://');
  });
});

describe('nodes.now and serve --now (the calendar clock, server/calendar.ts)', () => {
  test('an instant without its offset, or no instant at all, is refused naming the key or the flag', () => {
    expect(problemsOf('nodes: {now: "2026-12-24T10:00:00"}\n')).toEqual([expect.stringMatching(/^nodes\.now: must be an ISO 8601 date-time with an offset/)]);
    expect(parseConfig('nodes: {now: "2026-12-24T10:00:00+01:00"}\n', 'a.yaml').nodes.now).toBe('2026-12-24T10:00:00+01:00');
    expect(() => serveConfig({ now: 'next tuesday' })).toThrow(/--now "next tuesday": must be an ISO 8601 date-time with an offset/);
    expect(serveConfig({ now: '2026-12-24T09:00:00Z' }).nodes.now).toBe('2026-12-24T09:00:00Z');
  });

  test('the calendar starts at the instant and runs on; unset, the nodes keep the real clock', () => {
    const boot = Date.now();
    const calendar = calendarClock('2026-12-24T09:00:00Z', boot)!;
    const drift = calendar.now() - Date.parse('2026-12-24T09:00:00Z');
    expect(drift).toBeGreaterThanOrEqual(0);
    expect(drift).toBeLessThan(60_000);
    expect(calendarClock(undefined, boot)).toBeUndefined();
  });
});
