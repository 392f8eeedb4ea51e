import { InvalidInputError } from '../errors.ts';
import type { Job, JobDirection } from '../journal/job.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { aFunction, anObject, positiveInteger } from '../option-checks.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import { backfillLegacyPage, backfillMedplumPage } from './backfill-page.ts';
import { dependencyOrder } from './dependency-order.ts';
import type { JobContext } from './job-context.ts';
import { openJob, type OpenedJob } from './job-opening.ts';
import { OwnLane, ownClientOf, type BackfillClient } from './own-client.ts';
import { runJobPages, type JobWorkerOptions } from './job-worker.ts';
import { legacyPages, medplumPages } from './record-pages.ts';

/**
 * What to backfill, and how this worker runs.
 *
 * @example
 * ```ts
 * const options: BackfillOptions = { resourceType: 'Patient', unit: 'north', direction: 'to-medplum', pageSize: 500 };
 * ```
 */
export interface BackfillOptions extends JobWorkerOptions {
  /** The resource type to backfill (one per job; run types in dependency order). */
  readonly resourceType: string;
  /**
   * `to-medplum` reads the legacy system and makes Medplum match it (before a unit leaves
   * `legacy-only`); `to-legacy` reads Medplum and makes the legacy system match (before a unit
   * steps back out of `medplum-only`).
   */
  readonly direction: JobDirection;
  /** Only this unit's records; every unit's when absent. */
  readonly unit?: string | undefined;
  /**
   * Join this existing job instead of starting one: a second worker, or a run resumed after
   * its process died (it goes on from the job's cursor).
   */
  readonly jobId?: string | undefined;
  /**
   * Most mirrors waiting in the outbox (every unit's) before this worker takes another page:
   * the backfill waits for the drainer, so live writes queued meanwhile wait behind at most
   * this many backfill entries. @default 1000
   */
  readonly maxQueued?: number | undefined;
  /**
   * Applies queued mirrors (the writer passes its `drain`); without it, the backfill waits
   * for a drainer elsewhere when the outbox is full.
   */
  readonly drain?: (() => Promise<unknown>) | undefined;
  /**
   * A Medplum client of the backfill's own (another client application: another user, another
   * quota). Its searches go through it, and the writes it queues wait in the job's outbox lane,
   * applied by a drainer this worker runs on that client; live mirrors keep the writer's client
   * and its whole quota. This worker returns once the lane is applied (or `signal` aborts); a
   * lane nobody holds any more (the job paused or cancelled, its process dead) is applied by
   * the writer's drainers, so nothing is stranded. Only `writer.backfill` (and the operator of a
   * writer) takes it: it applies the writes with the writer's mirror path.
   */
  readonly ownClient?: BackfillClient | undefined;
}

const BACKFILL_SHAPE = { maxQueued: positiveInteger, drain: aFunction, ownClient: anObject };

/**
 * Backfills one resource type: reads the source side in keyset pages (the adapter's `scan`;
 * Medplum in `_lastUpdated` order) and queues each record that needs it through the same
 * idempotent mirror path as every write. Linked records whose two copies are at the versions
 * last synced are skipped; a copy found by identifier is linked, never duplicated; a copy that
 * differs is a conflict for the resolver; several copies are dead-lettered for review. The
 * source is never written (no version bump, no trigger) and the scanned row is never carried
 * into the write: the mirror reads the source's current state when it applies, so a live write
 * made meanwhile wins by construction.
 *
 * The job is stored in the journal: kill the process at any point and run `backfill` again
 * with its `jobId` to resume from its cursor (a page in progress is taken over once its lease
 * lapses); several workers may run one job at once. Returns when this worker has nothing left
 * to do: the job is `done` (every record queued or settled; the drainer applies the queue),
 * paused, cancelled, failed, or `signal` aborted.
 *
 * @param ctx - The journal, both systems, the mappings and how to tell a record's unit.
 * @param options - What to backfill and how this worker runs.
 * @returns The job as stored when this worker stopped.
 * @throws {@link InvalidInputError} naming the option at fault, or `jobId` when it names no backfill.
 * @example
 * ```ts
 * const job = await backfill(ctx, { resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
 * console.log(job.state, job.counts); // done { scanned: 1200, created: 1150, linked: 40, unchanged: 10 }
 * ```
 */
export async function backfill<L>(ctx: JobContext<L>, options: BackfillOptions): Promise<Job> {
  const own = ownClientOf(ctx, (options as { ownClient?: BackfillClient } | undefined)?.ownClient);
  if (own === undefined) return backfillOn(ctx, options, undefined);
  const jobCtx: JobContext<L> = { ...ctx, medplum: own.medplum, pacer: own.pacer };
  return backfillOn(jobCtx, options, own);
}

/** {@link backfill}, on the context's client or, with `own`, in a lane drained on that client. */
async function backfillOn<L>(
  ctx: JobContext<L>,
  options: BackfillOptions,
  own: Required<BackfillClient> | undefined,
): Promise<Job> {
  const opened = await openJob(ctx, options, 'backfill', BACKFILL_SHAPE);
  const { given, job } = opened;
  const maxQueued = given.maxQueued ?? 1000;
  if (own === undefined) return runBackfillPages(ctx, opened, () => queueBelow(ctx.store, maxQueued, given));
  const lane = await OwnLane.open(ctx, job.id, own, given.workerId);
  try {
    const scope = { ...opened.scope, lane: lane.name };
    const ended = await runBackfillPages(ctx, { ...opened, scope }, () =>
      lane.below(maxQueued, given.signal),
    );
    // Done: every record is queued; its writes are this client's too, so wait for the lane.
    if (ended.state === 'done') await lane.below(1, given.signal);
    return ended;
  } finally {
    await lane.close();
  }
}

/** Runs a backfill's pages, each after `beforePage` (back-pressure on the queue). */
async function runBackfillPages<L>(
  ctx: JobContext<L>,
  { given, job, scope }: OpenedJob<L, BackfillOptions>,
  beforePage: () => Promise<void>,
): Promise<Job> {
  const { mapping } = scope;
  if (job.direction === 'to-medplum') {
    return runJobPages<LegacyRecord<L>>(
      ctx.store,
      job.id,
      {
        read: legacyPages(ctx.legacy, mapping.resourceType),
        process: (page) => backfillLegacyPage(scope, page),
        beforePage,
      },
      given,
    );
  }
  return runJobPages(
    ctx.store,
    job.id,
    {
      read: medplumPages(scope.medplum, mapping.resourceType, { retry: scope.retry }),
      process: (page) => backfillMedplumPage(scope, page),
      beforePage,
    },
    given,
  );
}

/**
 * Backfills several resource types one after another, in dependency order (organisations,
 * practitioners, patients, encounters, clinical data), waiting after each until the outbox is
 * empty, so that a record's references find the records they point at already linked. Stops at
 * the first job that does not end `done` (paused, cancelled, failed, aborted).
 *
 * Without `resourceTypes`, every mapped type, in the order {@link dependencyOrder} derives from
 * the references the mappings declare; with it, those types in the order given.
 *
 * @param ctx - The journal, both systems, the mappings and how to tell a record's unit.
 * @param options - The types (optional), and the options of each type's backfill.
 * @returns The jobs, in order.
 * @throws {@link InvalidInputError} naming `resourceTypes`, `mappings` (a cycle of references)
 *   or the option at fault.
 * @example
 * ```ts
 * const jobs = await backfillInOrder(ctx, { unit: 'north', direction: 'to-medplum', drain: () => writer.drain() });
 * console.log(jobs.map((job) => job.resourceType)); // ['Patient', 'Encounter', 'Observation']
 * ```
 */
export async function backfillInOrder<L>(
  ctx: JobContext<L>,
  options: Omit<BackfillOptions, 'resourceType' | 'jobId'> & {
    readonly resourceTypes?: readonly string[] | undefined;
  },
): Promise<Job[]> {
  const { resourceTypes = dependencyOrder(ctx.mappings), ...each } = options;
  const given: unknown = resourceTypes;
  if (!Array.isArray(given) || given.length === 0)
    throw new InvalidInputError('resourceTypes', 'must be a non-empty array of resource types');
  const jobs: Job[] = [];
  for (const resourceType of resourceTypes) {
    const job = await backfill(ctx, { ...each, resourceType });
    jobs.push(job);
    if (job.state !== 'done') return jobs;
    await queueBelow(ctx.store, 1, each);
  }
  return jobs;
}

/**
 * Waits until the outbox holds fewer than `limit` mirrors (pending or leased), draining it
 * meanwhile when given a `drain`, else polling; returns at once when `signal` aborts.
 */
async function queueBelow(
  store: SyncStore,
  limit: number,
  options: Pick<BackfillOptions, 'drain' | 'pollIntervalMs' | 'signal'>,
): Promise<void> {
  for (;;) {
    const { pending, leased } = await store.outboxCounts();
    if (pending + leased < limit || options.signal?.aborted === true) return;
    if (options.drain !== undefined) await options.drain();
    else await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? 200));
  }
}
