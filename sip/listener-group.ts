/**
 * The listeners of one SIP thread seen together: which socket a message leaves from, and which
 * proxy holds the client transaction a response answers.
 *
 * Socket choice (Kamailio: the socket of `force_send_socket`, else one of the destination's
 * address family and protocol): a message goes out on its own listener's socket of the peer's
 * transport when that socket reaches the peer's address family (an IPv4 bind: IPv4; an IPv6
 * bind: IPv6; `::` or a host name: both), else on the first other listener's socket that does, so
 * an INVITE from an IPv6 trunk reaches a phone registered over IPv4. When none does, the send
 * fails with an error naming the transport and family (the proxy answers 503). `origin` tells the
 * proxy the address and port of the socket chosen, which its Via and Record-Route name, so the
 * answers come back to that socket.
 *
 * Those answers then reach another listener's front end than the one that relayed the request:
 * each proxy enters its client transaction table here (`joinClients`), and a response matching
 * none of its own proxy's is looked up in the others' (`matchClient`).
 *
 * Layout: members in the order listeners were added; each member's view (`add`'s result) is the
 * SipSender its front end uses. Limits: one socket per transport per listener (the listener
 * model); a wildcard bind without `advertise` names 127.0.0.1 / ::1 (nothing better is known).
 */
import net from 'node:net';
import type { ClientTransactions, ClientTx } from './transactions';
import type { Peer, Proto, SendCallback, SipSender } from './transport';

/** The address and port a message leaves from, as Via and Record-Route write them. */
export interface Origin {
  host: string;
  port: number;
}

interface GroupSocket {
  /** Bind address. */
  host: string;
  port: number;
  /** Reaches IPv4 / IPv6 destinations. */
  v4: boolean;
  v6: boolean;
  /** A wildcard bind (0.0.0.0, ::, ''). */
  wildcard: boolean;
}

/** A listener of the group: its sender and sockets (transport → bind address and port). */
export interface Member {
  sender: SipSender;
  sockets: Map<string, GroupSocket>;
  advertise: string | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function groupSocket(host: string, port: number): GroupSocket {
  const h = host.charCodeAt(0) === 91 ? host.slice(1, -1) : host;
  const v = net.isIP(h);
  const wildcard = h === '' || h === '0.0.0.0' || h === '::';
  // `::` is dual stack (Node binds without IPV6_V6ONLY); a host name: the system decides
  return { host: h, port, v4: v !== 6 || h === '::', v6: v !== 4, wildcard };
}

const fits = (s: GroupSocket, family: number): boolean => (family === 4 ? s.v4 : s.v6);

/**
 * The address family of a destination, on every send: a colon means IPv6 (net.isIP's full parse
 * costs ≈ 200 ns a send). Destinations are literals (names are resolved before); a name left
 * counts as IPv4, which the socket then resolves it to.
 */
const familyOf = (address: string): 4 | 6 => (address.indexOf(':') >= 0 ? 6 : 4);

export class ListenerGroup {
  private readonly members: Member[] = [];
  private readonly clientTables = new Set<ClientTransactions>();

  /**
   * Adds a listener: its sender (sockets started, ports bound), its sockets' bind addresses and
   * its advertised address; returns the sender its front end uses (socket choice across the group).
   */
  add(sender: SipSender, sockets: ReadonlyArray<{ transport: string; host: string }>, advertise?: string): GroupSender {
    const m: Member = {
      sender,
      sockets: new Map(sockets.map((s) => [s.transport, groupSocket(s.host, sender.ports.get(s.transport) ?? 0)])),
      advertise,
    };
    this.members.push(m);
    return new GroupSender(this, m);
  }

  /** A listener closes: its sockets are chosen no more. */
  remove(view: GroupSender): void {
    const i = this.members.indexOf(view.member);
    if (i >= 0) this.members.splice(i, 1);
  }

  /** A proxy's client transactions, so that responses reaching another listener find them. */
  joinClients(t: ClientTransactions): void {
    this.clientTables.add(t);
  }

  leaveClients(t: ClientTransactions): void {
    this.clientTables.delete(t);
  }

  /** The client transaction of a response, whichever proxy of the group holds it. */
  matchClient(branch: string, method: string, except?: ClientTransactions): ClientTx | undefined {
    for (const t of this.clientTables) {
      if (t === except) continue;
      const tx = t.match(branch, method);
      if (tx) return tx;
    }
    return undefined;
  }

  /** The member and socket a message to `address` over `proto` leaves from: `own` first. */
  choose(own: Member, proto: Proto, address: string): { member: Member; socket: GroupSocket } | null {
    const mine = own.sockets.get(proto);
    // a dual-stack socket of its own reaches anyone: no address parsing on the hot path
    if (mine !== undefined && mine.v4 && mine.v6) return { member: own, socket: mine };
    const family = familyOf(address);
    if (mine !== undefined && fits(mine, family)) return { member: own, socket: mine };
    for (const m of this.members) {
      if (m === own) continue;
      const s = m.sockets.get(proto);
      if (s !== undefined && fits(s, family)) return { member: m, socket: s };
    }
    return null;
  }

  /** The member whose socket holds a stream connection, or undefined (none, or connections held by another thread). */
  holderOf(proto: Proto, connId: number): Member | undefined {
    for (const m of this.members) if (m.sender.connection?.(proto, connId) !== undefined) return m;
    return undefined;
  }

  /** Whether host:port names a socket of the group (Route and Request-URI: "is this us"). */
  isOurs(host: string, port: number): boolean {
    const h = (host.charCodeAt(0) === 91 ? host.slice(1, -1) : host).toLowerCase();
    for (const m of this.members) {
      for (const s of m.sockets.values()) {
        if (s.port !== port) continue;
        if (h === s.host || (m.advertise !== undefined && h === m.advertise.toLowerCase())) return true;
        if (LOOPBACK.has(h) && (s.wildcard || LOOPBACK.has(s.host))) return true;
      }
    }
    return false;
  }
}

/** The address a socket is named by towards a destination family. */
function originOf(m: Member, s: GroupSocket, family: number): string {
  if (m.advertise !== undefined) return m.advertise;
  if (!s.wildcard) return s.host;
  return family === 6 || (!s.v4 && s.v6) ? '::1' : '127.0.0.1';
}

/** One listener's sender within its group: sends on the socket the group chooses. */
export class GroupSender implements SipSender {
  constructor(
    private readonly group: ListenerGroup,
    readonly member: Member,
  ) {}

  get advertised(): string {
    return this.member.sender.advertised;
  }

  get ports(): ReadonlyMap<string, number> {
    return this.member.sender.ports;
  }

  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    // a binding's own connection (sip/transport.ts flowOnly): on the listener that holds it
    if (peer.flowOnly && peer.connId !== undefined) {
      const holder = this.group.holderOf(peer.proto, peer.connId) ?? this.member;
      holder.sender.send(buf, peer, cb);
      return;
    }
    const c = this.group.choose(this.member, peer.proto, peer.address);
    if (c === null) {
      cb?.(new Error(noSocket(peer.proto, peer.address)));
      return;
    }
    c.member.sender.send(buf, peer, cb);
  }

  /** Where a message to `address` over `proto` leaves from (Via, Record-Route); null when no socket reaches it. */
  origin(proto: Proto, address: string): Origin | null {
    const c = this.group.choose(this.member, proto, address);
    return c === null ? null : { host: originOf(c.member, c.socket, familyOf(address)), port: c.socket.port };
  }

  isOurs(host: string, port: number): boolean {
    return this.group.isOurs(host, port);
  }
}

/** Why nothing can carry a message: the transport and the address family no socket has. */
export function noSocket(proto: Proto, address: string): string {
  const family = net.isIP(address);
  return `no ${proto.toUpperCase()} socket reaches ${family === 0 ? address : `IPv${family} address ${address}`} (listen on one: sip.listeners)`;
}
