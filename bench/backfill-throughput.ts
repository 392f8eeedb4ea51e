import { performance } from 'node:perf_hooks';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../src/index.ts';
import type { BenchDatabase } from './bench-database.ts';
import { compared, type Measurement } from './bench-row.ts';
import { benchMapping, patientRow } from './clinic-patients.ts';
import { directTrial, inProcess, type ServerSource } from './drain-trial.ts';
import { eachLimited } from './each-limited.ts';
import { FetchMeter } from './fetch-meter.ts';
import { describeKinds, mergeKinds, type KindTally } from './kind-tally.ts';

/** Sizes of the backfill comparison. */
export interface BackfillThroughputOptions {
  /** Pre-existing legacy records per trial. */
  readonly entries: number;
  /** Timed trials of each side (interleaved). */
  readonly trials: number;
  /** Records of the untimed warm-up trial of each side. */
  readonly warmupEntries: number;
}

interface Ctx {
  readonly clinic: string;
}

/** One timed backfill: records per second until every record was linked in Medplum. */
interface BackfillTrial {
  readonly rate: number;
  /** From the start until the job was done (every record queued or settled). */
  readonly scanMs: number;
  readonly ms: number;
  /** The writer's requests (the job's and the drainer's), by method and status. */
  readonly http: KindTally;
}

/**
 * Backfills `ids.length` legacy rows that exist before the writer (inserted through the table
 * adapter, untimed: nothing journaled, nothing linked) to a fresh FHIR test server, the writer
 * started with its background drainer at its defaults (Bundles of 20, 4 in flight) and no
 * feeds: timed from `writer.backfill` until `writer.drain()` leaves every record linked.
 *
 * @param db - The run's database (journal and legacy table).
 * @param ids - The legacy ids.
 * @param servers - Where the FHIR server runs.
 * @returns The trial; it fails unless every record was created once and linked.
 */
export async function backfillTrial(
  db: BenchDatabase,
  ids: readonly number[],
  servers: ServerSource = inProcess,
): Promise<BackfillTrial> {
  const server = await servers(0);
  const http = new FetchMeter();
  const label = `backfill_${ids[0]!}`;
  const pool = db.pool(10, `${db.prefix}_${label}`);
  try {
    const sql = sqlClientFromPg(pool);
    const journalSchema = db.journalSchema(label);
    const store = await PostgresStore.open({ sql, schema: journalSchema });
    const { table, schema } = await db.patientsTable();
    const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table, schema } } });
    await eachLimited(ids, 8, (id) => legacy.create('Patient', patientRow(id)));
    const writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy,
      medplum: createMedplumClient({ baseUrl: server.baseUrl, fetch: http.fetch }),
      mappings: [benchMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store,
      mirror: 'async',
    });
    writer.start({ drainer: true, feeds: false });
    try {
      const started = performance.now();
      const job = await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
      const scanMs = performance.now() - started;
      const report = await writer.drain({ timeoutMs: 300_000 });
      const ms = performance.now() - started;
      if (job.state !== 'done' || job.counts.created !== ids.length || report.timedOut)
        throw new Error(
          `backfill ${job.state} ${JSON.stringify(job.counts)}, drain timed out: ${report.timedOut}`,
        );
      const links = await pool.query<{ n: number }>(
        `select count(*)::int as n from "${journalSchema}".links`,
      );
      if (links.rows[0]?.n !== ids.length)
        throw new Error(`expected ${ids.length} links, found ${links.rows[0]?.n}`);
      return { rate: ids.length / (ms / 1000), scanMs, ms, http: new Map(http.byKind) };
    } finally {
      await writer.stop();
      await store.close();
    }
  } finally {
    await pool.end();
    await server.close();
  }
}

/**
 * `backfill-throughput`: a backfill of pre-existing legacy records to the in-process HTTP FHIR
 * test server (see {@link backfillTrial}) against the best of two direct clients writing the
 * same resources to a fresh server of the same kind in the same run: batch Bundles of 20, 4 in
 * flight (the drainer's shape), and one `createResource` per record, 8 in flight. Trials
 * interleave, each on a fresh server, so every side writes into a repository of the same size.
 *
 * @param db - The run's database.
 * @param options - Sizes.
 * @returns The row, and the trials' figures.
 */
export async function measureBackfill(
  db: BenchDatabase,
  options: BackfillThroughputOptions,
): Promise<Measurement> {
  let nextId = 1;
  const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++);
  const batch = (n: number): ReturnType<typeof directTrial> =>
    directTrial(ids(n), 20, 'bundled', 0, inProcess, { size: 20, inFlight: 4 });
  const plain = (n: number): ReturnType<typeof directTrial> => directTrial(ids(n), 8, 'plain');
  await batch(options.warmupEntries);
  await plain(options.warmupEntries);
  await backfillTrial(db, ids(options.warmupEntries));
  const ours: BackfillTrial[] = [];
  const batched: number[] = [];
  const plained: number[] = [];
  const rateOf = (t: { entries: number; ms: number }): number => t.entries / (t.ms / 1000);
  for (let t = 0; t < options.trials; t++) {
    if (t % 2 === 0) ours.push(await backfillTrial(db, ids(options.entries)));
    batched.push(rateOf(await batch(options.entries)));
    plained.push(rateOf(await plain(options.entries)));
    if (t % 2 === 1) ours.push(await backfillTrial(db, ids(options.entries)));
  }
  const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const direct = Math.max(mean(batched), mean(plained));
  const best = direct === mean(batched) ? 'batch Bundles of 20, 4 in flight' : 'createResource, 8 in flight';
  const http: KindTally = new Map();
  for (const trial of ours) mergeKinds(http, trial.http);
  const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(0)).join(', ');
  return {
    rows: [
      compared('backfill-throughput', 'entries/s', mean(ours.map((t) => t.rate)), direct, {
        target: { op: '>=', ratio: 0.9 },
        note: `writer.backfill() + drain of ${options.entries} existing rows × ${options.trials}, vs the best direct client (${best})`,
      }),
    ],
    details: [
      `backfill (records/s): ours ${fixed(ours.map((t) => t.rate))} (scan and queue ${fixed(ours.map((t) => t.scanMs))} ms of ${fixed(ours.map((t) => t.ms))} ms); ` +
        `direct batch 20×4 ${fixed(batched)}; direct plain ×8 ${fixed(plained)}`,
      `backfill, ours: HTTP requests per record (mean ms each): ${describeKinds(http, options.entries * ours.length)}`,
    ],
  };
}
