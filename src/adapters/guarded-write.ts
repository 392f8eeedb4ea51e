import { LegacyNotFoundError, LegacyVersionConflictError } from '../sides/legacy-adapter.ts';

/*
 * The decision both table adapters make around a write guarded by a version: the statement
 * itself carries the guard (`WHERE id = ? AND version = ?`), so a write that touched no row
 * says only that the record is missing or has moved on; one read then tells which, and the
 * error names the version found. An expected version that is not integer text can match no
 * row, so the write is not sent at all.
 */

/** An integer version as text, as both adapters' version columns hold it. */
const VERSION = /^-?\d{1,18}$/;

/**
 * The record a guarded write is about.
 *
 * @internal
 * @example
 * ```ts
 * const target: GuardedTarget = { resourceType: 'Patient', id: '7', expected: '3' };
 * ```
 */
export interface GuardedTarget {
  readonly resourceType: string;
  readonly id: string;
  /** The version the caller last saw; `undefined` writes whatever the version. */
  readonly expected: string | undefined;
}

/**
 * Runs a guarded update and answers the record it wrote.
 *
 * @param target - The record and the expected version.
 * @param write - The guarded statement: the record as written, or `undefined` when no row
 *   matched.
 * @param current - Reads the record as it is now (after a write that matched no row).
 * @returns What `write` answered.
 * @throws {@link LegacyNotFoundError} when there is no such record;
 *   {@link LegacyVersionConflictError} when its version is not the expected one.
 * @example
 * ```ts
 * return guardedUpdate({ resourceType, id, expected }, () => runUpdate(), () => this.read(resourceType, id));
 * ```
 */
export async function guardedUpdate<T>(
  target: GuardedTarget,
  write: () => Promise<T | undefined>,
  current: () => Promise<{ readonly version?: string | undefined } | undefined>,
): Promise<T> {
  const { resourceType, id, expected } = target;
  if (expected === undefined || VERSION.test(expected)) {
    const written = await write();
    if (written !== undefined) return written;
    if (expected === undefined) throw new LegacyNotFoundError(resourceType, id);
  }
  const now = await current();
  if (now === undefined) throw new LegacyNotFoundError(resourceType, id);
  throw new LegacyVersionConflictError(resourceType, id, expected, now.version);
}

/**
 * Runs a guarded delete; a record already gone is no error.
 *
 * @param target - The record and the expected version.
 * @param remove - The guarded statement: whether it removed a row (or found the id names no
 *   row there can be).
 * @param current - Reads the record as it is now (after a delete that matched no row).
 * @throws {@link LegacyVersionConflictError} when the record is there at another version.
 * @example
 * ```ts
 * await guardedDelete({ resourceType, id, expected }, async () => (await runDelete()) > 0, () => this.read(resourceType, id));
 * ```
 */
export async function guardedDelete(
  target: GuardedTarget,
  remove: () => Promise<boolean>,
  current: () => Promise<{ readonly version?: string | undefined } | undefined>,
): Promise<void> {
  const { resourceType, id, expected } = target;
  if (expected === undefined || VERSION.test(expected)) {
    const removed = await remove();
    if (expected === undefined || removed) return;
  }
  const now = await current();
  if (now !== undefined) throw new LegacyVersionConflictError(resourceType, id, expected, now.version);
}
