/**
 * Digest authentication port (engine/ports.ts) as services/auth implements it: the port's types
 * are the engine's, re-exported for the adapters here and their callers.
 */
export type { AuthPort, Challenge, DigestAlgorithm, DigestCredentials, VerifyRequest, VerifyResult } from '../../engine/ports';
