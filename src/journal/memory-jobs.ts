import {
  mergeJobResult,
  OPEN_JOB_STATES,
  type Job,
  type JobFilter,
  type JobPageLease,
  type JobPageResult,
  type JobSpec,
  type JobState,
  type JobStore,
  type SeenCopy,
} from './job.ts';

type MutableJob = { -readonly [K in keyof Job]: Job[K] } & { sampleSize: number };

interface MutablePage {
  readonly page: number;
  readonly after: string | undefined;
  scanned: boolean;
  done: boolean;
  owner: string;
  token: string;
  expiresAt: number;
}

/**
 * The jobs of a `MemoryStore`: the semantics of `PostgresStore`'s job tables, in process
 * memory (lost on exit; leases reach this process only).
 *
 * @example
 * ```ts
 * const jobs = new MemoryJobs();
 * const job = await jobs.createJob({ kind: 'backfill', resourceType: 'Patient', unit: undefined, direction: 'to-medplum' });
 * ```
 */
export class MemoryJobs implements JobStore {
  readonly #jobs = new Map<string, MutableJob>();
  readonly #pages = new Map<string, MutablePage[]>();
  readonly #seen = new Map<string, Map<string, SeenCopy>>();
  #ids = 0;
  #tokens = 0;

  /** {@inheritDoc JobStore.createJob} */
  createJob(spec: JobSpec): Promise<Job> {
    const now = new Date().toISOString();
    this.#ids += 1;
    const job: MutableJob = {
      id: String(this.#ids),
      kind: spec.kind,
      resourceType: spec.resourceType,
      unit: spec.unit,
      direction: spec.direction,
      sampleSize: spec.sampleSize ?? 10,
      state: 'running',
      cursor: undefined,
      scanComplete: false,
      pages: 0,
      pagesDone: 0,
      counts: {},
      samples: {},
      reason: undefined,
      createdAt: now,
      updatedAt: now,
      finishedAt: undefined,
    };
    this.#jobs.set(job.id, job);
    this.#pages.set(job.id, []);
    return Promise.resolve(copy(job));
  }

  /** {@inheritDoc JobStore.getJob} */
  getJob(id: string): Promise<Job | undefined> {
    const job = this.#jobs.get(id);
    return Promise.resolve(job === undefined ? undefined : copy(job));
  }

  /** {@inheritDoc JobStore.listJobs} */
  listJobs(filter: JobFilter = {}): Promise<Job[]> {
    const jobs = [...this.#jobs.values()]
      .filter(
        (job) =>
          (filter.kind === undefined || job.kind === filter.kind) &&
          (filter.resourceType === undefined || job.resourceType === filter.resourceType) &&
          (filter.unit === undefined || job.unit === filter.unit) &&
          (filter.state === undefined || job.state === filter.state),
      )
      .sort((a, b) => Number(b.id) - Number(a.id))
      .slice(0, filter.limit ?? Number.MAX_SAFE_INTEGER);
    return Promise.resolve(jobs.map(copy));
  }

  /** {@inheritDoc JobStore.leaseJobPage} */
  leaseJobPage(jobId: string, owner: string, leaseMs: number): Promise<JobPageLease | undefined> {
    const job = this.#jobs.get(jobId);
    if (job?.state !== 'running') return Promise.resolve(undefined);
    const pages = this.#pages.get(jobId) ?? [];
    const now = Date.now();
    const lapsed = pages.find((page) => !page.done && page.expiresAt <= now);
    if (lapsed !== undefined) {
      this.#grant(lapsed, owner, leaseMs, now);
      return Promise.resolve(leaseOf(jobId, lapsed));
    }
    if (!job.scanComplete && pages.every((page) => page.scanned)) {
      const page: MutablePage = {
        page: pages.length + 1,
        after: job.cursor,
        scanned: false,
        done: false,
        owner,
        token: '',
        expiresAt: 0,
      };
      this.#grant(page, owner, leaseMs, now);
      pages.push(page);
      job.pages = pages.length;
      job.updatedAt = new Date(now).toISOString();
      return Promise.resolve(leaseOf(jobId, page));
    }
    this.#finishIfComplete(job, pages);
    return Promise.resolve(undefined);
  }

  /** {@inheritDoc JobStore.endJobPage} */
  endJobPage(lease: JobPageLease, next: string | undefined): Promise<'done' | 'fenced'> {
    const page = this.#current(lease);
    const job = this.#jobs.get(lease.jobId);
    if (page === undefined || job === undefined) return Promise.resolve('fenced');
    if (!page.scanned) {
      page.scanned = true;
      job.cursor = next;
      job.scanComplete = next === undefined;
      job.updatedAt = new Date().toISOString();
    }
    return Promise.resolve('done');
  }

  /** {@inheritDoc JobStore.renewJobPage} */
  renewJobPage(lease: JobPageLease, leaseMs: number): Promise<'done' | 'fenced'> {
    const page = this.#current(lease);
    if (page === undefined) return Promise.resolve('fenced');
    page.expiresAt = Date.now() + leaseMs;
    return Promise.resolve('done');
  }

  /** {@inheritDoc JobStore.completeJobPage} */
  completeJobPage(lease: JobPageLease, result: JobPageResult): Promise<'done' | 'fenced'> {
    const page = this.#current(lease);
    const job = this.#jobs.get(lease.jobId);
    if (page === undefined || job === undefined || !page.scanned) return Promise.resolve('fenced');
    page.done = true;
    const merged = mergeJobResult(job, result);
    job.counts = merged.counts;
    job.samples = merged.samples;
    job.pagesDone += 1;
    job.updatedAt = new Date().toISOString();
    this.#finishIfComplete(job, this.#pages.get(lease.jobId) ?? []);
    return Promise.resolve('done');
  }

  /** {@inheritDoc JobStore.setJobState} */
  setJobState(
    id: string,
    state: JobState,
    options: { readonly from?: readonly JobState[] | undefined; readonly reason?: string | undefined } = {},
  ): Promise<Job | undefined> {
    const job = this.#jobs.get(id);
    if (job === undefined || !(options.from ?? OPEN_JOB_STATES).includes(job.state))
      return Promise.resolve(undefined);
    const now = new Date().toISOString();
    job.state = state;
    job.updatedAt = now;
    if (options.reason !== undefined) job.reason = options.reason;
    if (!OPEN_JOB_STATES.includes(state)) job.finishedAt = now;
    if (state === 'done' || state === 'cancelled') this.#seen.delete(id);
    return Promise.resolve(copy(job));
  }

  /** {@inheritDoc JobStore.noteSeenCopies} */
  noteSeenCopies(jobId: string, copies: readonly SeenCopy[]): Promise<void> {
    const job = this.#jobs.get(jobId);
    if (job === undefined || copies.length === 0) return Promise.resolve();
    let seen = this.#seen.get(jobId);
    if (seen === undefined) this.#seen.set(jobId, (seen = new Map<string, SeenCopy>()));
    for (const copy of copies) seen.set(copy.legacyId, { ...copy });
    return Promise.resolve();
  }

  /** {@inheritDoc JobStore.takeSeenCopies} */
  takeSeenCopies(jobId: string, legacyIds: readonly string[]): Promise<Map<string, SeenCopy>> {
    const seen = this.#seen.get(jobId);
    const taken = new Map<string, SeenCopy>();
    if (seen === undefined) return Promise.resolve(taken);
    for (const id of legacyIds) {
      const copy = seen.get(id);
      if (copy === undefined) continue;
      taken.set(id, copy);
      seen.delete(id);
    }
    return Promise.resolve(taken);
  }

  /** {@inheritDoc JobStore.listSeenCopies} */
  listSeenCopies(
    jobId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<SeenCopy[]> {
    const { after, limit } = options;
    // Sorted per call: what is left after the pass over the legacy side is normally a handful.
    const left = [...(this.#seen.get(jobId)?.values() ?? [])]
      .filter((copy) => after === undefined || copy.legacyId > after)
      .sort((a, b) => (a.legacyId < b.legacyId ? -1 : a.legacyId > b.legacyId ? 1 : 0))
      .slice(0, limit);
    return Promise.resolve(left.map((copy) => ({ ...copy })));
  }

  #grant(page: MutablePage, owner: string, leaseMs: number, now: number): void {
    this.#tokens += 1;
    page.owner = owner;
    page.token = String(this.#tokens);
    page.expiresAt = now + leaseMs;
  }

  #current(lease: JobPageLease): MutablePage | undefined {
    const page = this.#pages.get(lease.jobId)?.find((candidate) => candidate.page === lease.page);
    return page !== undefined && !page.done && page.token === lease.token ? page : undefined;
  }

  #finishIfComplete(job: MutableJob, pages: readonly MutablePage[]): void {
    if (job.state !== 'running' || !job.scanComplete || !pages.every((page) => page.done)) return;
    const now = new Date().toISOString();
    job.state = 'done';
    job.updatedAt = now;
    job.finishedAt = now;
    this.#seen.delete(job.id);
  }
}

function leaseOf(jobId: string, page: MutablePage): JobPageLease {
  return {
    jobId,
    page: page.page,
    after: page.after,
    scanned: page.scanned,
    owner: page.owner,
    token: page.token,
  };
}

function copy(job: MutableJob): Job {
  const { sampleSize, ...rest } = job;
  return structuredClone({ ...rest, sampleSize });
}
