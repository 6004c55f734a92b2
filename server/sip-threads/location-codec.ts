/**
 * The location port's values as they cross between a SIP worker and the dispatcher: objects packed
 * into arrays of their values, in one fixed order of fields, and unpacked on the other side.
 *
 * Why: a REGISTER's binding is saved in the dispatcher (protocol.ts StoreCall), so each call sends a
 * RegisterRequest one way and a RegisterResult with every binding of the AoR back. Structured clone
 * writes an object's every key as a string and rebuilds the object key by key on the other side;
 * an array of the same values is about a third cheaper to clone each way (2–3 µs a call in all,
 * docs/performance.md "The nonce's MAC" and after).
 *
 * Contract: unpack(pack(v)) has the same own enumerable properties with the same values as v, for
 * every field a RegisterRequest, Binding or RegisterResult declares (engine/ports.ts); an optional
 * field that v lacks (or holds undefined) is absent after the round trip. Fields nobody declares are
 * not carried. Dates stay Dates (structured clone carries them). The field lists below are checked
 * against the interfaces by the compiler (`Exhaustive`), so a field added to a port's type and not
 * here fails the build instead of vanishing between threads; test/unit/sip-server/location-codec.test.ts
 * holds the round trip.
 */
import type { Binding, RegisterRequest, RegisterResult } from '../../engine/ports';

/** Compiles only when `List` names every key of `T`. */
type Exhaustive<T, List extends readonly (keyof T)[]> = Exclude<keyof T, List[number]> extends never ? List : never;

const REQUEST_FIELDS = [
  'username',
  'domain',
  'contacts',
  'expiresHeader',
  'callId',
  'cseq',
  'userAgent',
  'received',
  'socket',
  'via',
  'connectionId',
  'path',
  'now',
  'allow',
] as const;
const BINDING_FIELDS = [
  'ruid',
  'username',
  'domain',
  'contact',
  'received',
  'path',
  'expires',
  'q',
  'callid',
  'cseq',
  'last_modified',
  'flags',
  'cflags',
  'user_agent',
  'socket',
  'methods',
  'instance',
  'reg_id',
  'server_id',
  'connection_id',
  'keepalive',
  'partition',
] as const;
const RESULT_FIELDS = ['status', 'reason', 'headers', 'bindings'] as const;

const requestFields: Exhaustive<RegisterRequest, typeof REQUEST_FIELDS> = REQUEST_FIELDS;
const bindingFields: Exhaustive<Binding, typeof BINDING_FIELDS> = BINDING_FIELDS;
const resultFields: Exhaustive<RegisterResult, typeof RESULT_FIELDS> = RESULT_FIELDS;

export type Packed = unknown[];

function pack(v: object, fields: readonly string[]): Packed {
  const o = v as Record<string, unknown>;
  const p: Packed = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) p[i] = o[fields[i]];
  return p;
}

function unpack<T>(p: Packed, fields: readonly string[]): T {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) if (p[i] !== undefined) o[fields[i]] = p[i];
  return o as T;
}

export const packRegisterRequest = (req: RegisterRequest): Packed => pack(req, requestFields);
export const unpackRegisterRequest = (p: Packed): RegisterRequest => unpack<RegisterRequest>(p, requestFields);

export const packBindings = (bindings: Binding[]): Packed[] => bindings.map((b) => pack(b, bindingFields));
export const unpackBindings = (p: Packed[]): Binding[] => p.map((b) => unpack<Binding>(b, bindingFields));

export function packRegisterResult(r: RegisterResult): Packed {
  const p = pack(r, resultFields);
  p[3] = packBindings(r.bindings);
  return p;
}

export function unpackRegisterResult(p: Packed): RegisterResult {
  const r = unpack<RegisterResult>(p, resultFields);
  r.bindings = unpackBindings(p[3] as Packed[]);
  return r;
}
