import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type PostgresTableRow,
} from '../src/index.ts';
import { startFhirTestServer } from '../src/testing/index.ts';
import type { BenchDatabase } from './bench-database.ts';
import { compared, type Measurement } from './bench-row.ts';
import { benchMapping, patientRow } from './clinic-patients.ts';
import { interleave } from './interleave.ts';
import { percentile } from './percentile.ts';

/** Records, samples and the latencies of the shadow-read comparison. */
export interface ShadowReadOptions {
  readonly records: number;
  readonly samples: number;
  readonly warmup: number;
  /** The shadow budget the writer is given. */
  readonly budgetMs: number;
  /** How long the FHIR test server takes to answer a GET: a Medplum slower than the budget. */
  readonly medplumMs: number;
}

interface Ctx {
  readonly clinic: string;
}

/**
 * `writer.read` in the `shadow` stage with every read shadowed (sample rate 1) against the same
 * read with shadow reads off (sample rate 0), interleaved, on the same PostgreSQL table and the
 * same HTTP FHIR test server, which is made slower than the budget: the shadow then always runs
 * out of budget, so the added latency is the most the budget allows.
 *
 * @param db - The run's database.
 * @param options - Records, samples, budget and Medplum's latency.
 * @returns `shadow-read-p50`/`-p99` (ratios) and `shadow-read-added-*` (ms, against the budget).
 */
export async function measureShadowRead(db: BenchDatabase, options: ShadowReadOptions): Promise<Measurement> {
  const server = await startFhirTestServer();
  const pool = db.pool(4);
  try {
    const sql = sqlClientFromPg(pool);
    const store = await PostgresStore.open({ sql, schema: db.journalSchema('shadow_read') });
    const { table, schema } = await db.patientsTable();
    const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table, schema } } });
    const medplum = createMedplumClient({ baseUrl: server.baseUrl });
    const writerWith = (sampleRate: number) =>
      new DualWriter<Ctx, PostgresTableRow>({
        legacy,
        medplum,
        mappings: [benchMapping],
        plan: new CutoverPlan<Ctx>({ default: 'shadow', unitOf: (ctx) => ctx.clinic }),
        store,
        divergence: { verifySampleRate: 0, shadowReads: { sampleRate, budgetMs: options.budgetMs } },
      });
    const shadowed = writerWith(1);
    const plain = writerWith(0);
    const ctx: Ctx = { clinic: 'north' };
    for (let n = 1; n <= options.records; n++) await plain.create('Patient', patientRow(n), ctx);
    server.faults.latency(options.medplumMs, { methods: ['GET'] });

    const idOf = (n: number): string => String(1 + (n % options.records));
    const times = await interleave(
      {
        ours: (n) => shadowed.read('Patient', idOf(n), ctx),
        baseline: (n) => plain.read('Patient', idOf(n), ctx),
      },
      { warmup: options.warmup, samples: options.samples, batch: 25 },
    );
    await shadowed.settled();
    const counts = shadowed.divergenceCounts();
    await store.close();

    const added = (p: number) => percentile(times.ours, p) - percentile(times.baseline, p);
    const budget = { target: { op: '<=' as const, ratio: 1 } };
    const setting = `sample 1, budget ${String(options.budgetMs)} ms, Medplum answering in ${String(options.medplumMs)} ms`;
    return {
      rows: [
        compared('shadow-read-p50', 'ms', percentile(times.ours, 50), percentile(times.baseline, 50), {
          note: `writer.read in shadow, ${setting}, vs shadow reads off`,
        }),
        compared('shadow-read-p99', 'ms', percentile(times.ours, 99), percentile(times.baseline, 99)),
        compared('shadow-read-added-p50', 'ms', added(50), options.budgetMs, {
          ...budget,
          note: 'added read latency; baseline = the budget',
        }),
        compared('shadow-read-added-p99', 'ms', added(99), options.budgetMs, budget),
      ],
      details: [
        `shadow reads: ${String(counts.shadowReads)} compared, ${String(counts.divergent)} divergent, ` +
          `${String(counts.skippedPending)} skipped (mirror pending)`,
      ],
    };
  } finally {
    await pool.end();
    await server.close();
  }
}
