import { mkdtempSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { ConfigError, configJsonSchema, configReference, envName, loadConfig, parseConfig } from '../../server/config';
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

  test('YAML and JSON both parse; nested defaults fill in', () => {
    const yaml = parseConfig('sip:\n  domain: nl.netaxis.be\n  listeners:\n    - port: 5070\n', 'a.yaml');
    expect(yaml.sip.domain).toBe('nl.netaxis.be');
    expect(yaml.sip.listeners[0]).toEqual({ name: 'default', host: '0.0.0.0', port: 5070, transports: ['udp', 'tcp'] });
    expect(parseConfig('{"location": {"url": "mongodb://a,b,c/kamailio?replicaSet=sre_location"}}', 'a.json').location.url).toContain('replicaSet');
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
