/**
 * The revision of a development copy: a hash of its stored text (pure; node:crypto only).
 *
 * A hash rather than a counter: no migration, the same text always has the same revision on every
 * instance, a client that knows the text knows its revision, and saving identical text twice is not a
 * conflict. The one thing a counter would tell and a hash does not (A → B → A looks unchanged) does
 * not matter here: the stored text is then exactly the one the client loaded.
 */
import { createHash } from 'crypto';

/** 20 hex digits of the SHA-256 of the stored text. */
export const revisionOf = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 20);
