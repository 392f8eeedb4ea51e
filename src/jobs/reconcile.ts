import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { InvalidInputError } from '../errors.ts';
import type { Job, JobDirection, SeenCopy } from '../journal/job.ts';
import { oneOf, positiveInteger } from '../option-checks.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import type { JobContext } from './job-context.ts';
import { openJob } from './job-opening.ts';
import { runJobPages, type JobWorkerOptions } from './job-worker.ts';
import {
  reconcileLeftoverPage,
  reconcileLegacyPage,
  reconcileMedplumPage,
  type RepairPolicy,
} from './reconcile-page.ts';
import { legacyPages, medplumPages } from './record-pages.ts';

/**
 * What to reconcile, what to do about what is found, and how this worker runs.
 *
 * @example
 * ```ts
 * const options: ReconcileOptions = { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', repair: 'queue' };
 * ```
 */
export interface ReconcileOptions extends JobWorkerOptions {
  /** The resource type to compare. */
  readonly resourceType: string;
  /**
   * Which side is the reference: `to-medplum` takes the legacy system's copies for the truth
   * (the unit's authority before `live`), `to-legacy` Medplum's.
   */
  readonly direction: JobDirection;
  /** Only this unit's records; every unit's when absent. */
  readonly unit?: string | undefined;
  /** Join this existing reconciliation instead of starting one (a second worker, a resume). */
  readonly jobId?: string | undefined;
  /**
   * `queue`: queue a mirror towards the other side for each record missing there or divergent,
   * and put what needs a person (duplicates, a record missing from the reference, a link whose
   * reference copy is gone) in the dead-letter queue. @default 'none' (report only)
   */
  readonly repair?: 'none' | 'queue' | undefined;
  /**
   * With `repair: 'queue'`, `remove-unlinked` deletes a second Medplum copy of a linked record
   * instead of sending it to review. @default 'review'
   */
  readonly duplicates?: 'review' | 'remove-unlinked' | undefined;
  /** Most sample ids kept per class in the report. @default 10 */
  readonly sampleSize?: number | undefined;
}

const RECONCILE_SHAPE = {
  repair: oneOf('none', 'queue'),
  duplicates: oneOf('review', 'remove-unlinked'),
  sampleSize: positiveInteger,
};

/** The classes a reconciliation counts, in the order reports show them. */
export const RECONCILE_CLASSES = [
  'agree',
  'missingInMedplum',
  'missingInLegacy',
  'duplicate',
  'orphanLink',
  'divergent',
] as const;

/**
 * A reconciliation's cursor: which pass it is in, and where in it. The passes are named apart
 * from the sides: a cursor of the earlier two-pass reconciliation (`legacy` then `medplum`)
 * cannot be resumed by this one (it would count records twice or miss Medplum's).
 */
interface Phase {
  readonly pass: 'copies' | 'records' | 'leftovers';
  readonly after: string | undefined;
}

const PASSES: readonly Phase['pass'][] = ['copies', 'records', 'leftovers'];

function decodePhase(text: string | undefined): Phase {
  if (text === undefined) return { pass: 'copies', after: undefined };
  try {
    const parsed = JSON.parse(text) as Partial<Phase>;
    if (
      parsed.pass !== undefined &&
      PASSES.includes(parsed.pass) &&
      (parsed.after === undefined || typeof parsed.after === 'string')
    )
      return parsed as Phase;
  } catch {
    // Reported below.
  }
  throw new InvalidInputError(
    'cursor',
    'is not a cursor of this version of reconcile (a job started by an earlier version: start a new one)',
  );
}

function encodePhase(pass: Phase['pass'], after: string | undefined): string {
  return JSON.stringify({ pass, after } satisfies Phase);
}

/**
 * Reconciles one resource type: compares every record of both sides and classifies it as
 * `agree`, `missingInMedplum`, `missingInLegacy`, `duplicate`, `orphanLink` or `divergent`
 * (counted per JSON path as `path:<path>`; values are never stored). It reads each side once,
 * a page at a time: Medplum in `_lastUpdated` order, noting each linked copy it sees in the
 * journal (`store.noteSeenCopies`); then the legacy side in key order, each record taking the
 * copy noted for it instead of searching Medplum again; then the noted copies no record took
 * (links whose legacy record is gone). What joins the passes is kept in the journal, so the
 * process holds one page whatever the size; cheap facts come first: a linked record at the
 * versions its link last synced agrees without its content being read.
 *
 * The report is the job itself, stored in the journal: `counts` per class (plus `scanned` and
 * `skipped` for legacy records, `scannedMedplum` and `skippedMedplum` for Medplum resources, and
 * `failed`), `samples` of ids per class. Like a backfill it is resumable, shared by
 * workers and paced. With `repair: 'queue'` it queues mirrors through the one mirror path;
 * after the drainer applies them, a second reconciliation reports everything agreeing.
 *
 * @param ctx - The journal, both systems, the mappings and how to tell a record's unit.
 * @param options - What to compare, what to repair, and how this worker runs.
 * @returns The job (the report) as stored when this worker stopped.
 * @throws {@link InvalidInputError} naming the option at fault.
 * @example
 * ```ts
 * const report = await reconcile(ctx, { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', repair: 'queue' });
 * console.log(report.counts); // { scannedMedplum: 1996, scanned: 2000, agree: 1990, divergent: 6, 'path:birthDate': 6, missingInMedplum: 4 }
 * ```
 */
export async function reconcile<L>(ctx: JobContext<L>, options: ReconcileOptions): Promise<Job> {
  const { given, job, scope } = await openJob(ctx, options, 'reconcile', RECONCILE_SHAPE, options.sampleSize);
  const { mapping, medplum } = scope;
  const policy: RepairPolicy = {
    repair: given.repair ?? 'none',
    duplicates: given.duplicates ?? 'review',
    reference: job.direction === 'to-medplum' ? 'legacy' : 'medplum',
  };
  const readLegacy = legacyPages(ctx.legacy, mapping.resourceType);
  // The Medplum pass needs a resource's id, version and legacy identifier, unless `unitOf`
  // reads the unit from its content: `_elements` keeps the pages small (cheap facts).
  const readMedplum = medplumPages(medplum, mapping.resourceType, {
    retry: scope.retry,
    elements: ctx.unitOf === undefined ? 'identifier,meta' : undefined,
  });
  type Item =
    | { readonly medplum: WithId<Resource> }
    | { readonly legacy: LegacyRecord<L> }
    | { readonly leftover: SeenCopy };
  const pass = (items: readonly Item[]): Phase['pass'] | undefined => {
    const [first] = items;
    if (first === undefined) return undefined;
    return 'medplum' in first ? 'copies' : 'legacy' in first ? 'records' : 'leftovers';
  };
  return runJobPages<Item>(
    ctx.store,
    job.id,
    {
      // Each pass's last page hands over to the next: one cursor for the three.
      read: async (after, limit) => {
        const phase = decodePhase(after);
        if (phase.pass === 'copies') {
          const page = await readMedplum(phase.after, limit);
          return {
            items: page.items.map((resource) => ({ medplum: resource })),
            next:
              page.next === undefined ? encodePhase('records', undefined) : encodePhase('copies', page.next),
          };
        }
        if (phase.pass === 'records') {
          const page = await readLegacy(phase.after, limit);
          return {
            items: page.items.map((record) => ({ legacy: record })),
            next:
              page.next === undefined
                ? encodePhase('leftovers', undefined)
                : encodePhase('records', page.next),
          };
        }
        const copies = await ctx.store.listSeenCopies(job.id, { after: phase.after, limit });
        const last = copies.at(-1)?.legacyId;
        return {
          items: copies.map((copy) => ({ leftover: copy })),
          next: copies.length < limit || last === undefined ? undefined : encodePhase('leftovers', last),
        };
      },
      process: async (items) => {
        switch (pass(items)) {
          case 'copies':
            return reconcileMedplumPage(
              scope,
              job.id,
              items.flatMap((item) => ('medplum' in item ? [item.medplum] : [])),
              policy,
            );
          case 'records':
            return reconcileLegacyPage(
              scope,
              job.id,
              items.flatMap((item) => ('legacy' in item ? [item.legacy] : [])),
              policy,
            );
          case 'leftovers':
            return reconcileLeftoverPage(
              scope,
              items.flatMap((item) => ('leftover' in item ? [item.leftover] : [])),
              policy,
            );
          default:
            return { counts: {} };
        }
      },
    },
    given,
  );
}
