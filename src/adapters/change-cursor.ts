import { InvalidInputError } from '../errors.ts';
import type { LegacyChange, LegacyChangePage } from '../sides/legacy-adapter.ts';

/**
 * The position of a table-backed change feed: the updated-at of the last row returned, and the
 * changes (id and version) already returned at exactly that instant. A change stamped with the
 * same instant but not yet returned — a coarse clock (PGlite's ticks in milliseconds) gives two
 * writes one stamp, and the second may have the lower id, or be the same row written again — is
 * still found; a plain `(updated_at, id) >` cursor skipped it.
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
  /** Every change key (`id@version`) returned at exactly `updatedAt` (the last one's included). */
  readonly seen: readonly string[];
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
  return Buffer.from(JSON.stringify({ u: cursor.updatedAt, i: cursor.id, s: cursor.seen }), 'utf8').toString(
    'base64url',
  );
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
  const { u, i, s } =
    typeof parsed === 'object' && parsed !== null
      ? (parsed as { u?: unknown; i?: unknown; s?: unknown })
      : {};
  const seen = s === undefined ? [] : s;
  if (
    typeof u !== 'string' ||
    typeof i !== 'string' ||
    !Array.isArray(seen) ||
    !seen.every((id): id is string => typeof id === 'string')
  ) {
    throw new InvalidInputError('cursor', 'is not a cursor this adapter returned', {
      side: 'legacy',
      resourceType,
    });
  }
  return { updatedAt: u, id: i, seen };
}

/**
 * The cursor after a page: its last row's instant, with the ids returned at that instant (on
 * this page, and on earlier pages when the instant is the previous cursor's).
 *
 * @param previous - The cursor the page started after, if any.
 * @param page - The page's changes in order: instant, id and change key.
 * @returns The next cursor, or `undefined` for an empty page.
 * @example
 * ```ts
 * const next = nextChangeCursor(after, rows.map((row) => ({ at: row.updatedAt, id: row.id, key: `${row.id}@${row.version}` })));
 * ```
 */
export function nextChangeCursor(
  previous: ChangeCursor | undefined,
  page: readonly { readonly at: string; readonly id: string; readonly key: string }[],
): ChangeCursor | undefined {
  const last = page.at(-1);
  if (last === undefined) return undefined;
  const here = page.filter((row) => row.at === last.at).map((row) => row.key);
  const earlier = previous?.updatedAt === last.at ? previous.seen : [];
  return { updatedAt: last.at, id: last.id, seen: [...new Set([...earlier, ...here])] };
}

/**
 * One change a table feed read, with where it stands in the feed's order.
 *
 * @internal
 * @example
 * ```ts
 * const read: ChangeRead<Row> = { at: '2026-01-02T03:04:05.123456Z', id: '7', key: '7@3', change };
 * ```
 */
export interface ChangeRead<R> {
  /** The instant as the cursor keeps it (`undefined`: the row carries none; not a position). */
  readonly at: string | undefined;
  readonly id: string;
  /** The change key the cursor remembers at its instant (`id@version`, or a tombstone's). */
  readonly key: string;
  readonly change: LegacyChange<R>;
}

/**
 * A feed page from the changes one query read, in feed order: the changes, and the cursor after
 * the last one (the cursor the page started after, when it read nothing).
 *
 * @param after - The position the page started after.
 * @param cursor - That position as the caller gave it.
 * @param reads - The changes read, in order.
 * @returns The page.
 * @example
 * ```ts
 * return changePage(after, cursor, rows.map((raw) => readOf(raw)));
 * ```
 */
export function changePage<R>(
  after: ChangeCursor | undefined,
  cursor: string | undefined,
  reads: readonly ChangeRead<R>[],
): LegacyChangePage<R> {
  const next = nextChangeCursor(
    after,
    reads.flatMap(({ at, id, key }) => (at === undefined ? [] : [{ at, id, key }])),
  );
  return {
    changes: reads.map((read) => read.change),
    cursor: next === undefined ? cursor : encodeChangeCursor(next),
  };
}
