/** Brute-force and flood defence: the guard (one per process), its primitives, the lock port. */
export * from './guard';
export * from './locks';
export { FailureWindow, takeToken, type BucketState } from './sliding-window';
export { TrustedSources, normalizeAddress, parseTrusted } from './trusted';
export { ScannerMatcher, isResponseBytes } from './user-agent';
