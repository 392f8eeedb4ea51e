import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Job, JobPageLease, JobPageResult } from '../journal/job.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ReadPage } from './record-pages.ts';

/**
 * Where a job stands, as a worker reports it after each page it completes.
 *
 * @example
 * ```ts
 * const onProgress = (progress: JobProgress) => console.log(progress.job.counts.scanned, progress.etaMs);
 * ```
 */
export interface JobProgress {
  /** The job as stored after the page. */
  readonly job: Job;
  /** Records scanned per second by the whole job since this worker started. */
  readonly recordsPerSecond: number;
  /**
   * Milliseconds to the end at that rate, when the number of records is known (the `total`
   * option); `undefined` otherwise.
   */
  readonly etaMs: number | undefined;
}

/**
 * How one worker runs its share of a job.
 *
 * @example
 * ```ts
 * const options: JobWorkerOptions = { pageSize: 500, leaseMs: 60_000, signal: AbortSignal.timeout(3_600_000) };
 * ```
 */
export interface JobWorkerOptions {
  /** This worker's name in page leases. @default `${hostname}:${pid}:${random}` */
  readonly workerId?: string | undefined;
  /** Records per page, 1 to 1000. @default 200 */
  readonly pageSize?: number | undefined;
  /**
   * How long a page stays this worker's without a renewal (renewed every third of it while
   * the page runs); a worker that dies loses its page after this long. @default 60000
   */
  readonly leaseMs?: number | undefined;
  /** How long a worker waits when no page is free (another worker reads the next one). @default 200 */
  readonly pollIntervalMs?: number | undefined;
  /**
   * Stops this worker after the page in hand: the job stays `running`, resumable by any worker
   * (pass its `jobId`). To stop every worker, pause or cancel the job instead.
   */
  readonly signal?: AbortSignal | undefined;
  /** Called after each page this worker completes. */
  readonly onProgress?: ((progress: JobProgress) => void) | undefined;
  /** How many records the job will scan, when known: progress then carries an ETA. */
  readonly total?: number | undefined;
}

/** What a worker does with one page, and what it does before taking one. */
export interface PageWork<T> {
  readonly read: ReadPage<T>;
  readonly process: (items: readonly T[]) => Promise<JobPageResult>;
  /** Waits until the worker may take another page (back-pressure); optional. */
  readonly beforePage?: (() => Promise<void>) | undefined;
}

/**
 * Runs pages of a job until none is left for this worker: the job is `done`, another state
 * than `running` (paused, cancelled, failed), or `signal` aborted. A page whose processing
 * throws marks the job `failed` with the error's name (never its message, which may quote a
 * value) and rethrows; resuming it (`setJobState(id, 'running', { from: ['failed'] })`, or the
 * job's `resume`) takes the page again.
 *
 * @param store - The journal holding the job.
 * @param jobId - The job.
 * @param work - How to read and process a page.
 * @param options - This worker's settings.
 * @returns The job as stored when this worker stopped.
 * @example
 * ```ts
 * const job = await runJobPages(store, id, { read, process }, { pageSize: 500 });
 * ```
 */
export async function runJobPages<T>(
  store: SyncStore,
  jobId: string,
  work: PageWork<T>,
  options: JobWorkerOptions = {},
): Promise<Job> {
  const owner = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const pageSize = options.pageSize ?? 200;
  const leaseMs = options.leaseMs ?? 60_000;
  const poll = options.pollIntervalMs ?? 200;
  const started = Date.now();
  const scannedAtStart = (await store.getJob(jobId))?.counts.scanned ?? 0;
  for (;;) {
    const job = await store.getJob(jobId);
    if (job === undefined) throw new Error(`job ${jobId} does not exist`);
    if (job.state !== 'running' || options.signal?.aborted === true) return job;
    await work.beforePage?.();
    const lease = await store.leaseJobPage(jobId, owner, leaseMs);
    if (lease === undefined) {
      const now = await store.getJob(jobId);
      if (now?.state !== 'running') return now ?? job;
      await sleep(poll, options.signal);
      continue;
    }
    const finished = await runPage(store, lease, work, pageSize, leaseMs);
    if (finished === 'fenced') continue;
    const after = await store.getJob(jobId);
    if (after !== undefined && options.onProgress !== undefined) {
      const scanned = (after.counts.scanned ?? 0) - scannedAtStart;
      const recordsPerSecond = scanned / Math.max((Date.now() - started) / 1000, 0.001);
      const left =
        options.total === undefined ? undefined : Math.max(options.total - (after.counts.scanned ?? 0), 0);
      options.onProgress({
        job: after,
        recordsPerSecond,
        etaMs:
          left === undefined || recordsPerSecond === 0
            ? undefined
            : Math.round((left / recordsPerSecond) * 1000),
      });
    }
  }
}

async function runPage<T>(
  store: SyncStore,
  lease: JobPageLease,
  work: PageWork<T>,
  pageSize: number,
  leaseMs: number,
): Promise<'done' | 'fenced'> {
  // The lease is renewed while the page runs, so a slow page (a paced Medplum) is not taken
  // over by another worker while this one still works on it.
  const renewal = setInterval(
    () => {
      store.renewJobPage(lease, leaseMs).catch(() => undefined);
    },
    Math.max(leaseMs / 3, 1),
  );
  try {
    const page = await work.read(lease.after, pageSize);
    // Only a page read for the first time moves the frontier; one taken over keeps the end
    // its first reader recorded.
    if (!lease.scanned && (await store.endJobPage(lease, page.next)) === 'fenced') return 'fenced';
    const result = await work.process(page.items);
    return await store.completeJobPage(lease, result);
  } catch (err) {
    const name = err instanceof Error ? err.name : 'Error';
    const status = (err as { status?: unknown } | null)?.status;
    await store.setJobState(lease.jobId, 'failed', {
      from: ['running'],
      reason: `${name}${typeof status === 'number' ? ` (status ${status})` : ''} on page ${lease.page}`,
    });
    throw err;
  } finally {
    clearInterval(renewal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
