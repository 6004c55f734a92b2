/** The HTTP API: `buildApi()` and what a process needs to wire it. */
export { buildApi, API_PREFIX } from './app';
export type { ApiOptions } from './app';
export { resolveApiToken, tokenChecker, API_TOKEN_FILE } from './auth';
export { createLocationAdmin } from './location-admin';
export type { LocationAdmin, BindingQuery } from './location-admin';
export { dryRunLocation } from './routes/engine';
