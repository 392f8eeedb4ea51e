import { isDeepStrictEqual } from 'node:util';
import { MappingError, UnavailableError, type ErrorDetails } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import { runMapping } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { callLegacy, classifyLegacyError } from '../sides/legacy-failure.ts';
import { unknownIfLanded, writeLegacy } from '../sides/write-outcome.ts';
import {
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyRecord,
} from '../sides/legacy-adapter.ts';
import { acceptsAsIs, checkGuard, type OwnWrites, type WriteGuard } from '../conflict/write-guard.ts';
import { contentHash } from '../divergence/normalise.ts';

/**
 * One idempotent write of a record's state to the legacy system.
 */
export interface LegacyWrite<L> {
  readonly mapping: ResourceMapping<L>;
  readonly legacyId: string;
  readonly link: Link | undefined;
  /** The row the legacy system should hold, from its current record (`undefined` when none). */
  readonly desired: (existing: LegacyRecord<L> | undefined) => L;
  readonly guard: WriteGuard;
  /** For mirrors: how to recognise an earlier attempt's write, and record this one's. */
  readonly own?: OwnWrites | undefined;
  /**
   * For mirrors: whether the stored record, as the mapping sees it, still holds what was last
   * synced, so that a version moved by columns the mapping does not cover (another part of the
   * record, a column of no mapping) is not taken for a change. Asked only when the version moved.
   */
  readonly unchangedSinceSync?: ((existing: LegacyRecord<L>) => Promise<boolean>) | undefined;
}

/**
 * The outcome of a {@link LegacyWrite}.
 */
export interface LegacyWriteResult<L> {
  readonly record: LegacyRecord<L>;
  readonly action: 'created' | 'updated' | 'unchanged';
}

/**
 * Makes the legacy system hold a record's desired row, idempotently: read, compare, then
 * update with the version just read as the expected version, or create.
 *
 * @param legacy - The legacy adapter.
 * @param write - The record and its desired row.
 * @returns The record as stored and what was done.
 */
export async function applyToLegacy<L>(
  legacy: LegacyAdapter<L>,
  write: LegacyWrite<L>,
): Promise<LegacyWriteResult<L>> {
  const { mapping, legacyId, link, guard } = write;
  const details: ErrorDetails = {
    side: 'legacy',
    resourceType: mapping.resourceType,
    legacyId,
    medplumId: link?.medplumId,
  };
  // A part (`partOf`) is written into its owner's record, which exists: read it first.
  if (guard.kind === 'update' || link !== undefined || mapping.partOf !== undefined) {
    return settle(
      legacy,
      write,
      await callLegacy(() => legacy.read(mapping.resourceType, legacyId), details),
      details,
    );
  }
  // Unlinked and not required to exist: insert straight away; the table's key catches a row
  // that is already there (a replay, or another writer), and only then is it read and compared.
  const row = withId(mapping, desireFrom(write, undefined, details), legacyId, details);
  // Recorded before the insert, as every write is (see settle).
  await write.own?.mark(rowHash(row));
  try {
    return { record: await legacy.create(mapping.resourceType, row), action: 'created' };
  } catch (err) {
    if (!(err instanceof LegacyVersionConflictError && err.expectedVersion === undefined))
      throw unknownIfLanded(classifyLegacyError(err, details), err);
  }
  const existing = await callLegacy(() => legacy.read(mapping.resourceType, legacyId), details);
  return settle(legacy, write, existing, details);
}

/** Compares the record found with the desired row, checks the guard, and writes if needed. */
async function settle<L>(
  legacy: LegacyAdapter<L>,
  write: LegacyWrite<L>,
  existing: LegacyRecord<L> | undefined,
  details: ErrorDetails,
): Promise<LegacyWriteResult<L>> {
  const { mapping, legacyId, link, guard } = write;
  const desired =
    existing === undefined && guard.kind === 'update' ? undefined : desireFrom(write, existing, details);
  const row = desired === undefined ? undefined : withId(mapping, desired, legacyId, details);
  if (
    existing !== undefined &&
    row !== undefined &&
    holds(existing.row, row) &&
    acceptsAsIs(guard, existing.version)
  ) {
    return { record: existing, action: 'unchanged' };
  }
  // An earlier attempt's own write (its answer lost, its worker dead) is not someone else's
  // change: the row then holds exactly the fields that attempt recorded it would write.
  const own =
    existing !== undefined &&
    ((row !== undefined && (write.own?.hashes.includes(rowHash(pick(existing.row, row))) ?? false)) ||
      (existing.version !== link?.legacyVersion &&
        write.unchangedSinceSync !== undefined &&
        (await write.unchangedSinceSync(existing))));
  checkGuard(
    guard,
    { exists: existing !== undefined, version: existing?.version },
    link,
    link?.legacyVersion,
    own,
    details,
  );
  const target = row ?? withId(mapping, desireFrom(write, existing, details), legacyId, details);
  // Recorded before every write, creates included: a worker that dies after its insert lands
  // and before the link is saved leaves an unlinked row, and the next attempt must tell that
  // row (or its own later update of it) from an edit someone made since.
  await write.own?.mark(rowHash(target));
  if (existing !== undefined) {
    const record = await writeLegacy(
      () => legacy.update(mapping.resourceType, legacyId, target, { expectedVersion: existing.version }),
      details,
    );
    return { record, action: 'updated' };
  }
  try {
    return { record: await legacy.create(mapping.resourceType, target), action: 'created' };
  } catch (err) {
    if (err instanceof LegacyVersionConflictError && err.expectedVersion === undefined) {
      // Another process created the record since we looked. Go round again: the next attempt
      // reads that row and compares, updates or reports a conflict.
      throw new UnavailableError(
        `${mapping.resourceType}/${legacyId} was created concurrently; re-reading`,
        details,
      );
    }
    throw unknownIfLanded(classifyLegacyError(err, details), err);
  }
}

/**
 * Whether a stored row already holds a desired row: every field the desired row sets has the
 * same value. Columns it does not set (the adapter's version and timestamps, columns no mapping
 * covers) are the legacy system's business.
 */
function holds<L>(stored: L, desired: L): boolean {
  if (typeof stored !== 'object' || stored === null || typeof desired !== 'object' || desired === null) {
    return isDeepStrictEqual(stored, desired);
  }
  const have = stored as Record<string, unknown>;
  return Object.entries(desired).every(
    ([key, value]) => isDeepStrictEqual(have[key], value) || (value === undefined && have[key] === null),
  );
}

/** A row's content hash, over the fields it sets. */
function rowHash(row: unknown): string {
  return contentHash({ row });
}

/** The stored row's values for the fields a desired row sets. */
function pick<L>(stored: L, desired: L): unknown {
  if (typeof stored !== 'object' || stored === null || typeof desired !== 'object' || desired === null)
    return stored;
  const have = stored as Record<string, unknown>;
  return Object.fromEntries(Object.keys(desired).map((key) => [key, have[key]]));
}

function desireFrom<L>(
  write: LegacyWrite<L>,
  existing: LegacyRecord<L> | undefined,
  details: ErrorDetails,
): L {
  return runMapping('toLegacy', () => write.desired(existing), details);
}

/**
 * Ensures a row carries the record's legacy id.
 *
 * @param mapping - The mapping.
 * @param row - The mapped row.
 * @param legacyId - The id it must carry.
 * @param details - The record concerned.
 * @returns The row with its id.
 */
export function withId<L>(mapping: ResourceMapping<L>, row: L, legacyId: string, details: ErrorDetails): L {
  const current = runMapping('legacyId', () => mapping.legacyId(row), details);
  if (current === legacyId) return row;
  if (current !== undefined)
    throw new MappingError('legacyId', 'toLegacy returned a row with another legacy id', details);
  if (mapping.withLegacyId === undefined) {
    throw new MappingError(
      'withLegacyId',
      'the mapping must implement withLegacyId(row, id) to write records that start in Medplum',
      details,
    );
  }
  const withLegacyId = mapping.withLegacyId.bind(mapping);
  return runMapping('withLegacyId', () => withLegacyId(row, legacyId), details);
}
