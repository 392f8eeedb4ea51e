import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchDatabase } from './bench-database.ts';
import type { Measurement } from './bench-row.ts';
import type { ReconcileRun } from './reconcile-child.ts';

/** How many records each side holds, per run. */
export interface ReconcileCompareOptions {
  /** The size whose rate is the `reconcile-compare-rate` row. */
  readonly records: number;
  /** The size whose peak RSS is compared with the peak RSS at `records`. */
  readonly largeRecords: number;
}

/**
 * `reconcile` over two local sides that agree (see `reconcile-child.ts`), each size in a fresh
 * child process so that its peak RSS is its own, once with the journal in a `MemoryStore` and once
 * in a `PostgresStore` on the bench's PostgreSQL server. There is no baseline: the targets
 * are absolute (>= 20,000 records/s on this machine; peak RSS at the large size within 1.2x of the
 * small one's). The rate rows use the memory journal (what the comparison and the stand-ins cost);
 * the memory rows the PostgreSQL journal, where the process holds none of the journal, as in
 * production (a memory journal holds the links, and the copies a reconciliation notes between its
 * passes, in the process). The child holds both sides' data too (the in-process FHIR server and
 * PGlite), which grows with the size whatever the reconciliation does, so the rows give both the
 * whole process's peak and the growth during the reconciliation itself (peak minus the RSS once
 * everything was seeded). Peak RSS counts garbage not yet collected too, and V8 lets more of it
 * build up in a bigger heap: `reconcile-heap-kept` gives what stays after a full collection.
 *
 * @param db - The bench's database: the PostgreSQL journals' schemas are made and dropped there.
 * @param options - The two sizes.
 * @returns `reconcile-compare-rate(-large)` (records/s, memory journal),
 *   `reconcile-compare-rate-postgres(-large)`, `reconcile-rss-ratio`, `reconcile-rss-growth-ratio`
 *   and `reconcile-heap-kept` (PostgreSQL journal), `reconcile-rss-growth-ratio-memory-journal`.
 */
export async function measureReconcileCompare(
  db: BenchDatabase,
  options: ReconcileCompareOptions,
): Promise<Measurement> {
  const small = await runChild(options.records, 'memory', db.url);
  const large = await runChild(options.largeRecords, 'memory', db.url);
  const smallPg = await runChild(options.records, db.journalSchema('reconcile_small'), db.url);
  const largePg = await runChild(options.largeRecords, db.journalSchema('reconcile_large'), db.url);
  const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  // At least 1 MB: a run whose RSS did not grow at all made the ratio 52,994,048×.
  const growth = (run: ReconcileRun): number => Math.max(run.peakRss - run.seededRss, 2 ** 20);
  const kept = (run: ReconcileRun): number => run.retainedHeap - run.seededHeap;
  const describe = (run: ReconcileRun, journal: string): string =>
    `${run.records} records, ${journal} journal: ${run.agreed} agreed in ${run.seconds.toFixed(2)} s (${Math.round(run.agreed / run.seconds)}/s), ` +
    `${run.requests} requests; RSS ${mb(run.seededRss)} seeded, ${mb(run.peakRss)} peak (+${mb(growth(run))} while reconciling); ` +
    `V8 heap ${mb(run.seededHeap)} seeded, ${mb(run.peakHeap)} peak (garbage included), ${mb(run.retainedHeap)} after (seeded and after: after a full collection); ` +
    `external memory (PGlite's WebAssembly memory, buffers) ${mb(run.seededExternal)} seeded, ${mb(run.peakExternal)} peak`;
  return {
    rows: [
      {
        name: 'reconcile-compare-rate',
        value: Math.round(small.agreed / small.seconds),
        unit: 'records/s',
        note: `${small.records} records, both sides local, memory journal, all agreeing on cheap facts (target >= 20000)`,
      },
      {
        name: 'reconcile-compare-rate-large',
        value: Math.round(large.agreed / large.seconds),
        unit: 'records/s',
        note: `${large.records} records, memory journal`,
      },
      {
        name: 'reconcile-compare-rate-postgres',
        value: Math.round(smallPg.agreed / smallPg.seconds),
        unit: 'records/s',
        note: `${smallPg.records} records, journal on PostgreSQL`,
      },
      {
        name: 'reconcile-compare-rate-postgres-large',
        value: Math.round(largePg.agreed / largePg.seconds),
        unit: 'records/s',
        note: `${largePg.records} records, journal on PostgreSQL`,
      },
      {
        name: 'reconcile-rss-ratio',
        value: largePg.peakRss / 2 ** 20,
        baseline: smallPg.peakRss / 2 ** 20,
        ratio: largePg.peakRss / smallPg.peakRss,
        unit: 'MB',
        target: { op: '<=', ratio: 1.2 },
        note: `peak RSS at ${largePg.records} vs ${smallPg.records}, journal on PostgreSQL, the process holding both sides' data`,
      },
      {
        name: 'reconcile-rss-growth-ratio',
        value: growth(largePg) / 2 ** 20,
        baseline: growth(smallPg) / 2 ** 20,
        ratio: growth(largePg) / growth(smallPg),
        unit: 'MB',
        target: { op: '<=', ratio: 1.2 },
        note: 'RSS growth while reconciling (peak minus RSS once seeded), journal on PostgreSQL',
      },
      {
        name: 'reconcile-rss-growth-ratio-memory-journal',
        value: growth(large) / 2 ** 20,
        baseline: growth(small) / 2 ** 20,
        ratio: growth(large) / growth(small),
        unit: 'MB',
        note: 'the same with a MemoryStore journal, which holds the noted copies in the process between passes',
      },
      {
        name: 'reconcile-heap-kept',
        value: kept(largePg) / 2 ** 20,
        baseline: kept(smallPg) / 2 ** 20,
        unit: 'MB',
        note: `V8 heap kept after the reconciliation (after a full collection, minus the same once seeded), at ${largePg.records} vs ${smallPg.records}, journal on PostgreSQL`,
      },
    ],
    details: [
      `reconcile: ${describe(small, 'memory')}`,
      `reconcile: ${describe(large, 'memory')}`,
      `reconcile: ${describe(smallPg, 'PostgreSQL')}`,
      `reconcile: ${describe(largePg, 'PostgreSQL')}`,
    ],
  };
}

function runChild(records: number, journal: string, databaseUrl: string): Promise<ReconcileRun> {
  const child = fork(
    fileURLToPath(new URL('./reconcile-child.ts', import.meta.url)),
    [String(records), journal],
    {
      execPath: process.execPath,
      execArgv: [...process.execArgv, '--expose-gc'],
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (run: ReconcileRun) => resolve(run));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the reconcile child exited with ${String(code)}`));
    });
  });
}
