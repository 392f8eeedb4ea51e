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
 * child process so that its peak RSS is its own. There is no baseline: the issue's targets are
 * absolute (>= 20,000 records/s on this machine; peak RSS at the large size within 1.2x of the
 * small one's). The child holds both sides' data too (the in-process FHIR server, PGlite and the
 * links), which grows with the size whatever the reconciliation does, so the rows give both the
 * whole process's peak and the growth during the reconciliation itself (peak minus the RSS
 * once everything was seeded).
 *
 * @param options - The two sizes.
 * @returns `reconcile-compare-rate` (records/s), `reconcile-rss-ratio` and `reconcile-rss-growth-ratio`.
 */
export async function measureReconcileCompare(options: ReconcileCompareOptions): Promise<Measurement> {
  const small = await runChild(options.records);
  const large = await runChild(options.largeRecords);
  const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const growth = (run: ReconcileRun): number => Math.max(run.peakRss - run.seededRss, 1);
  const describe = (run: ReconcileRun): string =>
    `${run.records} records: ${run.agreed} agreed in ${run.seconds.toFixed(2)} s (${Math.round(run.agreed / run.seconds)}/s), ` +
    `${run.requests} requests; RSS ${mb(run.seededRss)} seeded, ${mb(run.peakRss)} peak (+${mb(growth(run))} while reconciling)`;
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
    ],
    details: [`reconcile: ${describe(small)}`, `reconcile: ${describe(large)}`],
  };
}

function runChild(records: number): Promise<ReconcileRun> {
  const child = fork(fileURLToPath(new URL('./reconcile-child.ts', import.meta.url)), [String(records)], {
    execPath: process.execPath,
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
