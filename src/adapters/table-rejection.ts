import { RejectedError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';

/**
 * What a table adapter read from a database error that refused a row for good, without the
 * server's message (it can quote the row's values).
 *
 * @internal
 * @example
 * ```ts
 * const facts: RefusedRow = { code: '23502', what: 'SQLSTATE 23502', column: 'last_name' };
 * ```
 */
export interface RefusedRow {
  /** The error's code as the database states it (a SQLSTATE, or a MySQL error number). */
  readonly code: string | undefined;
  /** The code as the message states it: `SQLSTATE 23502`, `MySQL error 1048 (…), SQLSTATE 23000`. */
  readonly what: string;
  /** The constraint the server named, when it named one. */
  readonly constraint?: string | undefined;
  /** The column the server named, when it named one. */
  readonly column?: string | undefined;
}

/**
 * The {@link RejectedError} both table adapters throw for a row the table refused (a NOT NULL,
 * CHECK, foreign key or unique constraint, a value of the wrong type or too long): retrying
 * cannot help. The message names the code, constraint and column; the `cause` is a value-free
 * copy of the driver's error unless the adapter reveals values.
 *
 * @internal
 * @param err - What the driver threw.
 * @param facts - What was read from it.
 * @param record - The resource type and legacy id concerned.
 * @param reveal - Whether the cause may keep values.
 * @returns The error.
 * @example
 * ```ts
 * throw refusedRow(err, { code: '23502', what: 'SQLSTATE 23502', column: 'last_name' }, { resourceType: 'Patient', legacyId: '7' }, false);
 * ```
 */
export function refusedRow(
  err: unknown,
  facts: RefusedRow,
  record: { readonly resourceType: string; readonly legacyId: string | undefined },
  reveal: boolean,
): RejectedError {
  const { code, what, constraint, column } = facts;
  const where = [
    what,
    constraint === undefined ? undefined : `constraint ${constraint}`,
    column === undefined ? undefined : `column ${column}`,
  ].filter((part) => part !== undefined);
  return new RejectedError(
    `${record.resourceType}: the legacy table rejected the row (${where.join(', ')})`,
    column === undefined ? [] : [column],
    {
      side: 'legacy',
      resourceType: record.resourceType,
      legacyId: record.legacyId,
      code,
      cause: reveal ? err : valueFreeError(err),
    },
  );
}
