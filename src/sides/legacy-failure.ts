import {
  ConflictError,
  DualWriteError,
  RejectedError,
  UnavailableError,
  type ErrorDetails,
} from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import { databaseCodeOf, isTransientDatabaseError } from '../sql/database-failure.ts';
import { LegacyNotFoundError, LegacyVersionConflictError } from './legacy-adapter.ts';

/**
 * Turns whatever a legacy adapter threw into the library's typed error.
 *
 * - {@link LegacyVersionConflictError} → {@link ConflictError}
 * - {@link LegacyNotFoundError} → {@link RejectedError} with status 404
 * - an error with `retryable: true`, or a transient database failure (a lost connection, a
 *   terminated backend, a failover, a deadlock: see `database-failure.ts`) →
 *   {@link UnavailableError} (retried)
 * - anything else → {@link RejectedError} (not retried: an unknown legacy error is assumed
 *   permanent, because retrying a non-idempotent legacy create could duplicate a row)
 *
 * The typed error carries no values: the adapter's message is kept with quoted values taken
 * out, and its `cause` is a value-free copy of what the adapter threw (`code`, `constraint`
 * and `column` kept; a driver's `detail`, which quotes the row, dropped).
 *
 * @param error - What the adapter threw.
 * @param details - The record concerned.
 * @returns A typed error.
 */
export function classifyLegacyError(error: unknown, details: ErrorDetails): DualWriteError {
  if (error instanceof DualWriteError) return error;
  const base = { ...details, side: 'legacy' as const, cause: valueFreeError(error) };
  if (error instanceof LegacyVersionConflictError) {
    // As HTTP says it: a stale expected version is a 412, a create of an existing id a 409.
    const status = error.expectedVersion === undefined ? 409 : 412;
    return new ConflictError(error.message, error.expectedVersion, error.actualVersion, { ...base, status });
  }
  if (error instanceof LegacyNotFoundError) {
    return new RejectedError(error.message, [], { ...base, legacyId: undefined, status: 404 });
  }
  const retryable =
    typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === true;
  const code = databaseCodeOf(error);
  const typed = { ...base, code };
  const what = `legacy ${details.resourceType ?? ''} request failed${code === undefined ? '' : ` (${code})`}`;
  const message = `${what}: ${base.cause.message}`;
  if (retryable || isTransientDatabaseError(error)) return new UnavailableError(message, typed);
  return new RejectedError(message, [], typed);
}

/**
 * Runs one call to the legacy adapter, turning whatever it throws into the library's typed
 * error ({@link classifyLegacyError}). Every legacy call of the library goes through it.
 *
 * @param fn - The call.
 * @param details - The record concerned.
 * @returns What the call returned.
 * @throws The typed error.
 * @example
 * ```ts
 * const record = await callLegacy(() => legacy.read('Patient', 'p-1'), { resourceType: 'Patient', legacyId: 'p-1' });
 * ```
 */
export async function callLegacy<T>(fn: () => Promise<T>, details: ErrorDetails): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classifyLegacyError(err, details);
  }
}
