import type { BenchDatabase } from './bench-database.ts';
import { compared, type Measurement } from './bench-row.ts';
import { backfillTrial, type BackfillTrial } from './real-backfill.ts';
import { directBatches, type RealServers } from './real-medplum.ts';

/** Sizes of the real-server backfill comparison. */
export interface RealBackfillThroughputOptions {
  /** Pre-existing legacy records per trial. */
  readonly entries: number;
  /** Timed trials of each side (interleaved). */
  readonly trials: number;
  /** Records of an untimed warm-up of each side first (none when absent). */
  readonly warmupEntries?: number | undefined;
}

/**
 * `real-backfill-throughput`: a backfill of pre-existing legacy records to a real Medplum with
 * unlimited quotas, until drained (`real-backfill.ts`'s trial, no live writes), against a
 * hand-written client creating the same number of Patients in batch Bundles of 20, 4 in flight
 * (`real-direct-batch`'s client), trials interleaved in the same run.
 *
 * @param db - The run's database.
 * @param servers - The servers; the row is missing without the unlimited one.
 * @param options - Sizes.
 * @returns The row, and the trials' figures.
 */
export async function measureRealBackfillThroughput(
  db: BenchDatabase,
  servers: RealServers,
  options: RealBackfillThroughputOptions,
): Promise<Measurement> {
  const server = servers.unlimited;
  if (server === undefined)
    return {
      rows: [],
      details: [`real backfill throughput: row missing: ${servers.missing ?? 'no server'}`],
    };
  let nextId = 1;
  const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++);
  const ours: number[] = [];
  const trials: BackfillTrial[] = [];
  const direct: number[] = [];
  if (options.warmupEntries !== undefined && options.warmupEntries > 0) {
    // The server's caches and JIT, and this process's, when nothing ran on the server before.
    await directBatches(server, ids(options.warmupEntries), 20, 4);
    await backfillTrial(db, server, { records: options.warmupEntries });
  }
  for (let t = 0; t < options.trials; t++) {
    if (t % 2 === 0) direct.push(await directBatches(server, ids(options.entries), 20, 4));
    const trial = await backfillTrial(db, server, { records: options.entries });
    trials.push(trial);
    ours.push(trial.rate);
    if (t % 2 === 1) direct.push(await directBatches(server, ids(options.entries), 20, 4));
  }
  const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(0)).join(', ');
  return {
    rows: [
      compared('real-backfill-throughput', 'entries/s', mean(ours), mean(direct), {
        target: { op: '>=', ratio: 0.9 },
        note: `writer.backfill() + drain of ${options.entries} existing rows × ${options.trials}, vs batch Bundles of 20, 4 in flight`,
      }),
    ],
    details: [
      `real Medplum backfill (records/s): ours ${fixed(ours)} (scan and queue ${fixed(trials.map((t) => t.scanMs))} ms of ${fixed(trials.map((t) => t.ms))} ms; ` +
        `${trials.map((t) => (t.count.requests / options.entries).toFixed(2)).join(', ')} requests a record); direct batch 20×4 ${fixed(direct)}`,
    ],
  };
}
