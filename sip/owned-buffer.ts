/**
 * Bytes kept for a while (a response kept to answer retransmissions) in a memory block of their own.
 *
 * Why: a serialized message is a slice of Node's 8 KiB Buffer pool (Buffer.from of a short string,
 * sip/serializer.ts), and a kept slice pins its whole slab. A 500-byte response kept for 32 s
 * (Timer J, sip/transactions.ts) or in the challenge cache (sip/challenge-replies.ts) then keeps
 * up to 8 KiB of external memory alive: sixteen times its size, tens of MB per SIP thread under
 * load (bench/soak). `Buffer.from(bytes)` would not do: a short copy comes from the same pool;
 * allocUnsafeSlow never does. Bytes that already own their block are returned as they are.
 */
export function ownedBuffer(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  bytes.copy(copy);
  return copy;
}
