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
 * Each unpack is one object literal, typed with every field required: a field added to a port's type
 * and not here fails the build instead of vanishing between threads, and every value of a kind gets
 * one hidden class. (Built key by key from a list of names, as first written, a Binding's 22 fields
 * went past V8's limit for properties added by computed name and each binding became a dictionary:
 * 5–10 % more CPU per call in the worker that reads them.) The pack writes the same order;
 * test/unit/sip-server/location-codec.test.ts holds the round trip with every field distinct.
 */
import type { Binding, RegisterRequest, RegisterResult } from '../../engine/ports';

export type Packed = unknown[];

export function packRegisterRequest(r: RegisterRequest): Packed {
  return [
    r.username,
    r.domain,
    r.contacts,
    r.expiresHeader,
    r.callId,
    r.cseq,
    r.userAgent,
    r.received,
    r.socket,
    r.via,
    r.connectionId,
    r.path,
    r.now,
    r.allow,
  ];
}

export function unpackRegisterRequest(p: Packed): RegisterRequest {
  const r: Required<RegisterRequest> = {
    username: p[0] as string,
    domain: p[1] as string | null,
    contacts: p[2] as string[],
    expiresHeader: p[3] as string | null,
    callId: p[4] as string,
    cseq: p[5] as number,
    userAgent: p[6] as string,
    received: p[7] as string | null,
    socket: p[8] as string | null,
    via: p[9] as string | null,
    connectionId: p[10] as number | null,
    path: p[11] as string | null,
    now: p[12] as Date,
    allow: p[13] as string | null,
  };
  return r;
}

function packBinding(b: Binding): Packed {
  return [
    b.ruid,
    b.username,
    b.domain,
    b.contact,
    b.received,
    b.path,
    b.expires,
    b.q,
    b.callid,
    b.cseq,
    b.last_modified,
    b.flags,
    b.cflags,
    b.user_agent,
    b.socket,
    b.methods,
    b.instance,
    b.reg_id,
    b.server_id,
    b.connection_id,
    b.keepalive,
    b.partition,
  ];
}

function unpackBinding(p: Packed): Binding {
  const b: Required<Binding> = {
    ruid: p[0] as string,
    username: p[1] as string,
    domain: p[2] as string | null,
    contact: p[3] as string,
    received: p[4] as string | null,
    path: p[5] as string | null,
    expires: p[6] as Date,
    q: p[7] as number,
    callid: p[8] as string,
    cseq: p[9] as number,
    last_modified: p[10] as Date,
    flags: p[11] as number,
    cflags: p[12] as number,
    user_agent: p[13] as string,
    socket: p[14] as string | null,
    methods: p[15] as number | null,
    instance: p[16] as string | null,
    reg_id: p[17] as number,
    server_id: p[18] as number,
    connection_id: p[19] as number,
    keepalive: p[20] as number,
    partition: p[21] as number,
  };
  return b;
}

export const packBindings = (bindings: Binding[]): Packed[] => bindings.map(packBinding);
export const unpackBindings = (p: Packed[]): Binding[] => p.map(unpackBinding);

export function packRegisterResult(r: RegisterResult): Packed {
  return [r.status, r.reason, r.headers, packBindings(r.bindings)];
}

export function unpackRegisterResult(p: Packed): RegisterResult {
  const r: Required<RegisterResult> = {
    status: p[0] as number,
    reason: p[1] as string,
    headers: p[2] as Record<string, string>,
    bindings: unpackBindings(p[3] as Packed[]),
  };
  return r;
}
