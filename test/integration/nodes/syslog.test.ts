/**
 * output.syslog against a real UDP collector (a dgram socket on 127.0.0.1): the RFC 5424 header,
 * one datagram per message, control characters from a SIP sender's values neutralised, the size
 * cap cut on a character boundary, secrets redacted, and an unreachable collector costing the call
 * nothing. The sender is the one `server/query-ports.ts` opens from `nodes.syslog`.
 */
import dgram from 'node:dgram';
import { parseConfig, ConfigError } from '../../../server/config';
import { openQueryPorts, type QueryPorts } from '../../../server/query-ports';
import { formatSyslog } from '../../../services/syslog/udp';
import { testContext } from '../../support/context';
import { reply, runNodes, start, type NodeSpec } from '../../unit/engine/helpers';

let collector: dgram.Socket;
let port: number;
const received: string[] = [];
let waiters: Array<() => void> = [];
let ports: QueryPorts;

beforeAll(async () => {
  collector = dgram.createSocket('udp4');
  collector.on('message', (b) => {
    received.push(b.toString('utf8'));
    for (const w of waiters) w();
    waiters = [];
  });
  await new Promise<void>((r) => collector.bind(0, '127.0.0.1', () => r()));
  port = collector.address().port;
  const config = parseConfig(JSON.stringify({ nodes: { syslog: { target: `127.0.0.1:${port}`, hostname: 'sbc-1', maxMessageBytes: 480 } } }), 'test.json');
  ports = openQueryPorts(config.nodes);
});
afterAll(async () => {
  await ports.close();
  collector.close();
});

/** The next `n` datagrams the collector gets. */
async function next(n: number): Promise<string[]> {
  const from = received.length;
  while (received.length < from + n) await new Promise<void>((r) => waiters.push(r));
  return received.slice(from, from + n);
}

const syslog = (id: number, values: Record<string, unknown>, then: number): NodeSpec => [id, 'output.syslog', { ...values, next: then }];
const run = (nodes: NodeSpec[], cd: Record<string, unknown> = {}) => {
  const ctx = { ...testContext(), syslog: ports.syslog };
  ctx.clockMs.value = Date.UTC(2026, 11, 24, 9, 30, 0);
  return runNodes(nodes, cd, ctx);
};

describe('output.syslog', () => {
  test('an RFC 5424 message with the configured header fields, then next', async () => {
    const got = next(1);
    const r = await run(
      [start(1), syslog(1, { severity: 'warning', facility: 'local3', msgId: 'CALL_REFUSED', message: 'call to [called] refused' }, 2), reply(2, 403)],
      {
        requestMethod: 'INVITE',
        requestURI: 'sip:0201234567@carrier.example',
      },
    );
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    // PRI = local3 (19) × 8 + warning (4) = 156
    expect(await got).toEqual([`<156>1 2026-12-24T09:30:00.000Z sbc-1 sipflow ${process.pid} CALL_REFUSED - call to 0201234567 refused`]);
  });

  test("a caller's CR/LF cannot start a forged line; a long value is cut at the cap on a character boundary", async () => {
    const got = next(2);
    await run([start(1), syslog(1, { message: 'from [fromUsername]' }, 2), syslog(2, { message: 'ua [callId]' }, 3), reply(3, 200)], {
      headers: { From: '<sip:alice@example.com>;tag=1' },
      fromUsername: 'alice\r\n<13>1 2026-01-01T00:00:00Z forged app - - injected',
      callId: 'é'.repeat(400),
    });
    const [forged, long] = await got;
    expect(forged).not.toMatch(/[\r\n]/);
    expect(forged).toMatch(/- from alice {2}<13>1 2026/);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(480);
    expect(Buffer.byteLength(long)).toBeGreaterThan(470);
    expect(long).toMatch(/^<134>1 .* - ua (é)+$/); // local0.info; no broken character at the end
  });

  test('a secret variable read by the message is redacted', async () => {
    const got = next(1);
    await run(
      [
        start(1),
        [1, 'action.setVariables', { variables: [{ variable: 'password', value: 's3cret-value' }], next: 2 }],
        syslog(2, { message: 'pw [password] for [called]' }, 3),
        reply(3, 200),
      ],
      {
        requestURI: 'sip:42@example.com',
      },
    );
    const [line] = await got;
    expect(line).not.toContain('s3cret-value');
    expect(line).toMatch(/pw \[redacted\] for 42$/);
  });

  test('no collector configured, or an unreachable one: the call goes on at once', async () => {
    const silent = await runNodes([start(1), syslog(1, { message: 'x' }, 2), reply(2, 200)], {}, testContext());
    expect(silent.outcome).toMatchObject({ status: 200 });
    const nowhere = openQueryPorts(parseConfig(JSON.stringify({ nodes: { syslog: { target: 'unreachable.invalid:514' } } }), 'test.json').nodes);
    try {
      const r = await runNodes([start(1), syslog(1, { message: 'x' }, 2), reply(2, 200)], {}, { ...testContext(), syslog: nowhere.syslog });
      expect(r.outcome).toMatchObject({ status: 200 });
    } finally {
      await nowhere.close();
    }
  });

  test('bad configuration and bad values are located', async () => {
    expect(() => parseConfig(JSON.stringify({ nodes: { syslog: { target: 'host:99999' } } }), 'c.json')).toThrow(ConfigError);
    expect(() => parseConfig(JSON.stringify({ nodes: { syslog: { target: '[nope]:514' } } }), 'c.json')).toThrow(/nodes\.syslog\.target: must be host:port/);
    const r = await runNodes([start(1), syslog(1, { message: 'x', appName: 'has space', severity: 'loud' }, 2), reply(2, 200)]).catch((e: Error) => e);
    expect(String(r)).toMatch(/appName: must match pattern/);
    expect(String(r)).toMatch(/severity: must be one of/);
  });

  test('the header fields are printable ASCII whatever the configuration holds', () => {
    const b = formatSyslog({ facility: 1, severity: 6, appName: 'app', msgId: null, text: 'ok', at: 0 }, 'host name\n', 7);
    expect(b.toString()).toBe('<14>1 1970-01-01T00:00:00.000Z host_name_ app 7 - - ok');
  });
});
