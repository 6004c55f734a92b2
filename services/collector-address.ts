/**
 * The address of a UDP collector in the configuration (output.syslog's `nodes.syslog.target`, the
 * HEP capture's `hep.collector`): `host:port`, `[v6]:port`, a bare IPv6 address or `host`, with
 * the protocol's default port. Checked when the configuration loads, so a typo names its key.
 */
import { isIP } from 'node:net';

/** `target` → host and port (`defaultPort` when none is given); throws naming the text when it is not one. */
export function parseCollectorAddress(target: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(target) ?? /^([0-9a-fA-F:]+)$/.exec(target);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
  if (!host || port < 1 || port > 65535 || (m?.[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new Error(`"${target}" is not host:port, [ipv6]:port or a host`);
  }
  return { host, port };
}
