import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
 * child process so that its peak RSS is its own. There is no baseline: the targets are
 * absolute (>= 20,000 records/s on this machine; peak RSS at the large size within 1.2x of the
 * small one's). The child holds both sides' data too (the in-process FHIR server, PGlite and the
 * links), which grows with the size whatever the reconciliation does, so the rows give both the
 * whole process's peak and the growth during the reconciliation itself (peak minus the RSS
 * once everything was seeded).
 *
 * @param options - The two sizes.
 * Peak RSS counts garbage not yet collected too, and V8 lets more of it build up in a bigger heap
 * (the 100,000 records' seeded sides hold 337 MB of heap against 63 MB): `reconcile-heap-kept`
 * gives what stays after a full collection.
 *
 * @returns `reconcile-compare-rate` (records/s), `reconcile-rss-ratio`, `reconcile-rss-growth-ratio`
 *   and `reconcile-heap-kept`.
 */
export async function measureReconcileCompare(options: ReconcileCompareOptions): Promise<Measurement> {
  const small = await runChild(options.records);
  const large = await runChild(options.largeRecords);
  const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  // At least 1 MB: a run whose RSS did not grow at all made the ratio 52,994,048×.
  const growth = (run: ReconcileRun): number => Math.max(run.peakRss - run.seededRss, 2 ** 20);
  const kept = (run: ReconcileRun): number => run.retainedHeap - run.seededHeap;
  const describe = (run: ReconcileRun): string =>
    `${run.records} records: ${run.agreed} agreed in ${run.seconds.toFixed(2)} s (${Math.round(run.agreed / run.seconds)}/s), ` +
    `${run.requests} requests; RSS ${mb(run.seededRss)} seeded, ${mb(run.peakRss)} peak (+${mb(growth(run))} while reconciling); ` +
    `V8 heap ${mb(run.seededHeap)} seeded, ${mb(run.retainedHeap)} after (both after a full collection)`;
  return {
    rows: [
      {
        name: 'reconcile-compare-rate',
        value: Math.round(small.agreed / small.seconds),
        unit: 'records/s',
        note: `${small.records} records, both sides local, all agreeing on cheap facts (target >= 20000)`,
      },
      {
        name: 'reconcile-compare-rate-large',
        value: Math.round(large.agreed / large.seconds),
        unit: 'records/s',
        note: `${large.records} records`,
      },
      {
        name: 'reconcile-rss-ratio',
        value: large.peakRss / 2 ** 20,
        baseline: small.peakRss / 2 ** 20,
        ratio: large.peakRss / small.peakRss,
        unit: 'MB',
        target: { op: '<=', ratio: 1.2 },
        note: `peak RSS at ${large.records} vs ${small.records}, the process holding both sides' data`,
      },
      {
        name: 'reconcile-rss-growth-ratio',
        value: growth(large) / 2 ** 20,
        baseline: growth(small) / 2 ** 20,
        ratio: growth(large) / growth(small),
        unit: 'MB',
        target: { op: '<=', ratio: 1.2 },
        note: 'RSS growth while reconciling (peak minus RSS once seeded)',
      },
      {
        name: 'reconcile-heap-kept',
        value: kept(large) / 2 ** 20,
        baseline: kept(small) / 2 ** 20,
        unit: 'MB',
        note: `V8 heap kept after the reconciliation (after a full collection, minus the same once seeded), at ${large.records} vs ${small.records}: what the reconciliation and the stand-ins retain, without the garbage peak RSS counts`,
      },
    ],
    details: [`reconcile: ${describe(small)}`, `reconcile: ${describe(large)}`],
  };
}

function runChild(records: number): Promise<ReconcileRun> {
  const child = fork(fileURLToPath(new URL('./reconcile-child.ts', import.meta.url)), [String(records)], {
    execPath: process.execPath,
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (run: ReconcileRun) => resolve(run));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the reconcile child exited with ${String(code)}`));
    });
  });
}
