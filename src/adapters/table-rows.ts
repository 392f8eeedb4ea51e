import { InvalidInputError } from '../errors.ts';
import { kindOf, refuseUnknownKeys } from '../option-checks.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';

/** Integer text as an integer column gives it back: `0`, `7100`, `-3`. */
const CANONICAL_INTEGER = /^(?:0|-?[1-9]\d*)$/;

/*
 * What the table adapters (PostgreSQL, MySQL/MariaDB) accept and answer, whatever the
 * database: rows are column name to value, records carry the id and version as text, and bad
 * arguments are refused with the field named before any SQL is sent.
 */

/**
 * A row's own value for a column: `null` counts as a value, `undefined` as absent (so an
 * inherited `__proto__` or `toString` is never read as a column).
 *
 * @internal
 * @param row - The row.
 * @param name - The column.
 * @returns The value, or `undefined`.
 * @example
 * ```ts
 * field({ name: null }, 'name'); // null
 * ```
 */
export function field(row: Readonly<Record<string, unknown>>, name: string): unknown {
  return Object.hasOwn(row, name) ? row[name] : undefined;
}

/**
 * A string, number or bigint as text; anything else (null, objects) as `undefined`.
 *
 * @internal
 * @param value - The value.
 * @returns Its text.
 * @example
 * ```ts
 * scalarText(7); // '7'
 * ```
 */
export function scalarText(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint'
    ? String(value)
    : undefined;
}

/**
 * The record a table adapter answers for a decoded row: the id and version as text.
 *
 * @internal
 * @param row - The row, decoded.
 * @param columns - The names of its id and version columns.
 * @param updatedAt - Its updated-at as an ISO 8601 instant.
 * @returns The record.
 * @example
 * ```ts
 * tableRecord({ id: 7, version: 2 }, { id: 'id', version: 'version' }, undefined); // { id: '7', version: '2', … }
 * ```
 */
export function tableRecord<R extends Record<string, unknown>>(
  row: R,
  columns: { readonly id: string; readonly version: string },
  updatedAt: string | undefined,
): LegacyRecord<R> {
  return {
    id: scalarText(row[columns.id]) ?? '',
    row,
    version: scalarText(row[columns.version]),
    updatedAt,
  };
}

/**
 * Refuses a row that is not an object, or that holds a key that is no column of the table (a
 * typo such as `famly_name`, `__proto__`): written, it would be dropped silently. Every column
 * counts, the version, the timestamp and generated ones too, so a row as read can be written
 * back.
 *
 * @internal
 * @param row - The row given.
 * @param columns - Every column of the table.
 * @param resourceType - The resource type, for the error.
 * @throws {@link InvalidInputError} naming `row` or `row.<key>`.
 * @example
 * ```ts
 * refuseNonColumns({ famly_name: 'L' }, ['id', 'family_name'], 'Patient'); // throws: row.famly_name
 * ```
 */
export function refuseNonColumns(row: unknown, columns: readonly string[], resourceType: string): void {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw new InvalidInputError('row', 'must be an object', { side: 'legacy', resourceType });
  refuseUnknownKeys(row as Record<string, unknown>, 'input', columns, 'row.', ['a column', 'columns']);
}

/**
 * The id a row to create carries, checked: text or a number, present when the table takes its
 * ids from the caller, and, for an integer key, an integer written as the key stores it. The
 * database would store `' 7100'`, `'+7100'`, `'0012'` or (MySQL) `'6100.0'` and `5100.4` under
 * another id than the one the writer links and mirrors the record by.
 *
 * @internal
 * @param row - The row to create.
 * @param idColumn - The id column's name.
 * @param fromCaller - Whether the table takes ids only from the caller.
 * @param resourceType - The resource type, for the error.
 * @param integerKey - Whether the id column is an integer column.
 * @returns The id as text, or `undefined` for the database to assign.
 * @throws {@link InvalidInputError} naming `row.<idColumn>`.
 * @example
 * ```ts
 * givenId({ id: 7 }, 'id', false, 'Patient', true); // '7'
 * ```
 */
export function givenId(
  row: Readonly<Record<string, unknown>>,
  idColumn: string,
  fromCaller: boolean,
  resourceType: string,
  integerKey = false,
): string | undefined {
  const value = field(row, idColumn) ?? undefined;
  const text = scalarText(value);
  const details = { side: 'legacy' as const, resourceType };
  if (value !== undefined && text === undefined)
    throw new InvalidInputError(`row.${idColumn}`, 'must be a string or a number', details);
  if (integerKey && text !== undefined && !CANONICAL_INTEGER.test(text))
    throw new InvalidInputError(
      `row.${idColumn}`,
      'must be an integer as the key stores it: digits and an optional leading minus, without spaces, a plus sign, leading zeros or a fraction',
      details,
    );
  if (text === undefined && fromCaller)
    throw new InvalidInputError(
      `row.${idColumn}`,
      'is required: this table takes its ids from the caller',
      details,
    );
  return text;
}

/**
 * Checks the ids of a `readMany` and answers them without repeats.
 *
 * @internal
 * @param ids - The ids given.
 * @returns The distinct ids, in order.
 * @throws {@link InvalidInputError} naming `ids`.
 * @example
 * ```ts
 * distinctIds(['1', '1', '2']); // ['1', '2']
 * ```
 */
export function distinctIds(ids: readonly string[]): string[] {
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id !== ''))
    throw new InvalidInputError('ids', 'must be an array of non-empty strings');
  return [...new Set<string>(ids)];
}

/**
 * Checks a page size (`scan`, `changesSince`).
 *
 * @internal
 * @param limit - The page size given.
 * @param resourceType - The resource type, for the error.
 * @throws {@link InvalidInputError} naming `limit`.
 * @example
 * ```ts
 * checkLimit(0, 'Patient'); // throws: limit: must be a positive integer, got a number
 * ```
 */
export function checkLimit(limit: number, resourceType: string): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    // Its kind, never its value: an InvalidInputError does not quote what it refuses.
    throw new InvalidInputError('limit', `must be a positive integer, got ${kindOf(limit)}`, {
      side: 'legacy',
      resourceType,
    });
  }
}
