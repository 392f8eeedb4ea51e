import { DualWriteError, JournalError } from '../errors.ts';
import { databaseError } from '../sql/database-failure.ts';

/**
 * What a journal call throws when its database fails: a lost connection, a terminated backend
 * (SQLSTATE 57P01), a failover or an overloaded server is an `UnavailableError` (retryable);
 * any other driver error is a {@link JournalError}. Neither carries the driver's values, and the
 * store's own typed errors (a `LinkConflictError`, an `InvalidInputError`) pass through. The
 * store's internals still see the driver's errors (they read SQLSTATEs); only what leaves a
 * `PostgresStore` method is translated.
 *
 * @param err - What a journal statement threw.
 * @returns The typed error to throw.
 * @example
 * ```ts
 * await sql.query(text, params).catch((err: unknown) => { throw journalFailure(err); });
 * ```
 */
export function journalFailure(err: unknown): DualWriteError {
  return databaseError(err, 'the journal', {}, (message, details) => new JournalError(message, details));
}

/**
 * Runs a journal call, translating what it throws with {@link journalFailure}.
 *
 * @param call - The call.
 * @returns What the call returns.
 * @example
 * ```ts
 * return typedJournal(() => links.getLink(sql, tables, resourceType, legacyId));
 * ```
 */
export async function typedJournal<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw journalFailure(err);
  }
}
