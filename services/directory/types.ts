/**
 * Directory port (engine/ports.ts) as the adapters here implement it, and the one error they
 * throw. The port's types are the engine's; they are re-exported for the adapters' callers.
 */
import { NodeRunError } from '../../engine/node-type';
import { ServiceUnavailableError } from '../../engine/ports';

export type { ColumnRef, DirectoryCondition, DirectoryJoin, DirectoryOperator, DirectoryPort, DirectoryQuery, DirectorySchema } from '../../engine/ports';

/** The query names an unknown table or column, or a value its column cannot hold: a 500 naming it. */
export class DirectoryInvalidError extends NodeRunError {
  readonly kind = 'invalid' as const;
}

/** The directory database cannot answer now: 503 + Retry-After (engine/ports.ts). */
export class DirectoryUnavailableError extends ServiceUnavailableError {
  readonly kind = 'unavailable' as const;
}

/**
 * Every directory failure, told apart by `kind`. The two kinds need different engine bases (the
 * engine answers a NodeRunError 500 and a ServiceUnavailableError 503), so `new DirectoryError(m,
 * kind)` builds the class of its kind and `instanceof DirectoryError` holds for both.
 */
export type DirectoryError = DirectoryInvalidError | DirectoryUnavailableError;
export const DirectoryError = function DirectoryError(message: string, kind: DirectoryError['kind']): DirectoryError {
  return kind === 'invalid' ? new DirectoryInvalidError(message) : new DirectoryUnavailableError(message);
} as unknown as {
  new (message: string, kind: DirectoryError['kind']): DirectoryError;
  [Symbol.hasInstance](x: unknown): x is DirectoryError;
};
Object.defineProperty(DirectoryError, Symbol.hasInstance, {
  value: (x: unknown): boolean => x instanceof DirectoryInvalidError || x instanceof DirectoryUnavailableError,
});
