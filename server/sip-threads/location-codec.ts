/**
 * The location port's values as they cross between a SIP worker and the dispatcher: objects packed
 * into arrays of their values, in one fixed order of fields, and unpacked on the other side.
 *
 * Why: a REGISTER's binding is saved in the dispatcher (protocol.ts StoreCall), so each call sends a
 * RegisterRequest one way and a RegisterResult with every binding of the AoR back. Structured clone
 * writes an object's every key as a string and rebuilds the object key by key on the other side;
 * an array of the same values is about a third cheaper to clone each way (about 4.5 µs a call over
 * both threads; docs/performance.md, "The nonce's MAC and the location's crossing").
 *
 * Contract: unpack(pack(v)) has the same values as v in every field a RegisterRequest, Binding or
 * RegisterResult declares (engine/ports.ts); an optional field that v lacks comes back undefined.
 * Fields nobody declares are not carried. Dates stay Dates (structured clone carries them).
 *
 * Each packed form is a typed tuple, each unpack one object literal typed with every field required:
 * a field added to a port's type and not here fails the build instead of vanishing between threads,
 * a value packed in another field's place fails it where their types differ, and every value of a
 * kind gets one hidden class. (Built key by key from a list of names, as first written, a Binding's 22
 * fields went past V8's limit for properties added by computed name and each binding became a
 * dictionary: 5–10 % more CPU per call in the worker that reads them.)
 * test/unit/sip-server/location-codec.test.ts holds the round trip with every field distinct.
 */
import type { Binding, RegisterRequest, RegisterResult } from '../../engine/ports';

export type PackedRequest = [
  username: string,
  domain: string | null,
  contacts: string[],
  expiresHeader: string | null,
  callId: string,
  cseq: number,
  userAgent: string,
  received: string | null,
  socket: string | null,
  via: string | null | undefined,
  connectionId: number | null | undefined,
  path: string | null,
  now: Date,
  allow: string | null | undefined,
];

export type PackedBinding = [
  ruid: string,
  username: string,
  domain: string | null,
  contact: string,
  received: string | null,
  path: string | null,
  expires: Date,
  q: number,
  callid: string,
  cseq: number,
  last_modified: Date,
  flags: number,
  cflags: number,
  user_agent: string,
  socket: string | null,
  methods: number | null,
  instance: string | null,
  reg_id: number,
  server_id: number,
  connection_id: number,
  keepalive: number,
  partition: number,
];

export type PackedResult = [status: number, reason: string, headers: Record<string, string> | undefined, bindings: PackedBinding[]];

/*
 * Each pack and its unpack name the fields in the same order, one line each (kept so by
 * prettier-ignore) to be read side by side. The compiler holds each line to the port's type and the
 * tuple; the round-trip test holds two fields of one type to their places.
 */

export function packRegisterRequest(r: RegisterRequest): PackedRequest {
  // prettier-ignore
  return [r.username, r.domain, r.contacts, r.expiresHeader, r.callId, r.cseq, r.userAgent, r.received, r.socket, r.via, r.connectionId, r.path, r.now, r.allow];
}

export function unpackRegisterRequest(p: PackedRequest): RegisterRequest {
  const [username, domain, contacts, expiresHeader, callId, cseq, userAgent, received, socket, via, connectionId, path, now, allow] = p;
  // prettier-ignore
  const r: { [K in keyof Required<RegisterRequest>]: RegisterRequest[K] } = { username, domain, contacts, expiresHeader, callId, cseq, userAgent, received, socket, via, connectionId, path, now, allow };
  return r;
}

function packBinding(b: Binding): PackedBinding {
  // prettier-ignore
  return [b.ruid, b.username, b.domain, b.contact, b.received, b.path, b.expires, b.q, b.callid, b.cseq, b.last_modified, b.flags, b.cflags, b.user_agent, b.socket, b.methods, b.instance, b.reg_id, b.server_id, b.connection_id, b.keepalive, b.partition];
}

function unpackBinding(p: PackedBinding): Binding {
  // prettier-ignore
  const [ruid, username, domain, contact, received, path, expires, q, callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive, partition] = p;
  // prettier-ignore
  const b: Required<Binding> = { ruid, username, domain, contact, received, path, expires, q, callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive, partition };
  return b;
}

export const packBindings = (bindings: Binding[]): PackedBinding[] => bindings.map(packBinding);
export const unpackBindings = (p: PackedBinding[]): Binding[] => p.map(unpackBinding);

export function packRegisterResult(r: RegisterResult): PackedResult {
  return [r.status, r.reason, r.headers, packBindings(r.bindings)];
}

export function unpackRegisterResult(p: PackedResult): RegisterResult {
  const [status, reason, headers, bindings] = p;
  const r: { [K in keyof Required<RegisterResult>]: RegisterResult[K] } = { status, reason, headers, bindings: unpackBindings(bindings) };
  return r;
}
