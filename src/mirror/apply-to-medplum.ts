import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { UnavailableError, type ErrorDetails } from '../errors.ts';
import { contentHash } from '../divergence/normalise.ts';
import type { Link } from '../journal/link.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { acceptsAsIs, checkGuard, type OwnWrites, type WriteGuard } from '../conflict/write-guard.ts';

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
  /**
   * Whether an outbox lease guards the record (no other mirror of it runs now): then a plain
   * create after a search is safe; otherwise the create is conditional on the identifier.
   * @default false
   */
  readonly guarded?: boolean | undefined;
  /** For mirrors: how to recognise an earlier attempt's write, and record this one's. */
  readonly own?: OwnWrites | undefined;
  /**
   * What a search by the legacy identifier found, when the caller searched already (under the
   * same guard); used instead of searching again when there is no link.
   */
  readonly found?: { readonly resource: WithId<R> | undefined } | undefined;
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
  const { mapping, legacyId, link } = write;
  const details: ErrorDetails = {
    side: 'medplum',
    resourceType: mapping.resourceType,
    legacyId,
    medplumId: link?.medplumId,
  };
  if (link !== undefined) {
    return settle(medplum, write, await medplum.read<R>(mapping.resourceType, link.medplumId), details);
  }
  if (write.guard.kind === 'update' || write.guarded === true) {
    // An update needs the copy. So does a mirror an outbox lease guards: nobody else mirrors the
    // record now, so a search finds any orphan and a plain create is then safe. On a real
    // Medplum that is far cheaper under concurrency than a conditional create (DESIGN.md: 150–185
    // plain creates/s against 11/s conditional at 8 concurrent requests, with 31% transient 409s).
    const existing =
      write.found !== undefined
        ? write.found.resource
        : await medplum.findByIdentifier<R>(mapping.resourceType, mapping.identifierSystem, legacyId);
    return settle(medplum, write, existing, details);
  }
  // Nothing guards the record (a caller's own create): let the server dedupe. The conditional
  // create's search finds an orphan or a concurrent writer's copy within the same request.
  const resource = withLegacyIdentifier(desireFrom(write, undefined, details), mapping, legacyId, details);
  await write.own?.mark(contentHash(resource));
  const { id: _id, meta: _meta, ...withoutId } = resource;
  const created = await medplum.create(
    withoutId as R,
    { system: mapping.identifierSystem, value: legacyId },
    details,
  );
  if (created.created) return { resource: created.resource, action: 'created' };
  return settle(medplum, write, created.resource, { ...details, medplumId: created.resource.id });
}

/** Compares the copy found with the desired state, checks the guard, and updates it if needed. */
async function settle<R extends Resource>(
  medplum: MedplumSide,
  write: MedplumWrite<R>,
  existing: WithId<R> | undefined,
  details: ErrorDetails,
): Promise<MedplumWriteResult<R>> {
  const { mapping, legacyId, link, guard } = write;
  const current = existing?.meta?.versionId;
  const desired =
    existing === undefined && guard.kind === 'update' ? undefined : desireFrom(write, existing, details);
  const checked =
    desired === undefined ? undefined : withLegacyIdentifier(desired, mapping, legacyId, details);
  if (
    existing !== undefined &&
    checked !== undefined &&
    contentHash(existing) === contentHash(checked) &&
    acceptsAsIs(guard, current)
  ) {
    return { resource: existing, action: 'unchanged' };
  }
  const found = existing === undefined ? undefined : contentHash(existing);
  // Not a change by someone else: the content last synced, or what an earlier attempt of this
  // mirror wrote before its answer was lost.
  const sameAsLastSync =
    found !== undefined && (found === link?.contentHash || write.own?.hashes.includes(found) === true);
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
  const resource =
    checked ?? withLegacyIdentifier(desireFrom(write, existing, details), mapping, legacyId, details);
  // Every write is recorded first, creates included: a worker that dies after its create
  // lands and before the link is saved leaves an unlinked copy, and the next attempt must tell
  // that copy (or its own later update of it) from an edit someone made since.
  await write.own?.mark(contentHash(resource));
  if (existing !== undefined) {
    const updated = await medplum.update({ ...resource, id: existing.id }, current, {
      ...details,
      medplumId: existing.id,
    });
    return { resource: updated, action: 'updated' };
  }
  const { id: _id, meta: _meta, ...withoutId } = resource;
  const identifier =
    write.guarded === true ? undefined : { system: mapping.identifierSystem, value: legacyId };
  const created = await medplum.create(withoutId as R, identifier, details);
  if (!created.created) {
    // Another process created the record since we looked. Go round again: the next attempt
    // finds that copy and compares, updates or reports a conflict.
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

function desireFrom<R extends Resource>(
  write: MedplumWrite<R>,
  existing: WithId<R> | undefined,
  details: ErrorDetails,
): R {
  return runMapping('toFhir', () => write.desired(existing), details);
}
