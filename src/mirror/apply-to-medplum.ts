import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { UnavailableError, type ErrorDetails } from '../errors.ts';
import { contentHash } from '../divergence/normalise.ts';
import type { Link } from '../journal/link.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { checkGuard, type WriteGuard } from './write-guard.ts';

/**
 * One idempotent write of a record's state to Medplum.
 */
export interface MedplumWrite<R extends Resource> {
  readonly mapping: ResourceMapping<unknown, R>;
  readonly legacyId: string;
  readonly link: Link | undefined;
  /** The state Medplum should hold, from its current copy (`undefined` when there is none). */
  readonly desired: (existing: WithId<R> | undefined) => R;
  readonly guard: WriteGuard;
}

/**
 * The outcome of a {@link MedplumWrite}.
 */
export interface MedplumWriteResult<R extends Resource> {
  readonly resource: WithId<R>;
  readonly action: 'created' | 'updated' | 'unchanged';
}

/**
 * Makes Medplum hold a record's desired state, idempotently: safe to repeat after any failure,
 * including one where the write landed but its answer was lost.
 *
 * 1. Find the current copy: by the link's id, else by the legacy identifier (an orphan left
 *    by a crash between create and link).
 * 2. If it already holds the desired content, do nothing.
 * 3. Check the guard (a moved target is a {@link ConflictError}).
 * 4. Update it with `If-Match` on the version just read, or create it.
 *
 * @param medplum - The Medplum side.
 * @param write - The record and its desired state.
 * @returns The resource as stored and what was done.
 */
export async function applyToMedplum<R extends Resource>(
  medplum: MedplumSide,
  write: MedplumWrite<R>,
): Promise<MedplumWriteResult<R>> {
  const { mapping, legacyId, link, guard } = write;
  const details: ErrorDetails = {
    side: 'medplum',
    resourceType: mapping.resourceType,
    legacyId,
    medplumId: link?.medplumId,
  };
  const existing =
    link === undefined
      ? await medplum.findByIdentifier<R>(mapping.resourceType, mapping.identifierSystem, legacyId)
      : await medplum.read<R>(mapping.resourceType, link.medplumId);
  const current = existing?.meta?.versionId;
  const desire = (): R => runMapping('toFhir', () => write.desired(existing), details);
  const desired = existing === undefined && guard.kind === 'update' ? undefined : desire();
  if (existing !== undefined && desired !== undefined) {
    const checked = withLegacyIdentifier(desired, mapping, legacyId, details);
    if (contentHash(existing) === contentHash(checked)) return { resource: existing, action: 'unchanged' };
  }
  const sameAsLastSync = existing !== undefined && contentHash(existing) === link?.contentHash;
  checkGuard(
    guard,
    { exists: existing !== undefined, version: current },
    link,
    link?.medplumVersion,
    sameAsLastSync,
    {
      ...details,
      medplumId: existing?.id ?? link?.medplumId,
    },
  );
  const resource = withLegacyIdentifier(desired ?? desire(), mapping, legacyId, details);
  if (existing !== undefined) {
    const updated = await medplum.update({ ...resource, id: existing.id }, current, {
      ...details,
      medplumId: existing.id,
    });
    return { resource: updated, action: 'updated' };
  }
  const { id: _id, meta: _meta, ...withoutId } = resource;
  const created = await medplum.create(
    withoutId as R,
    { system: mapping.identifierSystem, value: legacyId },
    details,
  );
  if (!created.created) {
    // Another process created the record between our search and our create. Go round again:
    // the next attempt finds that copy and compares, updates or reports a conflict.
    throw new UnavailableError(
      `${mapping.resourceType} for legacy id ${legacyId} was created concurrently; re-reading`,
      {
        ...details,
        medplumId: created.resource.id,
        status: 200,
      },
    );
  }
  return { resource: created.resource, action: 'created' };
}
