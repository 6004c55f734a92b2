'use strict';
/**
 * An example sipflow node plug-in (CommonJS, no build step): one node type, example.hashValue,
 * that stores the SHA-256 or SHA-512 digest of a value into a variable (a caller's number hashed
 * before it goes to a log or an external API, a stable bucket for A/B routing).
 *
 * A plug-in exports `nodeTypes`: a list of node types declared exactly as sipflow's built-in
 * nodes (engine/node-type.ts): type, title, category, description, valuesSchema, check, compile.
 * README.md explains each member.
 */
const { createHash } = require('node:crypto');

/** Digest lengths in characters, per algorithm and encoding (for check()). */
const DIGEST_CHARS = {
  sha256: { hex: 64, base64url: 43 },
  sha512: { hex: 128, base64url: 86 },
};

/** A longer value takes the ifTooLong exit (or ends the run when unset): no unbounded hashing per message. */
const MAX_INPUT_BYTES = 65536;

const hashValue = {
  type: 'example.hashValue',
  title: 'Hash a value',
  category: 'manipulation',
  description: 'Stores the SHA-256 or SHA-512 digest of a value (a variable, or text with [variable] placeholders) into a variable.',
  valuesSchema: {
    type: 'object',
    required: ['value', 'storeInto'],
    properties: {
      value: {
        type: ['string', 'number'],
        'x-var': true,
        description: 'variable to hash, or text with [variable] placeholders (e.g. "[calling]>[called]")',
      },
      algorithm: { type: 'string', enum: ['sha256', 'sha512'], default: 'sha256', description: 'digest algorithm' },
      encoding: { type: 'string', enum: ['hex', 'base64url'], default: 'hex', description: 'how the digest is written into the variable' },
      truncate: {
        type: 'integer',
        minimum: 1,
        description: 'keep only the first N characters of the encoded digest (unset: all of it)',
      },
      storeInto: { type: 'string', minLength: 1, 'x-writes': true, description: 'variable that receives the digest' },
      next: { type: ['integer', 'string', 'null'], 'x-exit': true, description: 'next node' },
      ifTooLong: {
        type: ['integer', 'string', 'null'],
        'x-exit': true,
        description: `node taken when the value is longer than ${MAX_INPUT_BYTES} bytes (the variable is then set to "")`,
      },
    },
  },

  /** Problems known before any message: [pointer inside values, message]. */
  check(values) {
    // check() also runs on values the schema refused: read them defensively
    const algorithm = values.algorithm || 'sha256';
    const encoding = values.encoding || 'hex';
    const chars = (DIGEST_CHARS[algorithm] || {})[encoding];
    if (chars !== undefined && typeof values.truncate === 'number' && values.truncate > chars) {
      return [['truncate', `is longer than a ${algorithm} ${encoding} digest (${chars} characters)`]];
    }
    return [];
  },

  /** Runs once per logic load: everything that does not depend on the message is prepared here. */
  compile(values, c) {
    const read = c.value(values.value);
    const algorithm = values.algorithm || 'sha256';
    const encoding = values.encoding || 'hex';
    const keep = values.truncate;
    const into = values.storeInto;
    const next = c.exit('next');
    const tooLong = c.exit('ifTooLong');
    // the closure run for each message
    return (s) => {
      const v = read(s.cd.vars);
      const text = v === null || v === undefined ? '' : String(v);
      if (Buffer.byteLength(text) > MAX_INPUT_BYTES) {
        s.set(into, '');
        return tooLong;
      }
      const digest = createHash(algorithm).update(text).digest(encoding);
      s.set(into, keep === undefined ? digest : digest.slice(0, keep));
      return next;
    };
  },
};

module.exports = { nodeTypes: [hashValue] };
