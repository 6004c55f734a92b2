/**
 * A DNS server for the ENUM tests: Debian's dnsmasq (package dnsmasq-base), run by the test on
 * 127.0.0.1 and a free port, answering the NAPTR records it is given and NXDOMAIN for any other
 * name under e164.arpa (`--local`), REFUSED for the rest (no upstream). Also a "black hole": a
 * bound UDP socket that reads queries and never answers (the timeout case).
 */
import dgram from 'node:dgram';
import { sbin, spawnUntil } from './spawned';
import type { NaptrRecord } from '../../engine/ports';

export interface DnsServer {
  /** `127.0.0.1:port`, as nodes.enum.servers takes it. */
  address: string;
  stop(): Promise<void>;
}

/** A free UDP port of 127.0.0.1 (dnsmasq binds the same port on TCP too: retried on a clash). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** dnsmasq's --naptr-record=<name>,<order>,<preference>,<flags>,<service>,<regexp>[,<replacement>] */
function naptrOption(name: string, r: NaptrRecord): string {
  return `--naptr-record=${[name, r.order, r.preference, r.flags, r.service, r.regexp, ...(r.replacement ? [r.replacement] : [])].join(',')}`;
}

export async function startDnsmasq(records: Array<{ name: string; record: NaptrRecord }>): Promise<DnsServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--no-poll',
      '--bind-interfaces',
      '--listen-address=127.0.0.1',
      `--port=${port}`,
      '--pid-file=',
      // as root dnsmasq would switch to nobody: stay the test's user
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      '--log-facility=-',
      '--local=/e164.arpa/',
      ...records.map((r) => naptrOption(r.name, r.record)),
    ];
    try {
      const server = await spawnUntil(sbin('dnsmasq'), args, /started, version/, 'dnsmasq');
      return { address: `127.0.0.1:${port}`, stop: () => server.stop() };
    } catch (e) {
      if (attempt < 3 && /Address already in use/.test((e as Error).message)) continue;
      throw e;
    }
  }
}

/** A DNS server that never answers: queries are read and dropped. */
export async function startBlackHole(): Promise<DnsServer & { queries(): number }> {
  const s = dgram.createSocket('udp4');
  let queries = 0;
  s.on('message', () => queries++);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${s.address().port}`,
    queries: () => queries,
    stop: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}
