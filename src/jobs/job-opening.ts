import { InvalidInputError } from '../errors.ts';
import type { Job, JobDirection, JobKind } from '../journal/job.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import {
  aFunction,
  anObject,
  checkOptions,
  checkValue,
  nonEmptyString,
  oneOf,
  positiveInteger,
  positiveMs,
  resourceTypeName,
  type Rule,
} from '../option-checks.ts';
import { retryPolicyOf } from '../mirror/retry-policy.ts';
import { MedplumSide } from '../sides/medplum-side.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../sides/request-deadline.ts';
import type { PageScope } from './backfill-page.ts';
import type { JobContext } from './job-context.ts';
import type { JobWorkerOptions } from './job-worker.ts';

/*
 * Opening a job is the same for a backfill and a reconciliation: check the options, find the
 * type's mapping, create the job or join the one named by `jobId`, and resolve what its pages
 * need (the scope). Each kind adds its own options to the shape and its own work per page.
 */

/**
 * What every job names: a resource type, a direction, a unit or all, and optionally an
 * existing job to join.
 *
 * @example
 * ```ts
 * const target: JobTarget = { resourceType: 'Patient', direction: 'to-medplum', unit: 'north' };
 * ```
 */
export interface JobTarget {
  /** The resource type (one per job). */
  readonly resourceType: string;
  /** Which side is read as the source (`to-medplum`: the legacy system). */
  readonly direction: JobDirection;
  /** Only this unit's records; every unit's when absent. */
  readonly unit?: string | undefined;
  /** Join this existing job instead of starting one (a second worker, a resume). */
  readonly jobId?: string | undefined;
}

/**
 * Records per page: 1 to 1000, Medplum's largest search page (`_count`), as for the feeds. A page
 * is held in memory and leased whole; a pageSize of 1e9 was accepted and read every record into
 * one page.
 */
const pageSizeRule: Rule<number> = {
  test: (value): value is number =>
    typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1000,
  problem: 'must be an integer from 1 to 1000',
};

/** The rules of the options every job takes: its target and how its worker runs. */
export const JOB_OPTIONS_SHAPE = {
  resourceType: resourceTypeName,
  direction: oneOf('to-medplum', 'to-legacy'),
  unit: nonEmptyString,
  jobId: nonEmptyString,
  workerId: nonEmptyString,
  pageSize: pageSizeRule,
  leaseMs: positiveMs,
  pollIntervalMs: positiveMs,
  signal: anObject,
  onProgress: aFunction,
  total: positiveInteger,
} satisfies Record<keyof (JobTarget & JobWorkerOptions), Rule>;

/** An opened job: the checked options, the stored job and what its pages need. */
export interface OpenedJob<L, O> {
  readonly given: O;
  readonly job: Job;
  readonly scope: PageScope<L>;
}

/**
 * Checks a job's options, finds its mapping and creates the job (or joins the one named by
 * `jobId`, checked to be of this kind and type).
 *
 * @param ctx - The journal, both systems and the mappings.
 * @param options - The options as given (`unknown` keys are refused, naming them).
 * @param kind - Backfill or reconcile.
 * @param shape - The rules of this kind's own options, beside {@link JOB_OPTIONS_SHAPE}.
 * @param sampleSize - Most sample ids kept per count, for a new job.
 * @returns The checked options, the job and its page scope.
 * @throws {@link InvalidInputError} naming the option at fault.
 * @example
 * ```ts
 * const { given, job, scope } = await openJob(ctx, options, 'backfill', { maxQueued: positiveInteger });
 * ```
 */
export async function openJob<L, O extends JobTarget & JobWorkerOptions>(
  ctx: JobContext<L>,
  options: O,
  kind: JobKind,
  shape: Readonly<Record<Exclude<keyof O, keyof (JobTarget & JobWorkerOptions)>, Rule>>,
  sampleSize?: number,
): Promise<OpenedJob<L, O>> {
  const given = checkOptions(options, 'options', 'input', { ...JOB_OPTIONS_SHAPE, ...shape }) as unknown as O;
  for (const key of ['resourceType', 'direction'] as const) {
    if ((given[key] as string | undefined) === undefined) throw new InvalidInputError(key, 'is required');
  }
  if (ctx.requestTimeoutMs !== undefined)
    checkValue(ctx.requestTimeoutMs, positiveMs, 'requestTimeoutMs', 'input');
  const retry = retryPolicyOf(ctx.retry);
  const mapping = ctx.mappings.find((candidate) => candidate.resourceType === given.resourceType);
  if (mapping === undefined) {
    throw new InvalidInputError('resourceType', 'has no mapping', { resourceType: given.resourceType });
  }
  const noUnit = (unit: string | undefined): boolean => ctx.unitOf === undefined && unit === undefined;
  if (noUnit(given.unit) && given.jobId === undefined) {
    throw new InvalidInputError('unit', 'is required when the context has no unitOf');
  }
  const job = await jobFor(ctx.store, given, kind, sampleSize);
  if (noUnit(job.unit)) {
    throw new InvalidInputError('unit', 'is required when the context has no unitOf');
  }
  const scope: PageScope<L> = {
    ctx,
    store: ctx.store,
    legacy: ctx.legacy,
    medplum: jobSide(ctx),
    mapping,
    unit: job.unit,
    signal: given.signal,
    retry,
  };
  return { given, job, scope };
}

/**
 * The Medplum side of a job: its requests in the background lane of the context's pacer, each
 * with the context's time limit.
 *
 * @param ctx - The job's context.
 * @returns The side.
 * @example
 * ```ts
 * const side = jobSide({ ...ctx, requestTimeoutMs: 5_000 });
 * ```
 */
export function jobSide<L>(ctx: JobContext<L>): MedplumSide {
  return new MedplumSide(
    ctx.medplum,
    1,
    ctx.pacer === undefined ? {} : { pacer: ctx.pacer, lane: 'background' },
    ctx.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  );
}

/**
 * The job a run works on: the one named by `jobId` (checked to be of this kind and type), or a
 * new one.
 */
async function jobFor(
  store: SyncStore,
  given: JobTarget,
  kind: JobKind,
  sampleSize: number | undefined,
): Promise<Job> {
  if (given.jobId === undefined) {
    return store.createJob({
      kind,
      resourceType: given.resourceType,
      unit: given.unit,
      direction: given.direction,
      ...(sampleSize === undefined ? {} : { sampleSize }),
    });
  }
  const job = await store.getJob(given.jobId);
  if (job?.kind !== kind || job.resourceType !== given.resourceType) {
    throw new InvalidInputError('jobId', `names no ${kind} job of this resource type`, {
      resourceType: given.resourceType,
    });
  }
  return job;
}
