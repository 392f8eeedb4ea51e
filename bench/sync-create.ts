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
import { startFhirTestServer } from '../src/testing/index.ts';
import type { BenchDatabase } from './bench-database.ts';
import { compared, type Measurement } from './bench-row.ts';
import { benchMapping, patientResource, patientRow } from './clinic-patients.ts';
import { FetchMeter } from './fetch-meter.ts';
import { interleave } from './interleave.ts';
import { percentile } from './percentile.ts';
import { describeKinds } from './kind-tally.ts';
import { SqlMeter, TRANSACTION_SIDE, journalOrLegacy } from './sql-meter.ts';

/** Samples and warm-up of the sync-create comparison. */
export interface SyncCreateOptions {
  readonly samples: number;
  readonly warmup: number;
  /** Sequential calls of each, metered, for the round-trip profile. */
  readonly profileCalls: number;
}

interface Ctx {
  readonly clinic: string;
}

/**
 * `writer.create` in `mirror: 'sync'` mode (legacy authority, the mirror to the in-process HTTP
 * FHIR test server applied inline) against what an application would otherwise do by hand:
 * `adapter.create` then `medplumClient.createResource` of the same resource, one after the
 * other. Both write to the same server and table, interleaved.
 *
 * @param db - The run's database.
 * @param options - Samples and warm-up.
 * @returns `sync-create-p50`, `sync-create-p99` and a round-trip profile.
 */
export async function measureSyncCreate(db: BenchDatabase, options: SyncCreateOptions): Promise<Measurement> {
  const server = await startFhirTestServer();
  const pool = db.pool(4);
  try {
    const journalSchema = db.journalSchema('sync_create');
    // One client for the store and the adapter, as an application on one database has them.
    const meter = new SqlMeter(sqlClientFromPg(pool), journalOrLegacy(journalSchema));
    const http = new FetchMeter();
    const store = await PostgresStore.open({ sql: meter.client, schema: journalSchema });
    const { table, schema } = await db.patientsTable();
    const legacy = new PostgresTableAdapter({ sql: meter.client, tables: { Patient: { table, schema } } });
    const medplum = createMedplumClient({ baseUrl: server.baseUrl, fetch: http.fetch });
    const writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy,
      medplum,
      mappings: [benchMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store,
      mirror: 'sync',
    });
    const ctx: Ctx = { clinic: 'north' };
    const ours = async (n: number): Promise<void> => {
      const result = await writer.create('Patient', patientRow(n), ctx);
      if (result.mirror !== 'applied') throw new Error(`expected an applied mirror, got ${result.mirror}`);
    };
    const baseline = async (n: number): Promise<void> => {
      const row = patientRow(n);
      await legacy.create('Patient', row);
      await medplum.createResource(patientResource(row));
    };

    const times = await interleave(
      { ours, baseline },
      { warmup: options.warmup, samples: options.samples, batch: 25 },
    );

    let next = 10_000_000;
    const profile = async (op: (n: number) => Promise<unknown>) => {
      meter.reset();
      http.reset();
      const started = performance.now();
      for (let i = 0; i < options.profileCalls; i++) await op(next++);
      const elapsed = performance.now() - started;
      const calls = options.profileCalls;
      const split = {
        journal: meter.side('journal').ms,
        legacy: meter.side('legacy').ms,
        'BEGIN/COMMIT': meter.side(TRANSACTION_SIDE).ms,
        http: http.ms,
      };
      const accounted = Object.values(split).reduce((sum, ms) => sum + ms, 0);
      const time = [
        ...Object.entries(split).map(([part, ms]) => `${part} ${(ms / calls).toFixed(2)}`),
        `other ${((elapsed - accounted) / calls).toFixed(2)} ms/call`,
      ].join(', ');
      const statements = describeKinds(meter.byKind, calls);
      const side = (name: string): string => `${name} ${meter.side(name).roundTrips / calls}`;
      return {
        statements,
        time,
        requests: describeKinds(http.byKind, calls),
        httpMs: http.ms / calls,
        roundTrips: meter.total.roundTrips / calls,
        sides: [side('journal'), side('legacy'), side(TRANSACTION_SIDE)].join(' + '),
        http: http.requests / calls,
      };
    };
    const our = await profile(ours);
    const base = await profile(baseline);
    await store.close();

    const rows = [
      compared('sync-create-p50', 'ms', percentile(times.ours, 50), percentile(times.baseline, 50), {
        note: 'writer.create, mirror sync, vs adapter.create + createResource',
      }),
      compared('sync-create-p99', 'ms', percentile(times.ours, 99), percentile(times.baseline, 99)),
      compared('sync-create-sql-round-trips', 'per call', our.roundTrips, base.roundTrips, {
        note: our.sides,
      }),
      compared('sync-create-http-requests', 'per call', our.http, base.http),
      compared('sync-create-http-ms', 'ms/call', our.httpMs, base.httpMs, {
        note: 'time waiting on Medplum',
      }),
    ];
    return {
      rows,
      details: [
        `sync create, ours: SQL statements per call (mean ms each): ${our.statements}`,
        `sync create, baseline: ${base.statements}`,
        `sync create, HTTP requests per call (mean ms each): ours ${our.requests}; baseline ${base.requests}`,
        `sync create, time per call: ours ${our.time}; baseline ${base.time}`,
      ],
    };
  } finally {
    await pool.end();
    await server.close();
  }
}
