import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { contentHash } from '../divergence/normalise.ts';
import {
  ConflictError,
  DualWriteError,
  MappingError,
  UnavailableError,
  type ErrorDetails,
  type Side,
} from '../errors.ts';
import type { Link } from '../journal/link.ts';
import type { OutboxEntry } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { classifyLegacyError } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { applyToLegacy } from './apply-to-legacy.ts';
import { applyToMedplum } from './apply-to-medplum.ts';
import type { OwnWrites, WriteGuard } from './write-guard.ts';

/** What the mirror step needs of the writer. */
export interface MirrorContext<L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly store: SyncStore;
  /** What a mirror does when the target changed since the last sync. */
  readonly conflicts: 'authority-wins' | 'dead-letter';
}

/**
 * The authority's copy of the record when the caller already holds it (the inline mirror
 * right after the authority write), so the mirror need not read it again. `undefined` copy
 * means the authority has no such record.
 */
export type KnownAuthority<L> =
  | { readonly side: 'legacy'; readonly record: LegacyRecord<L> | undefined }
  | { readonly side: 'medplum'; readonly resource: WithId<Resource> | undefined };

/**
 * The outcome of applying one outbox entry: what the target side did, and what the link must
 * become (saved with the entry's completion, atomically).
 */
export interface MirrorOutcome {
  readonly action: 'created' | 'updated' | 'deleted' | 'unchanged';
  /** The new link, `null` to remove it, `undefined` to leave it. */
  readonly link: Link | null | undefined;
  /** The target's id after the mirror, when it has the record. */
  readonly targetId: string | undefined;
  /** The target's version after the mirror, when it keeps versions. */
  readonly targetVersion: string | undefined;
  /** The Medplum copy after the mirror, when there is one (for results). */
  readonly resource: WithId<Resource> | undefined;
  /** The legacy record after the mirror, when there is one (for results). */
  readonly record: LegacyRecord<unknown> | undefined;
  /** Set when the target had changed since the last sync and the authority's copy won. */
  readonly conflict?: {
    readonly side: Side;
    readonly expectedVersion: string | undefined;
    readonly actualVersion: string | undefined;
  };
}

/**
 * Applies one outbox entry: reads the authority's current copy (unless the caller knows it),
 * then makes the target match it through the same idempotent writes the authority path uses.
 * This is the only mirror code: the inline mirror of a write, the drainer, and (later) feeds,
 * repairs and backfills all run it.
 *
 * @param ctx - The two sides, mappings and store.
 * @param entry - The entry to apply.
 * @param known - The authority's copy, when the caller holds it.
 * @param mark - Records a content hash before it is written (see `SyncStore.markApplying`).
 * @param linked - The record's link when the caller read it already (with the claim; `null`:
 *   none), saving a look-up; read from the store when `undefined`.
 * @returns What happened on the target and the link to store.
 * @throws The typed error of the failing step; the caller decides between retry and dead letter.
 */
export async function mirrorEntry<L>(
  ctx: MirrorContext<L>,
  entry: OutboxEntry,
  known?: KnownAuthority<L>,
  mark?: (hash: string) => Promise<void>,
  linked?: Link | null,
): Promise<MirrorOutcome> {
  const { resourceType, legacyId } = entry;
  const details: ErrorDetails = { resourceType, legacyId, side: entry.target };
  const mapping = ctx.mappings.get(resourceType);
  if (mapping === undefined) throw new MappingError(undefined, `no mapping for ${resourceType}`, details);
  const link = linked === undefined ? await ctx.store.getLink(resourceType, legacyId) : (linked ?? undefined);
  const own: OwnWrites = { hashes: entry.applyingHashes, mark: mark ?? (() => Promise.resolve()) };
  const apply = (guard: WriteGuard): Promise<MirrorOutcome> =>
    entry.target === 'medplum'
      ? toMedplum(
          ctx,
          mapping,
          entry,
          link,
          known?.side === 'legacy' ? known : undefined,
          guard,
          own,
          details,
        )
      : toLegacy(
          ctx,
          mapping,
          entry,
          link,
          known?.side === 'medplum' ? known : undefined,
          guard,
          own,
          details,
        );
  try {
    return await apply({ kind: 'last-sync' });
  } catch (err) {
    if (!(err instanceof ConflictError) || ctx.conflicts !== 'authority-wins') throw err;
    // Both sides changed since the last sync: the authority's copy wins, and the conflict is
    // recorded. (Note that a mirror which landed just before a crash, before its link was
    // saved, looks the same from here; the authority winning is then also the right outcome.)
    const conflict = {
      side: entry.target,
      expectedVersion: err.expectedVersion,
      actualVersion: err.actualVersion,
    };
    try {
      return { ...(await apply({ kind: 'overwrite' })), conflict };
    } catch (again) {
      if (!(again instanceof ConflictError)) throw again;
      throw new UnavailableError(
        `${resourceType}/${legacyId} changed again while being overwritten; will retry`,
        {
          ...details,
          status: again.status,
          cause: again,
        },
      );
    }
  }
}

async function toMedplum<L>(
  ctx: MirrorContext<L>,
  mapping: ResourceMapping<L>,
  entry: OutboxEntry,
  link: Link | undefined,
  known: { readonly record: LegacyRecord<L> | undefined } | undefined,
  guard: WriteGuard,
  own: OwnWrites,
  details: ErrorDetails,
): Promise<MirrorOutcome> {
  const { resourceType, legacyId } = entry;
  const record =
    known === undefined
      ? await legacyCall(() => ctx.legacy.read(resourceType, legacyId), details)
      : known.record;
  if (record === undefined) {
    if (entry.kind === 'upsert') return nothing();
    const medplumId =
      link?.medplumId ??
      (await ctx.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId))?.id;
    if (medplumId !== undefined) await ctx.medplum.delete(resourceType, medplumId, { ...details, medplumId });
    return { ...nothing(), action: medplumId === undefined ? 'unchanged' : 'deleted', link: null };
  }
  const base = entry.base as Resource | undefined;
  const written = await applyToMedplum(ctx.medplum, {
    mapping,
    legacyId,
    link,
    desired: (existing) =>
      mapping.toFhir(record.row, base === undefined ? existing : replacing(base, existing)),
    guard,
    guarded: ctx.store.leasesAcrossProcesses,
    own,
  });
  return {
    action: written.action,
    link: linkOf(resourceType, legacyId, written.resource, record),
    targetId: written.resource.id,
    targetVersion: written.resource.meta?.versionId,
    resource: written.resource,
    record,
  };
}

async function toLegacy<L>(
  ctx: MirrorContext<L>,
  mapping: ResourceMapping<L>,
  entry: OutboxEntry,
  link: Link | undefined,
  known: { readonly resource: WithId<Resource> | undefined } | undefined,
  guard: WriteGuard,
  own: OwnWrites,
  details: ErrorDetails,
): Promise<MirrorOutcome> {
  const { resourceType, legacyId } = entry;
  const resource =
    known !== undefined
      ? known.resource
      : link === undefined
        ? await ctx.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId)
        : await ctx.medplum.read(resourceType, link.medplumId);
  if (resource === undefined) {
    if (entry.kind === 'upsert') return nothing();
    await legacyCall(() => ctx.legacy.delete(resourceType, legacyId), details);
    return { ...nothing(), action: 'deleted', link: null };
  }
  const base = entry.base as L | undefined;
  const written = await applyToLegacy(ctx.legacy, {
    mapping,
    legacyId,
    link,
    desired: (existing) => mapping.toLegacy(resource, base ?? existing?.row),
    guard,
    own,
  });
  return {
    action: written.action,
    link: linkOf(resourceType, legacyId, resource, written.record),
    targetId: written.record.id,
    targetVersion: written.record.version,
    resource,
    record: written.record,
  };
}

/**
 * The resource a FHIR-shaped write asks for, on the existing copy's id: an update replaces the
 * whole resource, as a FHIR update does.
 *
 * @param resource - The caller's resource.
 * @param existing - The current Medplum copy.
 * @returns The resource to write.
 */
export function replacing(resource: Resource, existing: WithId<Resource> | undefined): Resource {
  const { id: _id, meta: _meta, ...content } = resource;
  return existing === undefined ? content : { ...content, id: existing.id };
}

function linkOf(
  resourceType: string,
  legacyId: string,
  resource: WithId<Resource>,
  record: LegacyRecord<unknown>,
): Link {
  return {
    resourceType,
    legacyId,
    medplumId: resource.id,
    legacyVersion: record.version,
    medplumVersion: resource.meta?.versionId,
    contentHash: contentHash(resource),
    syncedAt: new Date().toISOString(),
  };
}

function nothing(): MirrorOutcome {
  return {
    action: 'unchanged',
    link: undefined,
    targetId: undefined,
    targetVersion: undefined,
    resource: undefined,
    record: undefined,
  };
}

async function legacyCall<T>(fn: () => Promise<T>, details: ErrorDetails): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof DualWriteError ? err : classifyLegacyError(err, details);
  }
}
