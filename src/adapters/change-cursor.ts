import { InvalidInputError } from '../errors.ts';

/**
 * The position of a table-backed change feed: the (updated-at, id) of the last row returned.
 * Encoded as base64url JSON so callers store it as an opaque string.
 *
 * @internal
 * @example
 * ```ts
 * const cursor: ChangeCursor = { updatedAt: '2026-01-02T03:04:05.123456Z', id: '42' };
 * ```
 */
export interface ChangeCursor {
  /** The last row's updated-at, as the exact ISO instant the adapter read. */
  readonly updatedAt: string;
  /** The last row's id. */
  readonly id: string;
}

/**
 * @param cursor - The position to encode.
 * @returns The opaque cursor string.
 * @example
 * ```ts
 * encodeChangeCursor({ updatedAt: '2026-01-02T03:04:05.123456Z', id: '42' }); // 'eyJ1Ijoi…'
 * ```
 */
export function encodeChangeCursor(cursor: ChangeCursor): string {
  return Buffer.from(JSON.stringify({ u: cursor.updatedAt, i: cursor.id }), 'utf8').toString('base64url');
}

/**
 * @param cursor - A string from {@link encodeChangeCursor}.
 * @param resourceType - The feed's resource type, for the error.
 * @returns The position.
 * @throws {@link InvalidInputError} naming `cursor` when the string is not such a cursor.
 * @example
 * ```ts
 * const { updatedAt, id } = decodeChangeCursor(page.cursor, 'Patient');
 * ```
 */
export function decodeChangeCursor(cursor: string, resourceType: string): ChangeCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const { u, i } =
    typeof parsed === 'object' && parsed !== null ? (parsed as { u?: unknown; i?: unknown }) : {};
  if (typeof u !== 'string' || typeof i !== 'string') {
    throw new InvalidInputError('cursor', 'is not a cursor this adapter returned', {
      side: 'legacy',
      resourceType,
    });
  }
  return { updatedAt: u, id: i };
}
