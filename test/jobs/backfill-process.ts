/**
 * A backfill process of the crash test, run as `node backfill-process.ts '<json config>'`: opens
 * the run's PGlite journal and legacy table, builds a writer (its drainer running), and runs
 * (or, given `jobId`, resumes) a backfill of every Patient, then drains what it queued. Stdout
 * carries one JSON object per line: `ready`, `page` after each completed page (with the job's
 * id and counts), `drained` after each drain call, and `done` with the outbox counts; each
 * line also gives `loopMaxMs`, the longest event-loop delay since the line before. The parent
 * kills it with SIGKILL.
 */
import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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

// The longest the event loop was held up since the last line: every request of the process
// waits that long at least, and one held past `requestTimeoutMs` times out.
const loop = monitorEventLoopDelay({ resolution: 20 });
loop.enable();
// `BACKFILL_CRASH_LOG`: a file every line is appended to as well, with its time, to follow a run.
const log = process.env.BACKFILL_CRASH_LOG;

function say(line: Record<string, unknown>): void {
  const text = JSON.stringify({ ...line, loopMaxMs: Math.round(loop.max / 1e6) });
  loop.reset();
  if (log !== undefined) appendFileSync(log, `${new Date().toISOString()} ${process.pid} ${text}\n`);
  process.stdout.write(`${text}\n`);
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
  // A killed process's leases block its entries until they lapse (30 s). A request may take
  // up to just under half of that (14 s; the default is 10 s): a loaded machine's FHIR server
  // answers a drain's batch of 100 slowly, and a request abandoned is a batch done again.
  drainer: { leaseMs: 30_000, pollIntervalMs: 50 },
  requestTimeoutMs: 14_000,
  divergence: { verifySampleRate: 0 },
});
// The drainer only, as a deployment's worker running a backfill would: change feeds here would
// read the whole table on their first pass and queue every row beside the backfill's own.
writer.start({ drainer: true, feeds: false });
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
say({ draining: remaining });
while (remaining.pending + remaining.leased > 0) {
  const report = await writer.drain({ timeoutMs: 30_000 });
  remaining = report.remaining;
  say({ drained: report });
}
await writer.stop();
say({ done: true, state: job.state, outbox: remaining });
await store.close();
await db.close();
