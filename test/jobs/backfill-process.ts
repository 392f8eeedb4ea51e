/**
 * A backfill process of the crash test, run as `node backfill-process.ts '<json config>'`: opens
 * the run's PGlite journal and legacy table, builds a writer (its drainer running), and runs
 * (or, given `jobId`, resumes) a backfill of every Patient, then drains what it queued. Stdout
 * carries one JSON object per line: `ready`, `page` after each completed page (with the job's
 * id and counts), and `done` with the outbox counts. The parent kills it with SIGKILL.
 */
import { PGlite } from '@electric-sql/pglite';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPglite,
  type PostgresTableRow,
} from '../../src/index.ts';
import { clinicPatientMapping } from '../../examples/clinic-mapping.ts';

/** What the parent tells a backfill process. */
export interface BackfillProcessConfig {
  readonly storeDir: string;
  readonly legacyDir: string;
  readonly baseUrl: string;
  readonly identifierSystem: string;
  readonly jobId: string | undefined;
}

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const config = JSON.parse(process.argv[2] ?? '') as BackfillProcessConfig;
const store = await PostgresStore.openEmbedded({ dataDir: config.storeDir });
const db = await PGlite.create(config.legacyDir);
const legacy = new PostgresTableAdapter({
  sql: sqlClientFromPglite(db),
  tables: { Patient: { table: 'patients' } },
});
const writer = new DualWriter<{ clinic: string }, PostgresTableRow>({
  legacy,
  medplum: createMedplumClient({ baseUrl: config.baseUrl }),
  mappings: [clinicPatientMapping(config.identifierSystem)],
  plan: new CutoverPlan<{ clinic: string }>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
  store,
  mirror: 'async',
  // A killed process's leases block its entries until they lapse (30 s); the request time
  // limit is a third of them, and a backfill's searches keep it too: at 666 ms and 3 s, the
  // in-process FHIR server did not answer in time under a load average of 20.
  drainer: { leaseMs: 30_000, pollIntervalMs: 50 },
  divergence: { verifySampleRate: 0 },
  feeds: { unitOf: (record) => (record.row?.clinic as string | undefined) ?? 'north' },
});
writer.start();
say({ ready: true });
const run = (jobId: string | undefined) =>
  writer.backfill({
    resourceType: 'Patient',
    unit: jobId === undefined ? 'north' : undefined,
    direction: 'to-medplum',
    jobId,
    pageSize: 100,
    leaseMs: 2_000,
    pollIntervalMs: 50,
    onProgress: ({ job: now }) => say({ page: now.pagesDone, jobId: now.id, counts: now.counts }),
  });
// A page whose requests timed out through every retry fails the job; an operator resumes it.
const runOnce = (jobId: string | undefined) =>
  run(jobId).catch(async (err: unknown) => {
    const [failed] = await store.listJobs({ kind: 'backfill', limit: 1 });
    if (failed?.state !== 'failed' || !(err instanceof Error) || err.name !== 'RequestTimeoutError')
      throw err;
    say({ resumed: failed.reason });
    return failed;
  });
let job = await runOnce(config.jobId);
for (let resumes = 0; job.state === 'failed' && resumes < 5; resumes += 1) {
  await store.setJobState(job.id, 'running', { from: ['failed'] });
  job = await runOnce(job.id);
}
let remaining = await writer.outbox();
while (remaining.pending + remaining.leased > 0)
  remaining = (await writer.drain({ timeoutMs: 30_000 })).remaining;
await writer.stop();
say({ done: true, state: job.state, outbox: remaining });
await store.close();
await db.close();
