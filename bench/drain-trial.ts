import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type DualWriterOptions,
  type PostgresTableRow,
} from '../src/index.ts';
import { startFhirTestServer } from '../src/testing/index.ts';
import type { BenchDatabase } from './bench-database.ts';
import { BENCH_SYSTEM, benchMapping, patientResource, patientRow } from './clinic-patients.ts';
import { CpuMeter, type CpuReading } from './cpu-meter.ts';
import { eachLimited } from './each-limited.ts';
import { FetchMeter } from './fetch-meter.ts';
import { mergeKinds, type KindTally } from './kind-tally.ts';
import { SqlMeter, TRANSACTION_SIDE, journalOrLegacy, type SqlTally } from './sql-meter.ts';

/** One timed run of writing N records to a fresh FHIR test server, by the drainer or directly. */
export interface DrainTrial {
  readonly entries: number;
  /** Wall time of the timed part. */
  readonly ms: number;
  /** From the start to the last entry applied (equal to `ms` for direct writes). */
  readonly busyMs: number;
  readonly httpRequests: number;
  /** Time requests spent waiting for their response, summed. */
  readonly httpMs: number;
  /** HTTP requests by method and status. */
  readonly http: KindTally;
  /** SQL by statement kind (journal and legacy). */
  readonly sql: KindTally;
  readonly journal: SqlTally;
  readonly legacy: SqlTally;
  /** BEGIN and COMMIT. */
  readonly transactions: SqlTally;
  readonly cpu: CpuReading;
}

/** A fresh FHIR test server with a latency (changeable while it runs), and how to close it. */
export interface SourcedServer {
  readonly baseUrl: string;
  setLatency(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Where trials get their servers: in this process (the default) or another. */
export type ServerSource = (latencyMs: number) => Promise<SourcedServer>;

/** A server in this process, sharing its event loop with the code under test. */
export const inProcess: ServerSource = async (latencyMs) => {
  const server = await startFhirTestServer();
  server.faults.latency(latencyMs);
  return {
    baseUrl: server.baseUrl,
    setLatency: (ms) => {
      server.faults.latency(ms);
      return Promise.resolve();
    },
    close: () => server.close(),
  };
};

/** How a direct trial creates each record. */
export type DirectWrite = 'plain' | 'conditional' | 'search-then-create' | 'bundled';

interface Ctx {
  readonly clinic: string;
}

/**
 * Writes the rows with `writer.create` in async mode (untimed: legacy rows and outbox entries),
 * then times `writer.drain()` with `concurrency` workers mirroring them to a fresh server.
 *
 * @param db - The run's database.
 * @param ids - The legacy ids of the records.
 * @param concurrency - The drainer's concurrency.
 * @param latencyMs - Delay the server adds to every request (a Medplum across a network).
 * @param servers - Where the server runs.
 * @param telemetry - The writer's `telemetry` option (default: the global providers, no-ops
 *   without an SDK).
 * @returns The trial; it fails unless every entry was applied and linked.
 */
export async function drainTrial(
  db: BenchDatabase,
  ids: readonly number[],
  concurrency: number,
  latencyMs = 0,
  servers: ServerSource = inProcess,
  telemetry?: DualWriterOptions<Ctx, PostgresTableRow>['telemetry'],
): Promise<DrainTrial> {
  const server = await servers(0);
  const http = new FetchMeter();
  const label = `drain_${ids[0]!}`;
  const applicationName = `${db.prefix}_${label}`;
  const pool = db.pool(concurrency + 2, applicationName);
  try {
    const journalSchema = db.journalSchema(label);
    const meter = new SqlMeter(sqlClientFromPg(pool), journalOrLegacy(journalSchema));
    const store = await PostgresStore.open({ sql: meter.client, schema: journalSchema });
    const { table, schema } = await db.patientsTable();
    let lastApplied = 0;
    const writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy: new PostgresTableAdapter({ sql: meter.client, tables: { Patient: { table, schema } } }),
      medplum: createMedplumClient({ baseUrl: server.baseUrl, fetch: http.fetch }),
      mappings: [benchMapping],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store,
      mirror: 'async',
      drainer: { concurrency },
      ...(telemetry === undefined ? {} : { telemetry }),
      onEvent: (event) => {
        if (event.type === 'drained') lastApplied = performance.now();
      },
    });
    const ctx: Ctx = { clinic: 'north' };
    await eachLimited(ids, concurrency, (id) => writer.create('Patient', patientRow(id), ctx));
    meter.reset();
    http.reset();
    await server.setLatency(latencyMs);

    const cpu = CpuMeter.start();
    const started = performance.now();
    const report = await writer.drain({ timeoutMs: 120_000 });
    const ms = performance.now() - started;
    const reading = cpu.stop(await backendPids(pool, applicationName));

    if (report.applied !== ids.length || report.deadLettered !== 0 || report.timedOut) {
      throw new Error(
        `drain applied ${report.applied}/${ids.length}, dead-lettered ${report.deadLettered}, timed out: ${report.timedOut}`,
      );
    }
    const links = await pool.query<{ n: number }>(`select count(*)::int as n from "${journalSchema}".links`);
    if (links.rows[0]?.n !== ids.length)
      throw new Error(`expected ${ids.length} links, found ${links.rows[0]?.n}`);
    await store.close();
    return {
      entries: ids.length,
      ms,
      busyMs: lastApplied - started,
      httpRequests: http.requests,
      httpMs: http.ms,
      http: new Map(http.byKind),
      sql: new Map(meter.byKind),
      journal: meter.side('journal'),
      legacy: meter.side('legacy'),
      transactions: meter.side(TRANSACTION_SIDE),
      cpu: reading,
    };
  } finally {
    await pool.end();
    await server.close();
  }
}

/**
 * Times creating the same records directly with a `MedplumClient` built like the writer's, at
 * the same concurrency, on a fresh server.
 *
 * @param ids - The legacy ids of the records.
 * @param concurrency - Requests in flight.
 * @param write - `plain` (`createResource`: the baseline), `conditional`
 *   (`createResourceIfNoneExist` on the identifier), `search-then-create`, or `bundled`
 *   (`executeBatch` of `concurrency` creates at a time: as many writes in flight, one request).
 * @param latencyMs - Delay the server adds to every request (a Medplum across a network).
 * @param servers - Where the server runs.
 * @param bundling - For `bundled`: creates per Bundle (default `concurrency`) and Bundles in
 *   flight (default 1).
 * @returns The trial.
 */
export async function directTrial(
  ids: readonly number[],
  concurrency: number,
  write: DirectWrite,
  latencyMs = 0,
  servers: ServerSource = inProcess,
  bundling: { readonly size: number; readonly inFlight: number } = { size: concurrency, inFlight: 1 },
): Promise<DrainTrial> {
  const server = await servers(latencyMs);
  const http = new FetchMeter();
  try {
    const medplum = createMedplumClient({ baseUrl: server.baseUrl, fetch: http.fetch });
    const resources = ids.map((id) => patientResource(patientRow(id)));
    const cpu = CpuMeter.start();
    const started = performance.now();
    if (write === 'bundled') {
      const bundles: (typeof resources)[] = [];
      for (let i = 0; i < resources.length; i += bundling.size)
        bundles.push(resources.slice(i, i + bundling.size));
      await eachLimited(bundles, bundling.inFlight, async (bundle) => {
        const entry = bundle.map((resource) => ({
          resource,
          request: { method: 'POST' as const, url: 'Patient' },
        }));
        const answer = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry });
        if (answer.entry?.some((e) => e.response?.status.startsWith('201') !== true) !== false)
          throw new Error('a bundled create failed');
      });
    }
    await eachLimited(write === 'bundled' ? [] : resources, concurrency, async (resource) => {
      const identifier = `${BENCH_SYSTEM}|${resource.identifier![0]!.value!}`;
      if (write === 'plain') await medplum.createResource(resource);
      else if (write === 'conditional') {
        await medplum.createResourceIfNoneExist(resource, `identifier=${encodeURIComponent(identifier)}`);
      } else {
        const found = await medplum.searchResources(
          'Patient',
          { identifier, _count: '2' },
          { cache: 'no-cache' },
        );
        if (found.length > 0) throw new Error('the record exists already');
        await medplum.createResource(resource);
      }
    });
    const ms = performance.now() - started;
    // No PostgreSQL on this side: any postgres CPU meanwhile is another session's.
    const reading = cpu.stop([]);
    const none: SqlTally = { roundTrips: 0, ms: 0 };
    return {
      entries: ids.length,
      ms,
      busyMs: ms,
      httpRequests: http.requests,
      httpMs: http.ms,
      http: new Map(http.byKind),
      sql: new Map(),
      journal: none,
      legacy: none,
      transactions: none,
      cpu: reading,
    };
  } finally {
    await server.close();
  }
}

/**
 * Sums trials of one side.
 *
 * @param trials - The trials.
 * @returns One trial holding the sums (CPU figures summed too; loop delay averaged).
 */
export function sumTrials(trials: readonly DrainTrial[]): DrainTrial {
  const http: KindTally = new Map();
  const sql: KindTally = new Map();
  const add = (key: (t: DrainTrial) => number): number => trials.reduce((sum, t) => sum + key(t), 0);
  const tally = (side: 'journal' | 'legacy' | 'transactions'): SqlTally => ({
    roundTrips: add((t) => t[side].roundTrips),
    ms: add((t) => t[side].ms),
  });
  for (const t of trials) {
    mergeKinds(http, t.http);
    mergeKinds(sql, t.sql);
  }
  return {
    entries: add((t) => t.entries),
    ms: add((t) => t.ms),
    busyMs: add((t) => t.busyMs),
    httpRequests: add((t) => t.httpRequests),
    httpMs: add((t) => t.httpMs),
    http,
    sql,
    journal: tally('journal'),
    legacy: tally('legacy'),
    transactions: tally('transactions'),
    cpu: {
      wallMs: add((t) => t.cpu.wallMs),
      processMs: add((t) => t.cpu.processMs),
      machineMs: add((t) => t.cpu.machineMs),
      postgresMs: add((t) => t.cpu.postgresMs),
      cores: trials[0]?.cpu.cores ?? Number.NaN,
      loopDelayMeanMs: add((t) => t.cpu.loopDelayMeanMs) / trials.length,
      loopDelayP99Ms: Math.max(...trials.map((t) => t.cpu.loopDelayP99Ms)),
    },
  };
}

/** The server processes of a pool's connections, found by the pool's application name. */
async function backendPids(pool: pg.Pool, applicationName: string): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    'select pid from pg_catalog.pg_stat_activity where application_name = $1',
    [applicationName],
  );
  return rows.map((row) => row.pid);
}
