/**
 * The backfill at a real Medplum's default quota (issue 12): `backfill-quota-utilisation` (how
 * much of the quota's write rate a quota-bound backfill achieves, and its share of 429s) and
 * `live-lag-during-backfill` (the p95 mirror lag of live writes while such a backfill runs on
 * the same client, so the same quota, against the p95 with no backfill).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { clinicPatientMapping } from '../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  QuotaPacer,
  sqlClientFromPg,
  type DualWriteEvent,
  type Job,
  type PostgresTableRow,
} from '../src/index.ts';
import type { BenchDatabase } from './bench-database.ts';
import type { BenchRow, Measurement } from './bench-row.ts';
import { patientRow } from './clinic-patients.ts';
import { eachLimited } from './each-limited.ts';
import { percentile } from './percentile.ts';
import { AnswerCount, loggedIn, type RealServers, type ServerAccess } from './real-medplum.ts';

/** Medplum's default quota: 50,000 points a minute per user, 100 points a write. */
const DEFAULT_QUOTA_WRITES_PER_S = 50_000 / 100 / 60;

interface Ctx {
  readonly clinic: string;
}

/** Live writes made at a steady pace while something else runs. */
interface LiveWrites {
  /** Milliseconds between two live writes' starts. */
  readonly everyMs: number;
}

/** What one trial did. */
export interface BackfillTrial {
  /** The backfill's job, when there was one. */
  readonly job: Job | undefined;
  /** Records backfilled per second, from the job's start to the end of its drain. */
  readonly rate: number;
  readonly ms: number;
  /** From the start until the job was done (every record queued or settled). */
  readonly scanMs: number;
  readonly count: AnswerCount;
  readonly pacer: QuotaPacer;
  /** Mirror lag (ms) of each live write, from its journal entry to its mirror settled. */
  readonly liveLags: readonly number[];
  /** Live writes whose mirror did not apply within the call (left to the drainer). */
  readonly livePending: number;
}

/**
 * One trial on a server: `records` legacy rows seeded (untimed), then a backfill of them to
 * Medplum and a drain (timed), with live writes meanwhile when `live` is given; with
 * `records` 0, only `liveCount` live writes (the baseline with no backfill).
 *
 * @param db - The run's database (journal and legacy table).
 * @param server - The server and client: use a fresh project for a fresh quota window.
 * @param options - Sizes.
 * @returns What the trial did.
 */
export async function backfillTrial(
  db: BenchDatabase,
  server: ServerAccess,
  options: { readonly records: number; readonly live?: LiveWrites; readonly liveCount?: number },
): Promise<BackfillTrial> {
  const count = new AnswerCount();
  const medplum = await loggedIn(server, count.fetch);
  const label = `realbf_${randomUUID().slice(0, 8)}`;
  const pool = db.pool(8, `${db.prefix}_${label}`);
  const system = `https://clinic.example.org/bench/${randomUUID()}/patient-id`;
  const pacer = new QuotaPacer();
  const events: DualWriteEvent[] = [];
  let writer: DualWriter<Ctx, PostgresTableRow> | undefined;
  try {
    const sql = sqlClientFromPg(pool);
    const store = await PostgresStore.open({ sql, schema: db.journalSchema(label) });
    const { table, schema } = await db.patientsTable();
    const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table, schema } } });
    // The records that exist before the migration: written in the legacy system only.
    await eachLimited(
      Array.from({ length: options.records }, (_, i) => i + 1),
      8,
      (id) => legacy.create('Patient', patientRow(id)),
    );
    writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy,
      medplum,
      mappings: [clinicPatientMapping(system)],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store,
      pacer,
      onEvent: (event) => events.push(event),
    });
    const live = new Set<string>();
    let livePending = 0;
    let stopLive = false;
    let nextLive = 1_000_000;
    const liveLoop = async (everyMs: number, max: number): Promise<void> => {
      for (let i = 0; i < max && !stopLive; i++) {
        const started = performance.now();
        const id = nextLive++;
        live.add(String(id));
        const result = await writer!.create('Patient', patientRow(id), { clinic: 'north' });
        if (result.mirror === 'pending') livePending += 1;
        await sleep(Math.max(0, everyMs - (performance.now() - started)));
      }
    };
    const started = performance.now();
    let job: Job | undefined;
    let scanMs = 0;
    if (options.records === 0) {
      await liveLoop(options.live?.everyMs ?? 1000, options.liveCount ?? 30);
    } else {
      const liveRun =
        options.live === undefined
          ? Promise.resolve()
          : liveLoop(options.live.everyMs, Number.POSITIVE_INFINITY);
      try {
        job = await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
        scanMs = performance.now() - started;
        const report = await writer.drain({ timeoutMs: 900_000 });
        if (job.state !== 'done' || report.deadLettered !== 0 || report.timedOut)
          throw new Error(
            `real backfill: job ${job.state}, drain dead-lettered ${report.deadLettered}, timed out: ${report.timedOut}`,
          );
      } finally {
        stopLive = true;
        await liveRun;
      }
    }
    const ms = performance.now() - started;
    // Every live write's mirror settled (those left pending by the drain above included).
    await writer.drain({ timeoutMs: 300_000 });
    // A live write's first settled mirror: a mirror left pending by its call may settle again.
    const lagOf = new Map<string, number>();
    for (const event of events) {
      if (event.type !== 'mirror-settled' || event.lagMs === undefined) continue;
      if (live.has(event.legacyId) && !lagOf.has(event.legacyId)) lagOf.set(event.legacyId, event.lagMs);
    }
    const liveLags = [...lagOf.values()];
    if (liveLags.length !== live.size)
      throw new Error(`real backfill: ${liveLags.length} of ${live.size} live mirrors settled`);
    await writer.stop();
    writer = undefined;
    await store.close();
    return { job, rate: options.records / (ms / 1000), ms, scanMs, count, pacer, liveLags, livePending };
  } finally {
    await writer?.stop();
    await pool.end();
  }
}

/** Sizes of the backfill measurement. */
export interface RealBackfillOptions {
  /** Records of the utilisation backfill (no live writes). */
  readonly records: number;
  /** Records of the backfill live writes run beside (quota-bound: more than a window's worth). */
  readonly lagRecords: number;
  /** Milliseconds between live writes. */
  readonly liveEveryMs: number;
  /** Live writes of the baseline with no backfill. */
  readonly baselineWrites: number;
}

/**
 * `backfill-quota-utilisation` and `live-lag-during-backfill` against the default-quota server,
 * each trial on a project of its own when the servers came from the box (a fresh quota window).
 *
 * @param db - The run's database.
 * @param servers - The servers.
 * @param options - Sizes.
 * @returns The rows; none without a default-quota server.
 */
export async function measureRealBackfill(
  db: BenchDatabase,
  servers: RealServers,
  options: RealBackfillOptions,
): Promise<Measurement> {
  const server = servers.defaultQuota;
  if (server === undefined)
    return { rows: [], details: [`real Medplum backfill: rows missing: ${servers.missing ?? 'no server'}`] };
  const fresh = (): Promise<ServerAccess> => servers.newProject?.(server) ?? Promise.resolve(server);
  const rows: BenchRow[] = [];
  const details: string[] = [];

  const run = await backfillTrial(db, await fresh(), { records: options.records });
  const share429 = run.count.throttled / Math.max(1, run.count.writes);
  const request429 = (run.count.statuses.get(429) ?? 0) / Math.max(1, run.count.requests);
  rows.push(
    {
      name: 'backfill-quota-utilisation',
      value: run.rate / DEFAULT_QUOTA_WRITES_PER_S,
      unit: 'of quota',
      target: { op: '>=', ratio: 0.95 },
      ratio: run.rate / DEFAULT_QUOTA_WRITES_PER_S,
      baseline: 1,
      note: `${options.records} legacy records backfilled and drained in ${(run.ms / 1000).toFixed(0)} s at Medplum's default quota (${DEFAULT_QUOTA_WRITES_PER_S.toFixed(2)} writes/s); ${(share429 * 100).toFixed(2)}% of writes and ${(request429 * 100).toFixed(2)}% of requests answered 429 (target <= 1%)`,
    },
    {
      name: 'backfill-quota-429-share',
      value: share429,
      unit: 'of writes',
      note: `${run.count.throttled} of ${run.count.writes} writes answered 429; ${run.count.statuses.get(429) ?? 0} of ${run.count.requests} requests`,
    },
  );
  const stats = run.pacer.stats();
  details.push(
    `real Medplum backfill: ${options.records} records in ${(run.ms / 1000).toFixed(1)} s, ${run.count.requests} requests (${run.count.writes} writes), statuses ${JSON.stringify([...run.count.statuses])}; pacer waited ${stats.waits} times (${(stats.waitedMs / 1000).toFixed(0)} s summed); job counts ${JSON.stringify(run.job?.counts)}`,
  );

  const baseline = await backfillTrial(db, await fresh(), {
    records: 0,
    live: { everyMs: options.liveEveryMs },
    liveCount: options.baselineWrites,
  });
  const during = await backfillTrial(db, await fresh(), {
    records: options.lagRecords,
    live: { everyMs: options.liveEveryMs },
  });
  const p95 = percentile(during.liveLags, 95);
  const p95Baseline = percentile(baseline.liveLags, 95);
  rows.push({
    name: 'live-lag-during-backfill',
    value: p95,
    unit: 'ms',
    baseline: p95Baseline,
    ratio: p95 / p95Baseline,
    target: { op: '<=', ratio: 2 },
    note: `p95 mirror lag of ${during.liveLags.length} live writes (one every ${options.liveEveryMs} ms, sync mirror) while ${options.lagRecords} records backfill on the same client at the default quota (${(during.ms / 1000).toFixed(0)} s), vs ${baseline.liveLags.length} with no backfill`,
  });
  const quantiles = (lags: readonly number[]): string =>
    `p50 ${percentile(lags, 50).toFixed(0)}, p95 ${percentile(lags, 95).toFixed(0)}, max ${Math.max(...lags).toFixed(0)} ms`;
  details.push(
    `real Medplum live lag: no backfill ${quantiles(baseline.liveLags)}; during the backfill ${quantiles(during.liveLags)}, ${during.livePending} of ${during.liveLags.length} left pending by their call; backfill ${(during.rate / DEFAULT_QUOTA_WRITES_PER_S).toFixed(2)} of the quota, ${during.count.throttled} of ${during.count.writes} writes answered 429`,
  );
  return { rows, details };
}
