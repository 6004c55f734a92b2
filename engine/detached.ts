/**
 * Strings kept long after their message is handled (transaction keys for Timer J, loop-guard keys,
 * cache keys, stored bindings) must not keep the message alive. V8 represents a substring of the
 * parsed message as a slice of it and a concatenation as a pair of pointers, so a 60-byte key cut
 * from a 600-byte datagram retains all 600 bytes, and every such key survives the young generation:
 * the garbage collector copies the whole message twice, then marks it until the key expires.
 */

/**
 * `s` without references into the string it was cut from. Reading a character flattens a
 * concatenation in place into one new buffer; the slice then points into that buffer only.
 */
export function detached(s: string): string {
  const c = '\u0000' + s;
  c.charCodeAt(0);
  return c.slice(1);
}

/** A key built by concatenation, flattened in place so its parts (and their messages) can go. */
export function flattened(key: string): string {
  key.charCodeAt(0);
  return key;
}
