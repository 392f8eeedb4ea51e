import {
  ConflictError,
  DualWriteError,
  RejectedError,
  UnavailableError,
  type ErrorDetails,
} from '../errors.ts';
import { LegacyNotFoundError, LegacyVersionConflictError } from './legacy-adapter.ts';

/** Node socket errors that mean "no answer", worth another attempt. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/**
 * SQLSTATE classes and codes that are transient: connection exceptions (08), serialisation
 * failure (40001), deadlock (40P01), shutdowns (57P01–57P03), too many connections (53300).
 */
function isTransientSqlState(code: string): boolean {
  return code.startsWith('08') || ['40001', '40P01', '57P01', '57P02', '57P03', '53300'].includes(code);
}

/**
 * Turns whatever a legacy adapter threw into the library's typed error.
 *
 * - {@link LegacyVersionConflictError} → {@link ConflictError}
 * - {@link LegacyNotFoundError} → {@link RejectedError} with status 404
 * - an error with `retryable: true`, a socket error code, or a transient SQLSTATE →
 *   {@link UnavailableError} (retried)
 * - anything else → {@link RejectedError} (not retried: an unknown legacy error is assumed
 *   permanent, because retrying a non-idempotent legacy create could duplicate a row)
 *
 * @param error - What the adapter threw.
 * @param details - The record concerned.
 * @returns A typed error.
 */
export function classifyLegacyError(error: unknown, details: ErrorDetails): DualWriteError {
  if (error instanceof DualWriteError) return error;
  const base = { ...details, side: 'legacy' as const, cause: error };
  if (error instanceof LegacyVersionConflictError) {
    return new ConflictError(error.message, error.expectedVersion, error.actualVersion, base);
  }
  if (error instanceof LegacyNotFoundError) {
    return new RejectedError(error.message, [], { ...base, status: 404 });
  }
  const record = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  const code = typeof record.code === 'string' ? record.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (
    record.retryable === true ||
    (code !== undefined && (TRANSIENT_CODES.has(code) || isTransientSqlState(code)))
  ) {
    return new UnavailableError(`legacy ${details.resourceType ?? ''} request failed: ${message}`, base);
  }
  return new RejectedError(`legacy ${details.resourceType ?? ''} request failed: ${message}`, [], base);
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
