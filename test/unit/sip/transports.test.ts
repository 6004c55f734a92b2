/**
 * Transports registered by name (sip/transports): the built-in UDP and TCP modules, listeners as
 * sockets `{transport, host, port}`, and a transport added by registration alone: a made-up
 * in-memory stream transport ("memo") carries an OPTIONS to the front end and its 200 back, and
 * the proxy writes it in Via / Record-Route, without a change in the front end or the proxy.
 */
import dgram from 'node:dgram';
import { loadSlid } from '../../../engine/load';
import { builtinRegistry } from '../../../nodes';
import { sipListeners, parseConfig, ConfigError } from '../../../server/config';
import { FrontEnd } from '../../../sip/front-end';
import { parseMessage } from '../../../sip/parser';
import { SipTransports, type LocalEndpoint, type MessageHandler, type Peer } from '../../../sip/transport';
import {
  registerTransport,
  transportById,
  transportByVia,
  transportNamed,
  transportNames,
  transportOf,
  type ListeningSocket,
  type SipTransport,
} from '../../../sip/transports';
import { testContext } from '../../support/context';

describe('the registry', () => {
  test('udp and tcp are registered modules: names, ids, Via tokens, reliability, framing', () => {
    expect(transportNames().slice(0, 2)).toEqual(['udp', 'tcp']);
    expect(transportOf('udp')).toMatchObject({ name: 'udp', id: 0, via: 'UDP', reliable: false, framing: 'datagram', inUri: false });
    expect(transportOf('TCP')).toMatchObject({ name: 'tcp', id: 1, via: 'TCP', reliable: true, framing: 'stream', inUri: true });
    expect(transportById(1)?.name).toBe('tcp');
    expect(transportByVia('udp')?.name).toBe('udp');
    expect(transportNamed('sctp')).toBeUndefined();
    expect(() => transportOf('sctp')).toThrow(/unknown SIP transport "sctp"/);
    expect(() =>
      registerTransport({
        ...transportOf('udp'),
        listen: async () => {
          throw new Error('x');
        },
      }),
    ).toThrow(/registered already/);
  });
});

describe("SipTransports: a listener's sockets", () => {
  test("sockets given by transport; a datagram arrives with its transport name; sends go to the socket of the peer's transport", async () => {
    const got: Array<{ data: string; peer: Peer; local: LocalEndpoint }> = [];
    const t = new SipTransports({
      host: '127.0.0.1',
      port: 0,
      sockets: [{ transport: 'udp' }],
      onMessage: (d, peer, local) => got.push({ data: d.toString(), peer, local }),
    });
    await t.start();
    try {
      expect([...t.ports.keys()]).toEqual(['udp']);
      expect(t.tcpPort).toBe(0);
      const client = dgram.createSocket('udp4');
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
      const back = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
      client.send('ping', t.udpPort, '127.0.0.1');
      for (let i = 0; i < 100 && !got.length; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got[0]).toMatchObject({ data: 'ping', peer: { proto: 'udp', address: '127.0.0.1' }, local: { proto: 'udp', port: t.udpPort } });
      t.send(Buffer.from('pong'), got[0].peer);
      expect(await back).toBe('pong');
      const err = await new Promise<Error | null>((r) => t.send(Buffer.from('x'), { proto: 'tcp', address: '127.0.0.1', port: 1 }, r));
      expect(err?.message).toBe('no TCP transport');
      client.close();
    } finally {
      await t.close();
    }
  });

  test('the deprecated udp / tcp switches still make the sockets (port 0: one number for both when free)', async () => {
    const t = new SipTransports({ host: '127.0.0.1', port: 0, onMessage: () => undefined });
    await t.start();
    try {
      expect([...t.ports.keys()]).toEqual(['udp', 'tcp']);
      expect(t.udpPort).toBeGreaterThan(0);
      expect(t.tcpPort).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
    expect(
      () => new SipTransports({ host: '127.0.0.1', port: 0, sockets: [{ transport: 'udp' }, { transport: 'udp', port: 1 }], onMessage: () => undefined }),
    ).toThrow(/one udp socket per listener/);
  });
});

// ---------------------------------------------------------------- a transport added by registration

/** An in-memory stream transport: `deliver` plays a peer's message, `sent` collects what goes out. */
const memo = {
  handlers: [] as MessageHandler[],
  sent: [] as Array<{ text: string; peer: Peer }>,
};
const memoTransport: SipTransport = registerTransport({
  name: 'memo',
  via: 'MEMO',
  reliable: true,
  framing: 'stream',
  inUri: true,
  async listen(o): Promise<ListeningSocket> {
    memo.handlers.push(o.onMessage);
    return {
      transport: memoTransport,
      port: o.port || 7000,
      connections: 0,
      send: (buf, peer, cb) => {
        memo.sent.push({ text: buf.toString(), peer });
        cb?.(null);
      },
      pauseAccepting: () => undefined,
      close: async () => undefined,
    };
  },
});

test('a registered transport serves a listener: the front end answers over it, without a change anywhere else', async () => {
  expect(transportNames()).toContain('memo');
  const t = new SipTransports({ host: '127.0.0.1', port: 0, sockets: [{ transport: 'memo' }], onMessage: (d, p, l) => fe.onMessage(d, p, l) });
  await t.start();
  const service = loadSlid(
    {
      1: {
        name: 'none',
        description: '',
        nodes: {
          0: { id: 0, name: 's', type: 'enter.start', description: '', values: { next: 1 }, archived: false, x: 0, y: 0 },
          1: { id: 1, name: 'r', type: 'output.reply', description: '', values: { code: 486 }, archived: false, x: 0, y: 0 },
        },
      },
    },
    'memo.slid',
    builtinRegistry(),
  ).service!;
  const fe: FrontEnd = new FrontEnd(t, { service, ctx: testContext(), loopGuard: false, routes: [{ listener: 'memo:7000', method: 'MESSAGE', logic: '1' }] });
  try {
    expect([...t.ports]).toEqual([['memo', 7000]]);
    const peer: Peer = { proto: 'memo', address: '192.0.2.9', port: 41000, connId: 7 };
    const local: LocalEndpoint = { proto: 'memo', address: '127.0.0.1', port: 7000 };
    const options = [
      'OPTIONS sip:127.0.0.1:7000;transport=memo SIP/2.0',
      'Via: SIP/2.0/MEMO 192.0.2.9:41000;branch=z9hG4bKmemo1',
      'From: <sip:a@example.test>;tag=1',
      'To: <sip:127.0.0.1>',
      'Call-ID: memo-1',
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    memo.handlers[0](Buffer.from(options), peer, local);
    expect(memo.sent).toHaveLength(1);
    const res = parseMessage(Buffer.from(memo.sent[0].text));
    expect(res.ok && 'status' in res.message && res.message.status).toBe(200);
    // a stream transport's response goes back over the request's connection
    expect(memo.sent[0].peer).toMatchObject({ proto: 'memo', address: '192.0.2.9', connId: 7 });

    // the `transport` variable and route rules by transport name: 486 from the logic
    memo.handlers[0](
      Buffer.from(
        options
          .replace(/OPTIONS/g, 'MESSAGE')
          .replace('sip:127.0.0.1:7000', 'sip:bob@example.test')
          .replace('branch=z9hG4bKmemo1', 'branch=z9hG4bKmemo2'),
      ),
      peer,
      local,
    );
    for (let i = 0; i < 50 && memo.sent.length < 2; i++) await new Promise((r) => setImmediate(r));
    const answered = parseMessage(Buffer.from(memo.sent[1].text));
    expect(answered.ok && 'status' in answered.message && answered.message.status).toBe(486);
  } finally {
    fe.close();
    await t.close();
  }
});

describe('listeners in the configuration', () => {
  const problemsOf = (text: string) => {
    try {
      parseConfig(text, 'sipflow.yaml');
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    throw new Error('expected a ConfigError');
  };

  test('{transport, host, port} entries (Kamailio listen=): one listener per name, a socket per entry', () => {
    const c = parseConfig(
      [
        'sip:',
        '  listeners:',
        '    - { transport: udp, host: 192.0.2.10, port: 5060 }',
        '    - { transport: tcp, host: 192.0.2.10, port: 5060 }',
        '    - { name: trunk, transport: udp, host: 198.51.100.1, port: 5080, advertise: sbc.example.net }',
      ].join('\n'),
      'a.yaml',
    );
    expect(c.sip.listeners[0]).toEqual({ name: 'default', transport: 'udp', host: '192.0.2.10', port: 5060 });
    expect(sipListeners(c.sip.listeners)).toEqual([
      {
        name: 'default',
        sockets: [
          { transport: 'udp', host: '192.0.2.10', port: 5060 },
          { transport: 'tcp', host: '192.0.2.10', port: 5060 },
        ],
      },
      { name: 'trunk', advertise: 'sbc.example.net', sockets: [{ transport: 'udp', host: '198.51.100.1', port: 5080 }] },
    ]);
  });

  test('the deprecated {host, port, transports} form still works and expands to a socket per transport', () => {
    const c = parseConfig('sip:\n  listeners:\n    - { port: 5070, transports: [tcp] }\n    - { name: b, port: 5071 }\n', 'a.yaml');
    expect(sipListeners(c.sip.listeners)).toEqual([
      { name: 'default', sockets: [{ transport: 'tcp', host: '0.0.0.0', port: 5070 }] },
      {
        name: 'b',
        sockets: [
          { transport: 'udp', host: '0.0.0.0', port: 5071 },
          { transport: 'tcp', host: '0.0.0.0', port: 5071 },
        ],
      },
    ]);
  });

  test('unknown transports, both forms at once, a transport twice in one listener: errors', () => {
    expect(problemsOf('sip:\n  listeners:\n    - { transport: sctp }\n')).toEqual([expect.stringMatching(/^sip\.listeners\.0\.transport: /)]);
    expect(problemsOf('sip:\n  listeners:\n    - { transport: udp, transports: [tcp] }\n')).toEqual([
      expect.stringMatching(/^sip\.listeners\.0\.transports: give transport or/),
    ]);
    expect(problemsOf('sip:\n  listeners:\n    - { transport: udp, port: 5060 }\n    - { transport: udp, port: 5062 }\n')).toEqual([
      expect.stringMatching(/^sip\.listeners: listener "default" has two udp sockets/),
    ]);
  });
});
