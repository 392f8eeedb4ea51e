/*
 * Glossary of jobs (see also DESIGN.md):
 *
 * - job — a long operation over every record of one resource type (a backfill or a
 *   reconciliation), stored in the journal so that it survives the process that started it:
 *   its scope, state, cursor and counts.
 * - page — one keyset page of the job's scan. Pages are leased like outbox entries: a worker
 *   takes the next page (or one whose lease lapsed), reads it, says where it ended, processes
 *   it and completes it; the counts of a page are added to the job only by its completion,
 *   once, fenced by the lease's token. Many workers share one job; only the scan of the next
 *   page is serialised (its start is known only when the previous page's end is).
 * - frontier — where the next new page starts: the end of the last page read.
 */

/**
 * What a job does.
 *
 * @example
 * ```ts
 * const kind: JobKind = 'backfill';
 * ```
 */
export type JobKind = 'backfill' | 'reconcile';

/**
 * Which way a job moves records: `to-medplum` reads the legacy system and makes Medplum match
 * it, `to-legacy` the reverse. A reconciliation compares both sides; its direction names the
 * side it takes for the reference.
 *
 * @example
 * ```ts
 * const direction: JobDirection = 'to-legacy'; // stepping back out of medplum-only
 * ```
 */
export type JobDirection = 'to-medplum' | 'to-legacy';

/**
 * Where a job stands. `running` and `paused` can change; `done`, `failed` and `cancelled` are
 * final.
 *
 * @example
 * ```ts
 * if (job.state === 'paused') await store.setJobState(job.id, 'running', { from: ['paused'] });
 * ```
 */
export type JobState = 'running' | 'paused' | 'done' | 'failed' | 'cancelled';

/**
 * What a new job covers.
 *
 * @example
 * ```ts
 * const spec: JobSpec = { kind: 'backfill', resourceType: 'Patient', unit: 'north', direction: 'to-medplum' };
 * ```
 */
export interface JobSpec {
  /** A backfill or a reconciliation. */
  readonly kind: JobKind;
  /** The one resource type the job covers. */
  readonly resourceType: string;
  /** The unit it covers; `undefined` for every unit. */
  readonly unit: string | undefined;
  /** Which way it moves (or compares) records. */
  readonly direction: JobDirection;
  /** Most sample ids kept per count (reports show examples, never values). @default 10 */
  readonly sampleSize?: number | undefined;
}

/**
 * A job as stored.
 *
 * @example
 * ```ts
 * const job = await store.getJob('7');
 * console.log(job?.state, job?.counts.scanned, job?.finishedAt);
 * ```
 */
export interface Job extends JobSpec {
  /** The job's id (unique, increasing). */
  readonly id: string;
  /** Where it stands. */
  readonly state: JobState;
  /** Where the next new page starts (opaque; `undefined` at the start). */
  readonly cursor: string | undefined;
  /** Whether the last page has been read (the job is done once every page is complete). */
  readonly scanComplete: boolean;
  /** Pages taken so far, and pages complete. */
  readonly pages: number;
  readonly pagesDone: number;
  /** Counts added by completed pages, by name (`scanned`, `created`, `agree`…). */
  readonly counts: Readonly<Record<string, number>>;
  /** Up to `sampleSize` legacy ids per count name, as examples. */
  readonly samples: Readonly<Record<string, readonly string[]>>;
  /** Why it failed or was cancelled (no field values). */
  readonly reason: string | undefined;
  /** When it was created, last changed, and reached a final state (ISO 8601). */
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | undefined;
}

/**
 * A worker's lease on one page of a job.
 *
 * @example
 * ```ts
 * const lease = await store.leaseJobPage(job.id, 'worker-1', 60_000);
 * if (lease !== undefined && !lease.scanned) await store.endJobPage(lease, page.next);
 * ```
 */
export interface JobPageLease {
  /** The job's id. */
  readonly jobId: string;
  /** The page's number in the job (1, 2, …). */
  readonly page: number;
  /** Where the page starts (the previous page's end; `undefined` for the first page). */
  readonly after: string | undefined;
  /**
   * Whether the page's end is known already (a lease taken over from a worker that read it
   * and died); otherwise the holder must read the page and report its end before another
   * page can start.
   */
  readonly scanned: boolean;
  /** The worker that holds it. */
  readonly owner: string;
  /** The fencing token; only the current holder's token completes the page. */
  readonly token: string;
}

/**
 * What a completed page adds to its job.
 *
 * @example
 * ```ts
 * await store.completeJobPage(lease, { counts: { scanned: 200, created: 3 }, samples: { created: ['17', '42', '96'] } });
 * ```
 */
export interface JobPageResult {
  /** Added to the job's counts, name by name. */
  readonly counts: Readonly<Record<string, number>>;
  /** Appended to the job's samples, name by name, up to its `sampleSize`. */
  readonly samples?: Readonly<Record<string, readonly string[]>> | undefined;
}

/**
 * A Medplum copy a reconciliation saw in its first pass (Medplum read in `_lastUpdated` order):
 * the resource linked to a legacy record, at the version it holds. The pass over the legacy side
 * takes each record's seen copy instead of searching Medplum for it again, and the copies no
 * legacy record took are those whose record is gone: each side is read once, and what joins the
 * two passes is kept in the journal, never in the process.
 *
 * @example
 * ```ts
 * await store.noteSeenCopies(job.id, [{ legacyId: '17', medplumId: 'a1b2', medplumVersion: '3', unit: 'north' }]);
 * ```
 */
export interface SeenCopy {
  /** The legacy record the copy is linked to. */
  readonly legacyId: string;
  /** The Medplum resource. */
  readonly medplumId: string;
  /** Its `meta.versionId` when seen (`undefined`: the server gave none). */
  readonly medplumVersion: string | undefined;
  /** The record's unit, as the reconciliation found it from the copy. */
  readonly unit: string;
}

/**
 * Filters of {@link JobStore.listJobs}.
 *
 * @example
 * ```ts
 * const [latest] = await store.listJobs({ kind: 'reconcile', resourceType: 'Patient', unit: 'north', limit: 1 });
 * ```
 */
export interface JobFilter {
  readonly kind?: JobKind | undefined;
  readonly resourceType?: string | undefined;
  /** Jobs of this unit (jobs covering every unit are not included). */
  readonly unit?: string | undefined;
  readonly state?: JobState | undefined;
  readonly limit?: number | undefined;
}

/**
 * The jobs part of the journal. Contract, checked by the store suite against every store:
 * - `leaseJobPage` on a running job grants, in this order: a page not complete whose lease
 *   lapsed (taken over with a new token), else a new page at the frontier when no page's end
 *   is unknown and the scan is not complete, else nothing. A job whose every page is complete
 *   and whose scan is complete becomes `done`.
 * - `endJobPage` records where a page ended (the next page's start; `undefined`: it was the
 *   last) and moves the frontier; `completeJobPage` adds the page's counts to the job once.
 *   Both act only for the page's current token (else `fenced`).
 * - `setJobState` changes the state only from the states in `from`.
 * - Seen copies are kept per job and legacy id until taken, and dropped when the job ends
 *   `done` or `cancelled`.
 *
 * @example
 * ```ts
 * const job = await store.createJob({ kind: 'backfill', resourceType: 'Patient', unit: undefined, direction: 'to-medplum' });
 * const lease = await store.leaseJobPage(job.id, 'worker-1', 60_000);
 * ```
 */
export interface JobStore {
  /** Creates a running job with no pages. */
  createJob(spec: JobSpec): Promise<Job>;
  /** A job by id; `undefined` when there is none. */
  getJob(id: string): Promise<Job | undefined>;
  /** Jobs, newest first. */
  listJobs(filter?: JobFilter): Promise<Job[]>;
  /** Leases a page of a running job to `owner` for `leaseMs`; `undefined` when none is free. */
  leaseJobPage(jobId: string, owner: string, leaseMs: number): Promise<JobPageLease | undefined>;
  /** Records where a leased page ended. */
  endJobPage(lease: JobPageLease, next: string | undefined): Promise<'done' | 'fenced'>;
  /** Extends a still-current page lease by `leaseMs` from now. */
  renewJobPage(lease: JobPageLease, leaseMs: number): Promise<'done' | 'fenced'>;
  /** Completes a leased page, adding its result to the job. */
  completeJobPage(lease: JobPageLease, result: JobPageResult): Promise<'done' | 'fenced'>;
  /**
   * Moves a job to `state` if it is in one of `from` (every non-final state when not given);
   * `reason` is kept for `failed` and `cancelled`. Returns the job after, or `undefined` when
   * there is no such job or it was in another state.
   */
  setJobState(
    id: string,
    state: JobState,
    options?: { readonly from?: readonly JobState[] | undefined; readonly reason?: string | undefined },
  ): Promise<Job | undefined>;
  /**
   * Keeps Medplum copies a reconciliation saw, one per legacy id (a copy noted again for the
   * same id replaces the first). A job's copies are dropped when it ends `done` or `cancelled`
   * (kept while it is `failed`: it can be resumed).
   */
  noteSeenCopies(jobId: string, copies: readonly SeenCopy[]): Promise<void>;
  /** Removes the seen copies of these legacy ids and returns them, by legacy id. */
  takeSeenCopies(jobId: string, legacyIds: readonly string[]): Promise<Map<string, SeenCopy>>;
  /**
   * The seen copies still kept, in the store's legacy-id order, strictly after `after`, at
   * most `limit` (keyset paging).
   */
  listSeenCopies(
    jobId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<SeenCopy[]>;
}

/** The states a job can still leave. */
export const OPEN_JOB_STATES: readonly JobState[] = ['running', 'paused'];

/**
 * Adds a page's result to a job's counts and samples (the one merge rule of both stores).
 *
 * @param job - The job's counts, samples and sample size.
 * @param result - The page's result.
 * @returns The merged counts and samples.
 * @example
 * ```ts
 * const merged = mergeJobResult({ counts: {}, samples: {}, sampleSize: 2 }, { counts: { agree: 3 } });
 * ```
 */
export function mergeJobResult(
  job: Pick<Job, 'counts' | 'samples'> & { readonly sampleSize: number },
  result: JobPageResult,
): { counts: Record<string, number>; samples: Record<string, string[]> } {
  const counts: Record<string, number> = { ...job.counts };
  for (const [name, n] of Object.entries(result.counts)) counts[name] = (counts[name] ?? 0) + n;
  const samples: Record<string, string[]> = {};
  for (const [name, ids] of Object.entries(job.samples)) samples[name] = [...ids];
  for (const [name, ids] of Object.entries(result.samples ?? {})) {
    const kept = samples[name] ?? [];
    for (const id of ids) if (kept.length < job.sampleSize && !kept.includes(id)) kept.push(id);
    samples[name] = kept;
  }
  return { counts, samples };
}
