import { isDeepStrictEqual } from 'node:util';
import { MappingError, UnavailableError, type ErrorDetails } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import { runMapping } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { classifyLegacyError } from '../sides/legacy-failure.ts';
import {
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyRecord,
} from '../sides/legacy-adapter.ts';
import { checkGuard, type WriteGuard } from './write-guard.ts';

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
  const existing = await call(() => legacy.read(mapping.resourceType, legacyId), details);
  const desire = (): L => runMapping('toLegacy', () => write.desired(existing), details);
  const desired = existing === undefined && guard.kind === 'update' ? undefined : desire();
  const row = desired === undefined ? undefined : withId(mapping, desired, legacyId, details);
  if (existing !== undefined && row !== undefined && isDeepStrictEqual(existing.row, row)) {
    return { record: existing, action: 'unchanged' };
  }
  // Legacy rows are compared as rows, not by FHIR hash: without versions, content decides.
  checkGuard(
    guard,
    { exists: existing !== undefined, version: existing?.version },
    link,
    link?.legacyVersion,
    false,
    details,
  );
  const target = row ?? withId(mapping, desire(), legacyId, details);
  if (existing !== undefined) {
    const record = await call(
      () => legacy.update(mapping.resourceType, legacyId, target, { expectedVersion: existing.version }),
      details,
    );
    return { record, action: 'updated' };
  }
  try {
    const record = await legacy.create(mapping.resourceType, target);
    return { record, action: 'created' };
  } catch (err) {
    if (err instanceof LegacyVersionConflictError && err.expectedVersion === undefined) {
      // Another process created the record between our read and our create. Go round again:
      // the next attempt reads that row and compares, updates or reports a conflict.
      throw new UnavailableError(
        `${mapping.resourceType}/${legacyId} was created concurrently; re-reading`,
        details,
      );
    }
    throw classifyLegacyError(err, details);
  }
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

async function call<T>(fn: () => Promise<T>, details: ErrorDetails): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classifyLegacyError(err, details);
  }
}
