/** The directory service: connection, migrations, schema introspection, query adapter, subscriber repository. */
export * from './types';
export { openDirectory, parseDirectoryUrl, maskPassword, isPgClient } from './connect';
export type { OpenDirectoryOptions, DirectoryTarget } from './connect';
export { migrate, rollbackAll, seed, SAMPLE_SUBSCRIBER } from './migrations';
export { introspectSchema, createSchemaCache } from './schema';
export type { SchemaCache } from './schema';
export { createDirectory } from './query';
export type { Directory } from './query';
export { createSubscribers, parseCsv, CsvError, CSV_COLUMNS } from './subscribers';
export type {
  Customer,
  CustomerNumber,
  Page,
  ListOptions,
  ImportFile,
  ImportRowError,
  ImportResult,
  RawRow,
  NewCustomer,
  NewNumber,
  Subscribers,
  SubscribersOptions,
} from './subscribers';
export { DirectoryChanges } from './changes';
export { toDirectoryError } from './errors';
