/**
 * `npm run bench [-- --json] [-- --only=async,drain,sync]`: the library's costs as ratios against
 * baselines measured in the same run on the same machine, never as absolute claims. With
 * `--json`, one object per row and line on stdout (`npm run -s bench -- --json` keeps npm's own
 * banner out of it); progress goes to stderr.
 *
 * - `async-create-*`: `writer.create` in async mode vs a direct `adapter.create` (PostgreSQL).
 * - `sync-create-*`: `writer.create` in sync mode vs `adapter.create` + `createResource`.
 * - `drain-*`: `writer.drain()` of pending creates vs direct `createResource` calls at the same
 *   concurrency, against the in-process HTTP FHIR test server.
 * - `shadow-read-*`: `writer.read` in `shadow` with every read shadowed vs shadow reads off, with
 *   Medplum slower than the budget; `shadow-read-added-*` is the added latency against the budget.
 * - `telemetry-overhead(-traces)`: `writer.drain()` with the OpenTelemetry SDK's metrics (and
 *   traces) installed vs without an SDK, trials rotated.
 * - `backfill-throughput`: `writer.backfill()` of pre-existing rows, until drained, vs the best
 *   direct client (batch Bundles of 20, 4 in flight; or createResource, 8 in flight).
 * - `reconcile-*`: `reconcile` of 10,000 and 100,000 agreeing records, both sides local, each in a
 *   child process, with the journal in memory and on PostgreSQL: records/s, peak RSS, and the V8
 *   heap it keeps (`reconcile-heap-kept`).
 * - `real-*`: against a real Medplum 5.0.10 (`MEDPLUM_BASE_URL` and `MEDPLUM_DEFAULT_QUOTA_BASE_URL`,
 *   or servers started from the Medplum server box): `real-drain-throughput` against
 *   `real-direct-batch` (batch Bundles of 20, 4 in flight), `real-direct-plain`, and
 *   `real-quota-utilisation` (a 1,500-create backlog drained at Medplum's default quota),
 *   `real-backfill-throughput` (a backfill of 1,000 legacy records, until drained, against
 *   `real-direct-batch`'s client, × 2; alone with `--only=real-backfill`),
 *   `backfill-quota-utilisation` (1,500 legacy records backfilled at the default quota) and
 *   `live-lag-during-backfill` (p95 mirror lag of live writes while a quota-bound backfill runs
 *   on the same client, against the p95 with no backfill).
 *
 * Needs PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`); every
 * table and schema it creates lives under a per-run prefix and is dropped at the end.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { measureAsyncCreate } from './async-create.ts';
import { measureBackfill } from './backfill-throughput.ts';
import { BenchDatabase } from './bench-database.ts';
import type { Measurement } from './bench-row.ts';
import { CpuMeter } from './cpu-meter.ts';
import { measureDrain } from './drain-throughput.ts';
import { jsonLines, table } from './report.ts';
import { measureRealBackfill } from './real-backfill.ts';
import { measureRealBackfillThroughput } from './real-backfill-throughput.ts';
import { measureRealMedplum, openRealServers } from './real-medplum.ts';
import { measureReconcileCompare } from './reconcile-compare.ts';
import { measureShadowRead } from './shadow-read.ts';
import { measureSyncCreate } from './sync-create.ts';
import { measureTelemetryOverhead } from './telemetry-overhead.ts';

const MEASUREMENTS = {
  async: (db: BenchDatabase) => measureAsyncCreate(db, { samples: 1000, warmup: 100, profileCalls: 200 }),
  drain: (db: BenchDatabase) =>
    measureDrain(db, { entries: 600, concurrency: 8, trials: 3, warmupEntries: 100, remoteLatencyMs: 20 }),
  sync: (db: BenchDatabase) => measureSyncCreate(db, { samples: 500, warmup: 50, profileCalls: 100 }),
  shadow: (db: BenchDatabase) =>
    measureShadowRead(db, { records: 200, samples: 300, warmup: 50, budgetMs: 20, medplumMs: 60 }),
  // Against a real Medplum 5.0.10 whenever one is available (see bench/real-medplum.ts and
  // bench/real-backfill.ts): the quota rows take three minutes each (1,500 writes at 500 a
  // minute), the live-lag row three more (a baseline minute, then a two-minute backfill).
  real: async (db: BenchDatabase) => {
    const servers = await openRealServers();
    try {
      const drain = await measureRealMedplum(db, servers, { entries: 1000, trials: 2, backlog: 1500 });
      const backfill = await measureRealBackfill(db, servers, {
        records: 1500,
        lagRecords: 1000,
        liveEveryMs: 3000,
        baselineWrites: 20,
      });
      const throughput = await measureRealBackfillThroughput(db, servers, { entries: 1000, trials: 2 });
      return {
        rows: [...drain.rows, ...throughput.rows, ...backfill.rows],
        details: [...drain.details, ...throughput.details, ...backfill.details],
      };
    } finally {
      await servers.close();
    }
  },
  // `real-backfill-throughput` alone, on an unlimited server of its own (a few minutes, where
  // `real` takes over ten): for measuring the backfill's speed against a real Medplum.
  'real-backfill': async (db: BenchDatabase) => {
    const servers = await openRealServers({ defaultQuota: false });
    try {
      return await measureRealBackfillThroughput(db, servers, {
        entries: 1000,
        trials: 2,
        warmupEntries: 100,
      });
    } finally {
      await servers.close();
    }
  },
  backfill: (db: BenchDatabase) => measureBackfill(db, { entries: 1000, trials: 3, warmupEntries: 100 }),
  reconcile: (db: BenchDatabase) => measureReconcileCompare(db, { records: 10_000, largeRecords: 100_000 }),
  telemetry: (db: BenchDatabase) =>
    measureTelemetryOverhead(db, {
      entries: 600,
      concurrency: 8,
      trials: 3,
      warmupEntries: 100,
      collectEveryMs: 1000,
    }),
} as const;
type MeasurementName = keyof typeof MEASUREMENTS;

function parseArgs(argv: readonly string[]): { json: boolean; only: MeasurementName[] } {
  let json = false;
  let only = Object.keys(MEASUREMENTS) as MeasurementName[];
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg.startsWith('--only=')) {
      const names = arg.slice('--only='.length).split(',');
      for (const name of names) {
        if (!(name in MEASUREMENTS))
          throw new Error(
            `--only: unknown measurement ${name} (known: ${Object.keys(MEASUREMENTS).join(', ')})`,
          );
      }
      only = names as MeasurementName[];
    } else
      throw new Error(`unknown argument ${arg} (use --json, --only=${Object.keys(MEASUREMENTS).join(',')})`);
  }
  return { json, only };
}

/** How busy the machine is before the bench starts: other sessions share it. */
async function backgroundLoad(): Promise<number> {
  const meter = CpuMeter.start();
  await sleep(1000);
  const reading = meter.stop();
  return reading.machineMs / reading.wallMs;
}

async function main(): Promise<void> {
  const { json, only } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const load = await backgroundLoad();
  const db = await BenchDatabase.open();
  const dropOnSignal = (): void => {
    void db.dropAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', dropOnSignal);
  const results: Measurement[] = [];
  try {
    for (const name of only) {
      if (!json) process.stderr.write(`measuring ${name}…\n`);
      results.push(await MEASUREMENTS[name](db));
    }
  } finally {
    process.off('SIGINT', dropOnSignal);
    await db.dropAll();
  }
  const rows = results.flatMap((result) => result.rows);
  if (json) {
    for (const line of jsonLines(rows)) console.log(line);
    return;
  }
  const footer = [
    `Ratios compare with a baseline measured in this run, interleaved; absolute figures mean nothing elsewhere.`,
    `Noise: ${os.cpus().length} cores, shared with PostgreSQL, the in-process FHIR server and other sessions ` +
      `(${load.toFixed(2)} cores busy before the bench started); expect ratios to move by 10–20% between runs.`,
    `Node ${process.version}, ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    'Profile:',
    ...results.flatMap((result) => result.details.map((line) => `  ${line}`)),
  ];
  console.log(table(rows, footer));
}

await main();
