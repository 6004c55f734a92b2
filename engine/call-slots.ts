/**
 * Who holds a call-admission slot (analysis.callLimit) and which keys are acceptable: shared by the
 * node that acquires slots and the releaser that frees them (services/call-limit/releaser.ts), so
 * both name a call the same way.
 *
 * The holder is the Call-ID and the From tag of the INVITE: the INVITE that answers a challenge
 * and the restart after authentication keep both (RFC 3261 §8.1.3.5, §22.2), so they find the
 * slot already taken and take no second one; another INVITE reusing the Call-ID with another From
 * tag is another dialog and takes a slot of its own (reusing a Call-ID gets no call past the limit).
 */
import { parseNameAddr } from '../grammar/sip-values';
import type { CallDescriptor } from './types';
import { hasControlChar } from './values';

/** Longest limit key, UTF-8 bytes (keys are built from a sender's values; stored per slot in the shared database). */
export const MAX_LIMIT_KEY_BYTES = 256;

/** The call's holder id: `Call-ID` + LF + From tag (LF never occurs in either: header values are single lines). */
export function slotHolder(cd: Pick<CallDescriptor, 'headers' | 'vars'>): string {
  const callId = cd.headers['call-id']?.[0] ?? (typeof cd.vars.callId === 'string' ? cd.vars.callId : '');
  const from = cd.headers['from']?.[0];
  const tag = from === undefined ? null : (parseNameAddr(from)?.params.tag ?? null);
  return `${callId}\n${tag ?? ''}`;
}

/** Why a resolved key is refused, or null when it is usable: empty, over MAX_LIMIT_KEY_BYTES, or holding a control character. */
export function limitKeyProblem(key: string): string | null {
  if (key === '') return 'the key is empty';
  if (Buffer.byteLength(key) > MAX_LIMIT_KEY_BYTES) return `the key is longer than ${MAX_LIMIT_KEY_BYTES} bytes`;
  // a key holding one is refused: never stored, never logged raw
  if (hasControlChar(key)) return 'the key holds a control character';
  return null;
}
