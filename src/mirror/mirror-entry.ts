import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { contentHash } from '../divergence/normalise.ts';
import type { ConflictResolver } from '../conflict/conflict-context.ts';
import type { ConflictReport } from '../conflict/conflict-report.ts';
import { resolveConflict, type ResolveContext, type ResolvedCopies } from '../conflict/resolve-conflict.ts';
import { ConflictError, MappingError, type ErrorDetails } from '../errors.ts';
import { routeOf, type Stage } from '../plan/stage.ts';
import type { Link } from '../journal/link.ts';
import type { OutboxEntry } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { applyToLegacy } from './apply-to-legacy.ts';
import { applyToMedplum } from './apply-to-medplum.ts';
import { holdsPart, partsOf } from '../mapping/record-parts.ts';
import { awaitOwner, withReferences } from './resolve-references.ts';
import type { OwnWrites, WriteGuard } from '../conflict/write-guard.ts';

/** What the mirror step needs of the writer. */
export interface MirrorContext<L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly store: SyncStore;
  /** Decides a conflict: the target changed since the last sync. */
  readonly resolver: ConflictResolver;
  /** The stage of a unit and resource type now (for resolvers). */
  readonly stageOf: (unit: string, resourceType: string) => Stage;
  /** Whether links keep the last-synced content (`'full'`) or only its hash. */
  readonly baseSnapshot: 'full' | 'hash-only';
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
 * What a caller of {@link mirrorEntry} may already hold, saving the mirror a read each, and how
 * it records its writes.
 */
export interface MirrorInputs<L> {
  /** The authority's copy, when the caller holds it. */
  readonly known?: KnownAuthority<L> | undefined;
  /** Records a content hash before it is written (see `SyncStore.markApplying`). */
  readonly mark?: ((hash: string) => Promise<void>) | undefined;
  /**
   * The record's link when the caller read it already (with the claim; `null`: none); read
   * from the store when `undefined`.
   */
  readonly linked?: Link | null | undefined;
  /**
   * For an unlinked record mirrored to Medplum: what a search by its legacy identifier found,
   * made after the lease was taken (a batch's one search); searched for when `undefined`.
   */
  readonly found?: { readonly resource: WithId<Resource> | undefined } | undefined;
}

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
  /** Set when the target had changed since the last sync: how the conflict was resolved. */
  readonly conflict?: ConflictReport | undefined;
}

/**
 * Applies one outbox entry: reads the authority's current copy (unless the caller knows it),
 * then makes the target match it through the same idempotent writes the authority path uses.
 * This is the only mirror code: the inline mirror of a write, the drainer, and (later) feeds,
 * repairs and backfills all run it.
 *
 * @param ctx - The two sides, mappings and store.
 * @param entry - The entry to apply.
 * @param inputs - What the caller already holds or does for the mirror.
 * @returns What happened on the target and the link to store.
 * @throws The typed error of the failing step; the caller decides between retry and dead letter.
 */
export async function mirrorEntry<L>(
  ctx: MirrorContext<L>,
  entry: OutboxEntry,
  inputs: MirrorInputs<L> = {},
): Promise<MirrorOutcome> {
  const { known, mark, linked, found } = inputs;
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
          found,
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
  // A mirror towards the side that is the authority now (queued before the unit stepped back,
  // or a feed's change made directly in the other system): what that side holds is the truth,
  // so a copy there the mirror cannot account for is a disagreement, not a stale orphan.
  const targetIsAuthority = routeOf(ctx.stageOf(entry.unit, resourceType)).authority === entry.target;
  let outcome: MirrorOutcome;
  try {
    // An earlier attempt recorded what it was about to write before every write, creates
    // included: an unlinked copy holding none of it was changed by someone else since.
    const attempted = entry.applyingHashes.length > 0;
    outcome = await apply({ kind: 'last-sync', targetIsAuthority, attempted });
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    // Both sides changed since the last sync (or a mirror landed just before a crash, before
    // its link was saved, which looks the same from here): the resolver decides.
    outcome = resolved(ctx, await resolveConflict(resolveContextOf(ctx), mapping, entry, link, err, own));
  }
  if (entry.target === 'medplum') await queueParts(ctx, entry);
  return outcome;
}

/** How long a part's queued mirror is held if the process dies before releasing it. */
const PART_HOLD_MS = 30_000;

/**
 * A record changed on the legacy side owes a mirror of every resource drawn from it: the
 * owner's mirror, once its own write is done, queues one for each part whose stage mirrors to
 * Medplum (a part then finds its owner's copy). Queued again by a retry of the owner's mirror,
 * which is harmless: a part's mirror is idempotent. Nothing is lost to a crash: until the
 * owner's entry completes, it is applied again, and queues them again.
 */
async function queueParts<L>(ctx: MirrorContext<L>, entry: OutboxEntry): Promise<void> {
  const { resourceType, legacyId, unit, kind } = entry;
  for (const part of partsOf(ctx.mappings, resourceType)) {
    if (routeOf(ctx.stageOf(unit, part.resourceType)).mirrorTo !== 'medplum') continue;
    const intent = { resourceType: part.resourceType, legacyId, target: 'medplum', unit, kind } as const;
    // Held until committed: a claim in between would see its entry's seq move under it.
    await ctx.store.commit(await ctx.store.intend(intent, PART_HOLD_MS));
  }
}

/**
 * The writer's mirror context as the conflict step needs it.
 *
 * @param ctx - The mirror context.
 * @returns The resolve context.
 */
export function resolveContextOf<L>(ctx: MirrorContext<L>): ResolveContext<L> {
  return {
    legacy: ctx.legacy,
    medplum: ctx.medplum,
    resolver: ctx.resolver,
    stageOf: ctx.stageOf,
    writeLegacy: (write) => applyToLegacy(ctx.legacy, write),
    writeMedplum: (write) =>
      applyToMedplum(ctx.medplum, { ...write, guarded: ctx.store.leasesAcrossProcesses }),
    withReferences: (mapping, copies, details) => withReferences(ctx, mapping, copies, details),
  };
}

/**
 * The outcome of a resolved conflict: the link pairs what both sides now hold.
 *
 * @param ctx - The mirror context.
 * @param copies - Both sides after the resolution.
 * @returns The mirror outcome.
 */
export function resolved<L>(ctx: MirrorContext<L>, copies: ResolvedCopies<L>): MirrorOutcome {
  const { resource, record, report } = copies;
  const { resourceType, legacyId, target } = report;
  const gone = resource === undefined && record === undefined;
  return {
    action: gone ? 'deleted' : 'updated',
    link:
      resource !== undefined && record !== undefined
        ? linkOf(ctx, resourceType, legacyId, resource, record)
        : gone
          ? null
          : undefined,
    targetId: target === 'medplum' ? resource?.id : record?.id,
    targetVersion: target === 'medplum' ? resource?.meta?.versionId : record?.version,
    resource,
    record,
    conflict: report,
  };
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
  found: MirrorInputs<L>['found'],
): Promise<MirrorOutcome> {
  const { resourceType, legacyId } = entry;
  const record =
    known === undefined
      ? await callLegacy(() => ctx.legacy.read(resourceType, legacyId), details)
      : known.record;
  // A part the record does not hold (empty guardian columns) has no copy, like a deleted record.
  if (record === undefined || !holdsPart(mapping, record.row, details)) {
    if (record === undefined && entry.kind === 'upsert') return nothing();
    const medplumId =
      link?.medplumId ??
      (found !== undefined
        ? found.resource
        : await ctx.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId)
      )?.id;
    if (medplumId !== undefined) await ctx.medplum.delete(resourceType, medplumId, { ...details, medplumId });
    return { ...nothing(), action: medplumId === undefined ? 'unchanged' : 'deleted', link: null };
  }
  const base = entry.base as Resource | undefined;
  // Resolved before anything is written: a referenced record without a Medplum copy makes the
  // mirror wait (a DependencyError), never write a dangling reference; so does a part's owner.
  await awaitOwner(ctx, mapping, legacyId, 'medplum', details);
  const bound = await withReferences(ctx, mapping, { row: record.row }, details);
  const written = await applyToMedplum(ctx.medplum, {
    mapping,
    legacyId,
    link,
    desired: (existing) =>
      bound.toFhir(record.row, base === undefined ? existing : replacing(base, existing), {}),
    guard,
    guarded: ctx.store.leasesAcrossProcesses,
    own,
    found,
  });
  return {
    action: written.action,
    link: linkOf(ctx, resourceType, legacyId, written.resource, record),
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
    await callLegacy(() => ctx.legacy.delete(resourceType, legacyId), details);
    return { ...nothing(), action: 'deleted', link: null };
  }
  const base = entry.base as L | undefined;
  await awaitOwner(ctx, mapping, legacyId, 'legacy', details);
  const bound = await withReferences(ctx, mapping, { resource }, details);
  const written = await applyToLegacy(ctx.legacy, {
    mapping,
    legacyId,
    link,
    desired: (existing) => bound.toLegacy(resource, base ?? existing?.row, {}),
    guard,
    own,
    // Several resources share the record's version: one's write must not pass for a change of
    // another's copy. (A record of one resource keeps any edit as a change, mapped or not.)
    unchangedSinceSync: sharesRecord(ctx, mapping)
      ? async (existing) =>
          link?.base !== undefined &&
          contentHash(await projectionOf(ctx, mapping, existing.row, link.base, legacyId, details)) ===
            link.contentHash
      : undefined,
  });
  return {
    action: written.action,
    link: linkOf(ctx, resourceType, legacyId, resource, written.record),
    targetId: written.record.id,
    targetVersion: written.record.version,
    resource,
    record: written.record,
  };
}

/** Whether a mapping's legacy records hold other resources too (it is a part, or has parts). */
function sharesRecord<L>(ctx: MirrorContext<L>, mapping: ResourceMapping<L>): boolean {
  return mapping.partOf !== undefined || partsOf(ctx.mappings, mapping.resourceType).length > 0;
}

/**
 * A legacy row as its mapping sees it: mapped onto the last-synced content (so fields the legacy
 * system does not hold read as unchanged), its references resolved as far as they can be.
 */
async function projectionOf<L>(
  ctx: MirrorContext<L>,
  mapping: ResourceMapping<L>,
  row: L,
  base: Resource,
  legacyId: string,
  details: ErrorDetails,
): Promise<Resource> {
  const bound = await withReferences(ctx, mapping, { row }, details, 'lenient');
  const mapped = runMapping('toFhir', () => bound.toFhir(row, base, {}), details);
  return withLegacyIdentifier(mapped, mapping, legacyId, details);
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
  ctx: { readonly baseSnapshot: 'full' | 'hash-only' },
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
    base: ctx.baseSnapshot === 'full' ? snapshotOf(resource) : undefined,
  };
}

/** The content both sides agree on, without the server's bookkeeping. */
function snapshotOf(resource: WithId<Resource>): Resource {
  const { meta: _meta, ...content } = resource;
  return content;
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
