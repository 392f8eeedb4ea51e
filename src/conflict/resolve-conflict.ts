import { valueFreeError } from '../error-values.ts';
import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { diff, type RevealedDiffEntry } from '../divergence/diff.ts';
import {
  ConflictError,
  InvalidInputError,
  RejectedError,
  UnavailableError,
  type ErrorDetails,
  type Side,
} from '../errors.ts';
import type { Link } from '../journal/link.ts';
import type { OutboxEntry } from '../journal/outbox.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { routeOf, type Stage } from '../plan/stage.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import type { OwnWrites, WriteGuard } from './write-guard.ts';
import type { ConflictContext, ConflictResolver, Resolution } from './conflict-context.ts';
import { ReviewRequiredError, type ConflictReport } from './conflict-report.ts';

/** What resolving a conflict needs of the writer. */
export interface ResolveContext<L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly resolver: ConflictResolver;
  /** The stage of a unit and resource type now. */
  readonly stageOf: (unit: string, resourceType: string) => Stage;
  /**
   * Makes the legacy system hold a decided row, guarded and idempotent (the mirror's
   * `applyToLegacy`, given here so that conflict/ does not depend on the mirror's writes).
   */
  readonly writeLegacy: (
    write: ResolvedWrite<L, LegacyRecord<L>>,
  ) => Promise<{ readonly record: LegacyRecord<L> }>;
  /**
   * Makes Medplum hold a decided resource, guarded and idempotent (the mirror's
   * `applyToMedplum`, with the record's lease taken into account).
   */
  readonly writeMedplum: (
    write: ResolvedWrite<L, WithId<Resource>, Resource>,
  ) => Promise<{ readonly resource: WithId<Resource> }>;
  /**
   * Binds a mapping to the references of a record's copies, resolved (see
   * `withReferences`); without it, mappings are called with none.
   */
  readonly withReferences?:
    | ((
        mapping: ResourceMapping<L>,
        copies: { readonly row?: L | undefined; readonly resource?: Resource | undefined },
        details: ErrorDetails,
      ) => Promise<ResourceMapping<L>>)
    | undefined;
}

/**
 * One side's write of a resolution: the record, the state it should hold from its current copy,
 * and the guard on that copy's version.
 *
 * @typeParam L - The legacy row type.
 * @typeParam E - The side's copy as found.
 * @typeParam D - What the side should hold.
 */
export interface ResolvedWrite<L, E, D = L> {
  readonly mapping: ResourceMapping<L>;
  readonly legacyId: string;
  readonly link: Link | undefined;
  readonly desired: (existing: E | undefined) => D;
  readonly guard: WriteGuard;
  readonly own: OwnWrites | undefined;
}

/** Both sides' copies of a record after a resolution was applied, for the link. */
export interface ResolvedCopies<L> {
  readonly resource: WithId<Resource> | undefined;
  readonly record: LegacyRecord<L> | undefined;
  readonly report: ConflictReport;
}

/**
 * Resolves a conflict found while mirroring `entry`: reads both sides' current copies, asks the
 * resolver (or takes an operator's `decided` resolution), and writes the outcome to both sides
 * through the same idempotent writes as every mirror — the side the change came from first,
 * then the target — each guarded by the version the resolver saw, so a third change meanwhile
 * is not overwritten unseen (the entry is retried and the resolver asked again).
 *
 * @param ctx - The sides and the resolver.
 * @param mapping - The record's mapping.
 * @param entry - The outbox entry being mirrored.
 * @param link - The record's link (the last sync), if any.
 * @param found - The conflict the mirror ran into.
 * @param own - How the target write records its content before writing.
 * @param decided - An operator's resolution, which replaces the resolver's.
 * @returns Both copies after the resolution, and the report of the conflict.
 * @throws {@link ReviewRequiredError} when the resolution is manual review.
 */
export async function resolveConflict<L>(
  ctx: ResolveContext<L>,
  mapping: ResourceMapping<L>,
  entry: Pick<OutboxEntry, 'resourceType' | 'legacyId' | 'unit' | 'target'>,
  link: Link | undefined,
  found: ConflictError | undefined,
  own: OwnWrites | undefined,
  decided?: Resolution,
): Promise<ResolvedCopies<L>> {
  const { resourceType, legacyId, unit, target } = entry;
  const stage = ctx.stageOf(unit, resourceType);
  // The stage's authority, which is not always the side the change came from: a change feed
  // mirrors edits made directly in either system.
  const authority: Side = routeOf(stage).authority;
  const details: ErrorDetails = { resourceType, legacyId, side: target, medplumId: link?.medplumId };
  const resource =
    link === undefined
      ? await ctx.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId)
      : await ctx.medplum.read(resourceType, link.medplumId);
  const record = await callLegacy(() => ctx.legacy.read(resourceType, legacyId), {
    ...details,
    side: 'legacy',
  });
  // Both directions may map here (the winner's copy goes to the other side): resolve both.
  mapping =
    ctx.withReferences === undefined
      ? mapping
      : await ctx.withReferences(mapping, { row: record?.row, resource }, details);
  const legacy =
    record === undefined
      ? undefined
      : withLegacyIdentifier(
          // Onto the last-synced content, so fields the legacy system does not hold read as
          // unchanged on its side rather than as copies of Medplum's changes.
          runMapping('toFhir', () => mapping.toFhir(record.row, link?.base ?? resource, {}), details),
          mapping,
          legacyId,
          details,
        );
  const conflict: ConflictContext = {
    resourceType,
    legacyId,
    medplumId: resource?.id ?? link?.medplumId,
    unit,
    stage,
    authority,
    base: link?.base,
    legacy,
    medplum: resource,
    incoming: target === 'medplum' ? legacy : resource,
    updatedAt: { legacy: record?.updatedAt, medplum: resource?.meta?.lastUpdated },
    syncedAt: link?.syncedAt,
    detectedAt: new Date().toISOString(),
  };
  const resolution = decided ?? (await ask(ctx.resolver, conflict, details));
  const report = reportOf(conflict, target, resolution, found, mapping);
  if ('manual' in resolution) {
    throw new ReviewRequiredError(report, resolution.manual, wantsTask(resolution), details);
  }
  if ('merged' in resolution && resolution.merged.resourceType !== resourceType) {
    throw new RejectedError(
      `the resolver merged a ${resolution.merged.resourceType} for a ${resourceType} conflict`,
      [],
      details,
    );
  }
  const desired = desiredOf(mapping, resolution, record, resource);
  try {
    const written = await writeBoth(ctx, mapping, entry, link, desired, { resource, record }, own);
    return { ...written, report };
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    throw new UnavailableError(
      `${resourceType}/${legacyId} changed again while its conflict was being resolved; nothing was overwritten, try again`,
      {
        ...details,
        status: err.status,
        cause: err,
      },
    );
  }
}

/**
 * What each side must hold after a resolution: `delete` when the winner has no copy; otherwise
 * a function per side that must change (the winner keeps its copy as it is). A winner's copy
 * reaches the other side the way every mirror does (its mapped fields over the other's copy).
 */
type Desired<L> =
  | 'delete'
  | {
      readonly legacy: ((existing: LegacyRecord<L> | undefined) => L) | undefined;
      readonly medplum: ((existing: WithId<Resource> | undefined) => Resource) | undefined;
    };

function desiredOf<L>(
  mapping: ResourceMapping<L>,
  resolution: Exclude<Resolution, { readonly manual: string }>,
  record: LegacyRecord<L> | undefined,
  resource: WithId<Resource> | undefined,
): Desired<L> {
  if ('merged' in resolution) {
    const { id: _id, meta: _meta, ...merged } = resolution.merged;
    return {
      legacy: (existing) => mapping.toLegacy(merged, existing?.row, {}),
      medplum: (existing) => (existing === undefined ? merged : { ...merged, id: existing.id }),
    };
  }
  if (resolution.winner === 'legacy') {
    if (record === undefined) return 'delete';
    return { legacy: undefined, medplum: (existing) => mapping.toFhir(record.row, existing, {}) };
  }
  if (resource === undefined) return 'delete';
  return { legacy: (existing) => mapping.toLegacy(resource, existing?.row, {}), medplum: undefined };
}

/**
 * Writes the resolved content (or its absence) to the side the change came from, then to the target.
 */
async function writeBoth<L>(
  ctx: ResolveContext<L>,
  mapping: ResourceMapping<L>,
  entry: Pick<OutboxEntry, 'resourceType' | 'legacyId' | 'target'>,
  link: Link | undefined,
  desired: Desired<L>,
  seen: { readonly resource: WithId<Resource> | undefined; readonly record: LegacyRecord<L> | undefined },
  own: OwnWrites | undefined,
): Promise<{ resource: WithId<Resource> | undefined; record: LegacyRecord<L> | undefined }> {
  const { resourceType, legacyId, target } = entry;
  const toLegacy = async (): Promise<LegacyRecord<L> | undefined> => {
    const details: ErrorDetails = { resourceType, legacyId, side: 'legacy', medplumId: link?.medplumId };
    if (desired === 'delete') {
      if (seen.record !== undefined) {
        const expectedVersion = seen.record.version;
        await callLegacy(() => ctx.legacy.delete(resourceType, legacyId, { expectedVersion }), details);
      }
      return undefined;
    }
    const wanted = desired.legacy;
    if (wanted === undefined) return seen.record;
    const written = await ctx.writeLegacy({
      mapping,
      legacyId,
      link,
      desired: wanted,
      guard: guardFor(seen.record !== undefined, seen.record?.version),
      own: target === 'legacy' ? own : undefined,
    });
    return written.record;
  };
  const toMedplum = async (): Promise<WithId<Resource> | undefined> => {
    if (desired === 'delete') {
      if (seen.resource !== undefined) {
        await ctx.medplum.delete(resourceType, seen.resource.id, {
          resourceType,
          legacyId,
          side: 'medplum',
          medplumId: seen.resource.id,
        });
      }
      return undefined;
    }
    const wanted = desired.medplum;
    if (wanted === undefined) return seen.resource;
    const written = await ctx.writeMedplum({
      mapping,
      legacyId,
      // Without a copy, or a link, the write finds the record by its identifier as any mirror does.
      link: seen.resource === undefined ? undefined : link,
      desired: wanted,
      guard: guardFor(seen.resource !== undefined, seen.resource?.meta?.versionId),
      own: target === 'medplum' ? own : undefined,
    });
    return written.resource;
  };
  if (target === 'medplum') {
    const record = await toLegacy();
    return { record, resource: await toMedplum() };
  }
  const resource = await toMedplum();
  return { resource, record: await toLegacy() };
}

/**
 * A copy the resolver saw must still be at the version it saw (one already holding the decided
 * content is done, whatever its version); an absent one is (re)created.
 */
function guardFor(exists: boolean, version: string | undefined): WriteGuard {
  return exists ? { kind: 'update', version, ownEarlierWrite: true } : { kind: 'overwrite' };
}

async function ask(
  resolver: ConflictResolver,
  conflict: ConflictContext,
  details: ErrorDetails,
): Promise<Resolution> {
  let resolution: unknown;
  try {
    resolution = await resolver(conflict);
  } catch (err) {
    throw new RejectedError(
      `the conflict resolver failed: ${err instanceof Error ? err.name : typeof err}`,
      [],
      { ...details, cause: valueFreeError(err) },
    );
  }
  if (!isResolution(resolution)) {
    throw new RejectedError(
      "the conflict resolver must return { winner: 'legacy' | 'medplum' }, { merged: resource } or { manual: reason }",
      [],
      details,
    );
  }
  return resolution;
}

/**
 * Checks an operator's resolution (`resolveDeadLetter`): it must decide (a winner or a merged
 * resource); `manual` would leave the record where it is.
 *
 * @param value - What the operator passed.
 * @returns The resolution, named `operator` in events.
 * @throws {@link InvalidInputError} naming `resolution`.
 * @example
 * ```ts
 * const decided = operatorResolution({ winner: 'legacy' });
 * ```
 */
export function operatorResolution(value: unknown): Exclude<Resolution, { readonly manual: string }> {
  if (!isResolution(value) || 'manual' in value) {
    throw new InvalidInputError(
      'resolution',
      "must be { winner: 'legacy' | 'medplum' } or { merged: resource } (an operator's decision)",
    );
  }
  return { ...value, by: 'operator' };
}

function isResolution(value: unknown): value is Resolution {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  if ('winner' in r) return r.winner === 'legacy' || r.winner === 'medplum';
  if ('merged' in r) {
    const merged = r.merged as { resourceType?: unknown } | null;
    return typeof merged === 'object' && merged !== null && typeof merged.resourceType === 'string';
  }
  return 'manual' in r && typeof r.manual === 'string';
}

function wantsTask(resolution: Resolution): boolean {
  return 'manual' in resolution && resolution.task === true;
}

function reportOf(
  conflict: ConflictContext,
  target: Side,
  resolution: Resolution,
  found: ConflictError | undefined,
  mapping: ResourceMapping<unknown>,
): ConflictReport {
  const changes = (copy: Resource | undefined): readonly RevealedDiffEntry[] | undefined =>
    conflict.base === undefined
      ? undefined
      : diff(conflict.base, copy ?? {}, { ...mapping.compare, revealValues: true });
  return {
    resourceType: conflict.resourceType,
    legacyId: conflict.legacyId,
    medplumId: conflict.medplumId,
    unit: conflict.unit,
    stage: conflict.stage,
    authority: conflict.authority,
    target,
    resolvedBy: resolution.by ?? 'custom',
    resolution: 'manual' in resolution ? 'manual' : 'merged' in resolution ? 'merged' : resolution.winner,
    changes: { legacy: changes(conflict.legacy), medplum: changes(conflict.medplum) },
    deleted: {
      legacy: conflict.legacy === undefined,
      medplum: conflict.medplum === undefined,
    },
    expectedVersion: found?.expectedVersion,
    actualVersion: found?.actualVersion,
  };
}
