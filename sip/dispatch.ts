/**
 * Which SIP worker a raw message goes to: by its Call-ID, read straight from the bytes (no parse),
 * so every message of a transaction or dialog — retransmissions, ACK, CANCEL, responses to relayed
 * requests — reaches the worker that holds its state, as Kamailio's shared transaction table
 * guarantees across its processes.
 */

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

/** Lower-cased ASCII byte. */
const lower = (c: number) => (c >= 65 && c <= 90 ? c | 0x20 : c);

/** "call-id" in lower-case bytes. */
const CALL_ID = [99, 97, 108, 108, 45, 105, 100];

/**
 * FNV-1a (32 bit) of the Call-ID value of a raw SIP message (`Call-ID:` or compact `i:`, any case,
 * surrounding blanks ignored), or 0 when the header section has none (such a message is answered
 * 400 or dropped by whichever worker gets it).
 */
export function callIdHash(buf: Uint8Array): number {
  return callIdKey(buf) % 0x1_0000_0000;
}

/**
 * The Call-ID as a 53-bit number, for tables of Call-IDs held by the dispatcher
 * (server/sip-threads/call-owners.ts): callIdHash in the low 32 bits, 21 bits of a second hash
 * (another basis and multiplier) above, so two Call-IDs share a key about once in 2^53 (32 bits
 * alone: once in a few hundred thousand messages against a table of ten thousand). 0 when none.
 */
export function callIdKey(buf: Uint8Array): number {
  const n = buf.length;
  let i = 0;
  // skip the start line
  while (i < n && buf[i] !== LF) i++;
  i++;
  while (i < n) {
    // i = start of a header line; an empty line ends the header section
    if (buf[i] === CR || buf[i] === LF) return 0;
    let j = i;
    let isCallId = false;
    if (lower(buf[j]) === 105 && (buf[j + 1] === COLON || buf[j + 1] === SP || buf[j + 1] === HT)) {
      j += 1;
      isCallId = true;
    } else {
      let k = 0;
      while (k < CALL_ID.length && j + k < n && lower(buf[j + k]) === CALL_ID[k]) k++;
      if (k === CALL_ID.length) {
        j += k;
        isCallId = true;
      }
    }
    if (isCallId) {
      while (j < n && (buf[j] === SP || buf[j] === HT)) j++;
      if (j < n && buf[j] === COLON) {
        j++;
        while (j < n && (buf[j] === SP || buf[j] === HT)) j++;
        let end = j;
        while (end < n && buf[end] !== CR && buf[end] !== LF) end++;
        while (end > j && (buf[end - 1] === SP || buf[end - 1] === HT)) end--;
        let h = 0x811c9dc5;
        let g = 0x050c5d1f;
        for (let k = j; k < end; k++) {
          h = Math.imul(h ^ buf[k], 0x01000193);
          g = Math.imul(g ^ buf[k], 0x5bd1e995);
        }
        return (h >>> 0) + ((g >>> 11) & 0x1fffff) * 0x1_0000_0000;
      }
    }
    while (i < n && buf[i] !== LF) i++;
    i++;
  }
  return 0;
}
