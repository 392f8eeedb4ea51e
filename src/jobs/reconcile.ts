import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { Job, JobDirection } from '../journal/job.ts';
import { oneOf, positiveInteger } from '../option-checks.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import type { JobContext } from './job-context.ts';
import { openJob } from './job-opening.ts';
import { runJobPages, type JobWorkerOptions } from './job-worker.ts';
import { reconcileLegacyPage, reconcileMedplumPage, type RepairPolicy } from './reconcile-page.ts';
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

/** A reconciliation's cursor: which side it reads, and where on it. */
interface Phase {
  readonly side: 'legacy' | 'medplum';
  readonly after: string | undefined;
}

/**
 * Reconciles one resource type: compares every record of both sides and classifies it as
 * `agree`, `missingInMedplum`, `missingInLegacy`, `duplicate`, `orphanLink` or `divergent`
 * (counted per JSON path as `path:<path>`; values are never stored). It reads the legacy side
 * in key order and then Medplum in `_lastUpdated` order, one page at a time with batched
 * look-ups on the other side (flat memory whatever the size), and compares cheap facts first:
 * a linked record at the versions its link last synced agrees without its content being read.
 *
 * The report is the job itself, stored in the journal: `counts` per class (plus `scanned`,
 * `skipped`, `failed`), `samples` of ids per class. Like a backfill it is resumable, shared by
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
 * console.log(report.counts); // { scanned: 2000, agree: 1990, divergent: 6, 'path:birthDate': 6, missingInMedplum: 4 }
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
    elements: ctx.unitOf === undefined ? 'identifier' : undefined,
  });
  type Item = { readonly legacy: LegacyRecord<L> } | { readonly medplum: WithId<Resource> };
  return runJobPages<Item>(
    ctx.store,
    job.id,
    {
      // The legacy pass's last page hands over to the Medplum pass: one cursor for both.
      read: async (after, limit) => {
        const phase: Phase =
          after === undefined ? { side: 'legacy', after: undefined } : (JSON.parse(after) as Phase);
        if (phase.side === 'legacy') {
          const page = await readLegacy(phase.after, limit);
          const next: Phase =
            page.next === undefined
              ? { side: 'medplum', after: undefined }
              : { side: 'legacy', after: page.next };
          return { items: page.items.map((record) => ({ legacy: record })), next: JSON.stringify(next) };
        }
        const page = await readMedplum(phase.after, limit);
        return {
          items: page.items.map((resource) => ({ medplum: resource })),
          next:
            page.next === undefined
              ? undefined
              : JSON.stringify({ side: 'medplum', after: page.next } satisfies Phase),
        };
      },
      process: async (items) => {
        const records = items.flatMap((item) => ('legacy' in item ? [item.legacy] : []));
        const resources = items.flatMap((item) => ('medplum' in item ? [item.medplum] : []));
        if (resources.length === 0) return reconcileLegacyPage(scope, records, policy);
        return reconcileMedplumPage(scope, resources, policy);
      },
    },
    given,
  );
}
