/** Log lines carry no token or password: request URLs, message texts and errors are redacted. */
import { Writable } from 'stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { createLogger, redactUrl, scrubText } from '../../server/logger';

const TOKEN = '3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a';

function capture(level = 'debug') {
  const lines: string[] = [];
  const logger = createLogger({
    level,
    destination: new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  });
  return { logger, lines, text: () => lines.join('') };
}

describe('redactUrl', () => {
  test('keeps the path and harmless parameters; replaces sensitive values', () => {
    expect(redactUrl(`/designer/?token=${TOKEN}`)).toBe('/designer/?token=[redacted]');
    expect(redactUrl('/api/v1/customers?search=acme&limit=20&password=s3cret&api_key=k')).toBe(
      '/api/v1/customers?search=acme&limit=20&password=[redacted]&api_key=[redacted]',
    );
    expect(redactUrl('/api/v1/flows')).toBe('/api/v1/flows');
    expect(redactUrl('/x?access_token=abc&Authorization=Bearer%20x')).toBe('/x?access_token=[redacted]&Authorization=[redacted]');
  });

  test('values that look like generated secrets, and bare long entries, whatever the parameter', () => {
    expect(redactUrl(`/designer/?t=${TOKEN}`)).toBe('/designer/?t=[redacted]');
    expect(redactUrl(`/designer/?${TOKEN}`)).toBe('/designer/?[redacted]');
    expect(redactUrl('/x?debug')).toBe('/x?debug');
  });
});

describe('scrubText', () => {
  test('URLs, bearer tokens and digest responses quoted in a text', () => {
    const t = scrubText(
      `Route GET:/designer/?token=${TOKEN} not found; Authorization: Bearer ${TOKEN}; Digest username="a", response="0123456789abcdef0123456789abcdef"`,
    );
    expect(t).not.toContain(TOKEN);
    expect(t).not.toContain('0123456789abcdef0123456789abcdef');
    expect(t).toContain('Route GET:/designer/?token=[redacted] not found');
    expect(t).toContain('Bearer [redacted]');
    expect(t).toContain('response="[redacted]"');
    expect(scrubText('is it? yes')).toBe('is it? yes');
  });
});

describe('fastify request logs through createLogger', () => {
  test('a request with ?token=… logs its path, never the token; so do 404s and errors that echo the URL', async () => {
    const { logger, text, lines } = capture();
    const app = Fastify({ loggerInstance: logger as FastifyBaseLogger });
    app.get('/designer/', async () => 'ok');
    app.get('/boom', async (req) => {
      throw new Error(`cannot handle ${req.url}`);
    });
    await app.ready();
    expect((await app.inject({ url: `/designer/?token=${TOKEN}` })).statusCode).toBe(200);
    expect((await app.inject({ url: `/nowhere?token=${TOKEN}&password=hunter2` })).statusCode).toBe(404);
    expect((await app.inject({ url: `/boom?token=${TOKEN}`, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(500);
    await app.close();
    const all = text();
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(TOKEN.slice(0, 16));
    expect(all).not.toContain('hunter2');
    // the path is still there for the operator
    const urls = lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.req?.url)
      .map((l) => l.req.url);
    expect(urls).toEqual(expect.arrayContaining(['/designer/?token=[redacted]', '/nowhere?token=[redacted]&password=[redacted]', '/boom?token=[redacted]']));
    expect(all).toContain('cannot handle /boom?token=[redacted]');
  });

  test('objects logged by hand keep their redaction (headers, passwords) and err messages are scrubbed', () => {
    const { logger, text } = capture('info');
    logger.error({ err: new Error(`GET /x?token=${TOKEN} failed`), headers: { authorization: `Bearer ${TOKEN}` }, password: 'pw-123' }, 'failed');
    logger.info(`opened /designer/?token=${TOKEN}`);
    expect(text()).not.toContain(TOKEN);
    expect(text()).not.toContain('pw-123');
  });
});
