import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { Side } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import type { OutboxError } from '../journal/outbox.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { Stage, StageRoute } from '../plan/stage.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { isEcho } from './echo.ts';
import { withReferences } from '../mirror/resolve-references.ts';
import type { FeedTally } from './feed-report.ts';
import type { ExistenceCheckHalt } from './existence-check.ts';

/**
 * A record as {@link ChangeFeedsDeps.unitOf} sees it: the legacy row or the Medplum resource
 * it was read as (for a delete, the other side's copy, or the last-synced snapshot).
 *
 * @example
 * ```ts
 * const unitOf = (record: FeedRecord<PatientRow>) => record.row?.clinic ?? record.resource?.meta?.account?.display;
 * ```
 */
export interface FeedRecord<L> {
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The legacy row, when the feed has one. */
  readonly row?: L | undefined;
  /** The Medplum resource, when the feed has one. */
  readonly resource?: Resource | undefined;
}

/**
 * What {@link ChangeFeeds} needs of the writer. `DualWriter` passes its own: the same sides,
 * store and mappings its drainer mirrors with, its plan's routing, and the drainer's wake-up.
 *
 * @example
 * ```ts
 * const deps: ChangeFeedsDeps<PatientRow> = {
 *   legacy, medplum: new MedplumSide(client), store, mappings: new Map([['Patient', patientMapping]]),
 *   routeOf: (unit, type) => plan.routeOf(unit, type),
 *   unitOf: (record) => record.row?.clinic,
 *   notify: () => undefined,
 * };
 * ```
 */
export interface ChangeFeedsDeps<L> {
  /** The legacy system. */
  readonly legacy: LegacyAdapter<L>;
  /** Medplum, through the library's side (typed errors, no client retries). */
  readonly medplum: MedplumSide;
  /** Links, outbox and cursors. */
  readonly store: SyncStore;
  /** One mapping per resource type; the feeds read these types only. */
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  /** The stage and routing of a unit and resource type now. */
  readonly routeOf: (unit: string, resourceType: string) => StageRoute & { readonly stage: Stage };
  /** The unit of a record; `undefined` when it cannot tell (the change is counted and skipped). */
  readonly unitOf: (record: FeedRecord<L>) => string | undefined | Promise<string | undefined>;
  /** Wakes the drainer after entries were queued. */
  readonly notify: () => void;
  /** Told when a feed this instance holds finished a read (for metrics); must not throw. */
  readonly onRead?: ((read: FeedRead) => void) | undefined;
  /**
   * Told when an existence check stopped because too many linked resources were missing in
   * Medplum (nothing was journaled); must not throw.
   */
  readonly onExistenceHalted?: ((halt: ExistenceCheckHalt) => void) | undefined;
}

/**
 * What one feed's read did: its side and resource type, the changes it saw, echoed and queued.
 *
 * @example
 * ```ts
 * const read: FeedRead = { side: 'legacy', resourceType: 'Patient', seen: 3, echoes: 2, queued: 1, failed: false };
 * ```
 */
export interface FeedRead {
  readonly side: 'legacy' | 'medplum';
  readonly resourceType: string;
  readonly seen: number;
  readonly echoes: number;
  readonly queued: number;
  readonly failed: boolean;
}

/**
 * One change read from one system.
 *
 * @internal
 * @example
 * ```ts
 * const change: InboundChange<PatientRow> = { source: 'medplum', resourceType: 'Patient', legacyId: '42', kind: 'upsert', resource };
 * ```
 */
export interface InboundChange<L> {
  /** The system the change was made in. */
  readonly source: Side;
  readonly resourceType: string;
  readonly legacyId: string;
  readonly kind: 'upsert' | 'delete';
  /** The legacy record, for a legacy upsert. */
  readonly record?: LegacyRecord<L> | undefined;
  /** The Medplum resource, for a Medplum upsert. */
  readonly resource?: WithId<Resource> | undefined;
}

/**
 * Journals one inbound change as an outbox entry towards the other side, unless it needs no
 * mirror: (1) its unit, (2) its stage must mirror something, (3) it must not be an echo, then
 * (4) `before` may prepare the source (the Medplum feed stamps a legacy identifier there) and
 * (5) the entry is written, due at once. The drainer applies it with `mirrorEntry`, the same
 * code as every mirror, so a feed never writes the other system itself.
 *
 * @param deps - The sides, store, mappings and routing.
 * @param change - The change.
 * @param tally - Where the outcome is counted.
 * @param before - Runs just before journaling; `false` defers the change (it will be read again).
 * @returns When the change is journaled or counted as skipped.
 * @throws What the store, a side or `unitOf` threw: the feed stops and keeps its cursor.
 * @internal
 * @example
 * ```ts
 * await journalInbound(deps, { source: 'legacy', resourceType: 'Patient', legacyId: '42', kind: 'upsert', record }, tally);
 * ```
 */
export async function journalInbound<L>(
  deps: ChangeFeedsDeps<L>,
  change: InboundChange<L>,
  tally: FeedTally,
  before?: () => Promise<boolean>,
): Promise<void> {
  const { resourceType, legacyId, source } = change;
  const mapping = deps.mappings.get(resourceType);
  if (mapping === undefined) return;
  tally.seen += 1;
  const link = await deps.store.getLink(resourceType, legacyId);
  const copy = change.kind === 'upsert' ? change : await otherCopy(deps, change, link);
  if (copy === undefined) {
    // A delete whose other side holds nothing: already mirrored (the link went with it) or
    // never mirrored. Either way there is nothing to apply.
    tally.echoes += 1;
    return;
  }
  const unit = await deps.unitOf({ resourceType, legacyId, row: copy.record?.row, resource: copy.resource });
  if (unit === undefined || unit === '') {
    tally.skippedWithoutUnit += 1;
    return;
  }
  if (deps.routeOf(unit, resourceType).mirrorTo === undefined) {
    tally.skippedByStage += 1;
    return;
  }
  if (change.kind === 'delete') {
    const decision = await deleteDecision(deps, change, unit, link, copy);
    if (decision === 'held') tally.deletesHeld += 1;
    if (decision === 'held-before') tally.echoes += 1;
    if (decision !== 'propagate') return;
  }
  if (change.kind === 'upsert') {
    const echo =
      change.resource !== undefined
        ? isEcho({ side: 'medplum', resource: change.resource }, link, mapping, legacyId)
        : change.record !== undefined &&
          link !== undefined &&
          isEcho(
            { side: 'legacy', record: change.record },
            link,
            // A row is compared as a mirror would map it: with its references resolved.
            await withReferences(
              deps,
              mapping,
              { row: change.record.row },
              { resourceType, legacyId },
              'lenient',
            ).catch(() => mapping),
            legacyId,
          );
    if (echo) {
      tally.echoes += 1;
      return;
    }
  }
  if (before !== undefined && !(await before())) return;
  const target: Side = source === 'legacy' ? 'medplum' : 'legacy';
  // Due at once (no hold): the change has landed already. An entry pending for the record
  // coalesces with this one; the mirror reads the source afresh either way.
  const ticket = await deps.store.intend({ resourceType, legacyId, target, unit, kind: change.kind }, 0);
  await deps.store.commit(ticket);
  tally.queued += 1;
}

/**
 * The reason of a delete held for review, as its dead letter keeps it: ids and sides, never
 * values. Its `side` is the system the delete was made in.
 *
 * @param resourceType - The record's type.
 * @param legacyId - The record's legacy id.
 * @param deletedIn - The system the delete was made in.
 * @param authority - The unit's authority when it was held.
 * @returns The reason.
 * @internal
 * @example
 * ```ts
 * const reason = deleteReviewReason('Patient', '42', 'medplum', 'legacy');
 * ```
 */
export function deleteReviewReason(
  resourceType: string,
  legacyId: string,
  deletedIn: Side,
  authority: Side,
): OutboxError {
  const kept = deletedIn === 'legacy' ? 'medplum' : 'legacy';
  return {
    name: DELETE_REVIEW,
    message:
      `${resourceType}/${legacyId} was deleted in ${deletedIn} (the authority is ${authority}); the ${kept} ` +
      `copy is kept until an operator decides: resolve with winner '${deletedIn}' (or retry) to delete it, ` +
      `with winner '${kept}' to restore the ${deletedIn} copy`,
    side: deletedIn,
  };
}

/** The reason name of a delete held for review (a dead letter's `reason.name`). */
export const DELETE_REVIEW = 'DeleteReviewError';

/**
 * Applies the mapping's delete policy to a delete seen in one system: `propagate`, or `held`
 * after recording a `delete-review` or `delete-ignored` event (ids and sides only, never
 * values). A delete held for review is also an open dead letter towards the side that kept its
 * copy (kind `delete`, reason {@link DELETE_REVIEW}): listed, counted by readiness and decided
 * like any dead letter. A held delete is remembered (a journal cursor keyed by the record, valued by the
 * surviving copy's version), so the overlap a feed re-reads, or the existence check's next
 * pass, answers `held-before` instead of a second event; a later write to the surviving copy
 * changes its version, so a delete after it is decided afresh. A held delete of a Medplum
 * resource also drops its link: the legacy row stays, and its next write mirrors as a new copy.
 */
async function deleteDecision<L>(
  deps: ChangeFeedsDeps<L>,
  change: InboundChange<L>,
  unit: string,
  link: Link | undefined,
  copy: { readonly record?: LegacyRecord<L> | undefined; readonly resource?: Resource | undefined },
): Promise<'propagate' | 'held' | 'held-before'> {
  const { resourceType, legacyId, source } = change;
  const { authority } = deps.routeOf(unit, resourceType);
  const policies = deps.mappings.get(resourceType)?.deletes;
  const chosen = source === 'legacy' ? policies?.fromLegacy : policies?.fromMedplum;
  const policy = chosen ?? (source === authority ? 'propagate' : 'review');
  if (policy === 'propagate') return 'propagate';
  const mark = `delete-held:${resourceType}:${legacyId}`;
  const survivor = `${source}:${copy.record?.version ?? copy.resource?.meta?.versionId ?? ''}`;
  if ((await deps.store.getCursor(mark)) === survivor) return 'held-before';
  const kept: Side = source === 'legacy' ? 'medplum' : 'legacy';
  const letter =
    policy === 'review'
      ? await deps.store.openDeadLetter({
          resourceType,
          legacyId,
          target: kept,
          unit,
          kind: 'delete',
          reason: deleteReviewReason(resourceType, legacyId, source, authority),
        })
      : undefined;
  await deps.store.appendEvent({
    type: policy === 'review' ? 'delete-review' : 'delete-ignored',
    resourceType,
    legacyId,
    unit,
    data: { deletedIn: source, authority, policy, medplumId: link?.medplumId, deadLetterId: letter?.id },
  });
  await deps.store.setCursor(mark, survivor);
  if (source === 'medplum' && link !== undefined) await deps.store.deleteLink(resourceType, legacyId);
  return 'held';
}

/**
 * For a delete: the other side's copy (where the unit can be read, and whose absence makes
 * the delete an echo). The link finds it; without one, the Medplum copy is looked up by
 * identifier. A copy that exists but cannot be read as such falls back to the link's base.
 */
async function otherCopy<L>(
  deps: ChangeFeedsDeps<L>,
  change: InboundChange<L>,
  link: Link | undefined,
): Promise<{ record?: LegacyRecord<L> | undefined; resource?: Resource | undefined } | undefined> {
  const { resourceType, legacyId } = change;
  if (change.source === 'legacy') {
    const mapping = deps.mappings.get(resourceType);
    const resource =
      link !== undefined
        ? await deps.medplum.read(resourceType, link.medplumId)
        : mapping === undefined
          ? undefined
          : await deps.medplum.findByIdentifier(resourceType, mapping.identifierSystem, legacyId);
    return resource === undefined ? undefined : { resource };
  }
  if (link === undefined) return undefined;
  const record = await deps.legacy.read(resourceType, legacyId);
  return record === undefined ? undefined : { record, resource: link.base };
}
