import type { Job } from '../journal/job.ts';
import { formatTable, type Column } from './command-output.ts';

/**
 * A job as `--json` prints it (field names stable): what `dualwrite backfill status 7 --json`
 * and every other job command print.
 *
 * @example
 * ```ts
 * const doc: JobDocument = jobDocument(job);
 * ```
 */
export interface JobDocument {
  readonly id: string;
  readonly kind: Job['kind'];
  readonly resourceType: string;
  readonly unit: string | null;
  readonly direction: Job['direction'];
  readonly state: Job['state'];
  readonly pages: number;
  readonly pagesDone: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly samples: Readonly<Record<string, readonly string[]>>;
  readonly reason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
}

/**
 * The document of a job.
 *
 * @param job - The job as stored.
 * @returns Its document (absent values as `null`).
 * @example
 * ```ts
 * output.result({ job: jobDocument(job) }, () => describeJob(job));
 * ```
 */
export function jobDocument(job: Job): JobDocument {
  return {
    id: job.id,
    kind: job.kind,
    resourceType: job.resourceType,
    unit: job.unit ?? null,
    direction: job.direction,
    state: job.state,
    pages: job.pages,
    pagesDone: job.pagesDone,
    counts: job.counts,
    samples: job.samples,
    reason: job.reason ?? null,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt ?? null,
  };
}

const countsOf = (job: Job): string =>
  Object.entries(job.counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');

const JOB_COLUMNS: readonly Column<Job>[] = [
  { header: 'id', value: (job) => job.id, align: 'right' },
  { header: 'kind', value: (job) => job.kind },
  { header: 'type', value: (job) => job.resourceType },
  { header: 'unit', value: (job) => job.unit ?? '(all)' },
  { header: 'direction', value: (job) => job.direction },
  { header: 'state', value: (job) => job.state },
  { header: 'pages', value: (job) => `${job.pagesDone}/${job.pages}`, align: 'right' },
  { header: 'counts', value: (job) => countsOf(job) || '-' },
  { header: 'updated', value: (job) => job.updatedAt },
];

/**
 * Jobs as an aligned table.
 *
 * @param jobs - The jobs.
 * @returns The table.
 * @example
 * ```ts
 * terminal.stdout.write(jobTable(await store.listJobs({ kind: 'backfill' })));
 * ```
 */
export function jobTable(jobs: readonly Job[]): string {
  return formatTable(jobs, JOB_COLUMNS);
}

/**
 * One job, field by field (counts and samples included; samples are legacy ids, never values).
 *
 * @param job - The job.
 * @returns The description.
 * @example
 * ```ts
 * terminal.stdout.write(describeJob(job));
 * ```
 */
export function describeJob(job: Job): string {
  const rows: [string, string][] = [
    ['job', `${job.id} (${job.kind})`],
    ['type', job.resourceType],
    ['unit', job.unit ?? '(all)'],
    ['direction', job.direction],
    ['state', job.state + (job.reason === undefined ? '' : ` (${job.reason})`)],
    ['pages', `${job.pagesDone} done of ${job.pages} taken${job.scanComplete ? ', scan complete' : ''}`],
    ...Object.entries(job.counts).map(([name, n]): [string, string] => [
      name,
      `${n}${job.samples[name]?.length ? `  e.g. ${job.samples[name].join(', ')}` : ''}`,
    ]),
    ['created at', job.createdAt],
    ['updated at', job.updatedAt],
    ['finished at', job.finishedAt ?? '-'],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n') + '\n';
}
