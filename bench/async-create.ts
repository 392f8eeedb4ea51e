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
import { compared, type BenchRow, type Measurement } from './bench-row.ts';
import { benchMapping, patientRow } from './clinic-patients.ts';
import { interleave } from './interleave.ts';
import { describeKinds } from './kind-tally.ts';
import { mean, percentile } from './percentile.ts';
import { SqlMeter, TRANSACTION_SIDE, journalOrLegacy } from './sql-meter.ts';

/** Samples and warm-up of the async-create comparison. */
export interface AsyncCreateOptions {
  readonly samples: number;
  readonly warmup: number;
  /** Sequential calls of each, metered, for the round-trip profile. */
  readonly profileCalls: number;
}

interface Ctx {
  readonly clinic: string;
}

const CTX: Ctx = { clinic: 'north' };
const BATCH = 50;

/**
 * `writer.create` in `mirror: 'async'` mode (no drainer running, so the call is the authority
 * write plus its journal entry) against a direct `adapter.create` of the same kind of row, on
 * one PostgreSQL database: the legacy table and the journal's schema side by side, one pool.
 * Rows carry caller-assigned ids, so the writer journals its intent with the legacy write.
 * Calls are sequential: the figures are latencies, not load.
 *
 * Two writers are timed, interleaved with the baseline:
 * - `async-create-*`: store and adapter on one `SqlClient`, as an application on one database
 *   configures them (the writer may then use a transactional outbox);
 * - `async-create-split-*`: the same database through two client objects, as when the journal
 *   and the legacy tables live in different databases (intent first, held, then released).
 *
 * @param db - The run's database.
 * @param options - Samples and warm-up.
 * @returns The rows, and the statements behind each call.
 */
export async function measureAsyncCreate(
  db: BenchDatabase,
  options: AsyncCreateOptions,
): Promise<Measurement> {
  const pool = db.pool(4);
  try {
    const journalSchema = db.journalSchema('async_create');
    const meter = new SqlMeter(sqlClientFromPg(pool), journalOrLegacy(journalSchema));
    const store = await PostgresStore.open({ sql: meter.client, schema: journalSchema });
    const { table, schema } = await db.patientsTable();
    const tables = { Patient: { table, schema } };
    const shared = new PostgresTableAdapter({ sql: meter.client, tables });
    const split = new PostgresTableAdapter({ sql: meter.separateClient(), tables });
    const writer = (legacy: PostgresTableAdapter): DualWriter<Ctx, PostgresTableRow> =>
      new DualWriter<Ctx, PostgresTableRow>({
        legacy,
        // No Medplum request may happen in this mode: a fetch that fails makes one visible.
        medplum: createMedplumClient({
          baseUrl: 'http://127.0.0.1:9/',
          fetch: () => Promise.reject(new Error('async create made an HTTP request')),
        }),
        mappings: [benchMapping],
        plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
        store,
        mirror: 'async',
      });
    const create =
      (w: DualWriter<Ctx, PostgresTableRow>) =>
      async (n: number): Promise<void> => {
        const result = await w.create('Patient', patientRow(n), CTX);
        if (result.mirror !== 'pending') throw new Error(`expected a pending mirror, got ${result.mirror}`);
      };
    const ops = {
      ours: create(writer(shared)),
      split: create(writer(split)),
      baseline: (n: number): Promise<unknown> => shared.create('Patient', patientRow(n)),
    };

    const times = await interleave(ops, { warmup: options.warmup, samples: options.samples, batch: BATCH });

    // The profile: the same calls again, one kind at a time, metered, on fresh ids.
    let next = 10_000_000;
    const profile = async (op: (n: number) => Promise<unknown>) => {
      meter.reset();
      const started = performance.now();
      for (let i = 0; i < options.profileCalls; i++) await op(next++);
      const elapsed = performance.now() - started;
      const calls = options.profileCalls;
      const { roundTrips, ms, transactions } = meter.total;
      const side = (name: string): string => `${name} ${meter.side(name).roundTrips / calls}`;
      return {
        roundTrips: roundTrips / calls,
        split: [side('journal'), side('legacy'), side(TRANSACTION_SIDE)].join(' + '),
        transactions: transactions / calls,
        journalMs: meter.side('journal').ms / calls,
        legacyMs: meter.side('legacy').ms / calls,
        otherMs: (elapsed - ms) / calls,
        statements: describeKinds(meter.byKind, calls),
      };
    };
    const our = await profile(ops.ours);
    const ourSplit = await profile(ops.split);
    const base = await profile(ops.baseline);

    const calls = Math.ceil(options.warmup / BATCH) * BATCH + options.samples + options.profileCalls;
    const pending = (await store.outboxCounts()).pending;
    if (pending !== 2 * calls)
      throw new Error(`expected ${2 * calls} pending outbox entries, found ${pending}`);
    await store.close();

    const p = (sample: number[], q: number): number => percentile(sample, q);
    const rows: BenchRow[] = [
      compared('async-create-p50', 'ms', p(times.ours, 50), p(times.baseline, 50), {
        target: { op: '<=', ratio: 1.2 },
        note: 'writer.create, mirror async, one SqlClient, vs adapter.create',
      }),
      compared('async-create-p99', 'ms', p(times.ours, 99), p(times.baseline, 99)),
      compared('async-create-mean', 'ms', mean(times.ours), mean(times.baseline)),
      compared('async-create-sql-round-trips', 'per call', our.roundTrips, base.roundTrips, {
        note: our.split,
      }),
      compared('async-create-split-p50', 'ms', p(times.split, 50), p(times.baseline, 50), {
        note: 'the same, store and adapter on separate clients',
      }),
      compared('async-create-split-p99', 'ms', p(times.split, 99), p(times.baseline, 99)),
      compared('async-create-split-sql-round-trips', 'per call', ourSplit.roundTrips, base.roundTrips, {
        note: ourSplit.split,
      }),
      {
        name: 'async-create-profile-journal-ms',
        value: our.journalMs,
        unit: 'ms/call',
        note: 'time in journal SQL',
      },
      compared('async-create-profile-legacy-ms', 'ms/call', our.legacyMs, base.legacyMs, {
        note: 'time in legacy SQL',
      }),
      compared('async-create-profile-other-ms', 'ms/call', our.otherMs, base.otherMs, {
        note: 'BEGIN/COMMIT, JS: mapping, locks, event loop',
      }),
      {
        name: 'async-create-samples',
        value: times.ours.length,
        unit: 'calls each',
        note: `+${options.warmup} warm-up`,
      },
    ];
    return {
      rows,
      details: [
        `async create, ours (one client): statements per call (mean ms each): ${our.statements}`,
        `async create, split clients: ${ourSplit.statements}`,
        `async create, baseline: ${base.statements}`,
      ],
    };
  } finally {
    await pool.end();
  }
}
