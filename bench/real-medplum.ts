import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FetchLike, MedplumClient } from '@medplum/core';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { clinicPatientMapping } from '../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  QuotaPacer,
  createMedplumClient,
  sqlClientFromPg,
  type DrainerOptions,
  type PostgresTableRow,
} from '../src/index.ts';
import {
  boxDatabase,
  findServerBox,
  newBoxProject,
  startBoxServer,
  stopBoxServer,
  type BoxServer,
} from '../test-medplum/server-box.ts';
import type { BenchDatabase } from './bench-database.ts';
import { compared, type BenchRow, type Measurement } from './bench-row.ts';
import { patientRow } from './clinic-patients.ts';
import { eachLimited } from './each-limited.ts';

/** Where a Medplum server is and the client application to log in as. */
export interface ServerAccess {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * The real Medplum servers of a bench run: one with unlimited quotas for throughput, one with
 * Medplum's default quota (50,000 points a minute per user) for its utilisation.
 */
export interface RealServers {
  readonly unlimited: ServerAccess | undefined;
  readonly defaultQuota: ServerAccess | undefined;
  /** Why rows are missing, when some are. */
  readonly missing: string | undefined;
  /**
   * A new project with a client application of its own on a server (so a quota window of its
   * own), when the servers came from the box; `undefined` for servers given by the environment
   * (their project's client is used, whatever its window holds).
   */
  readonly newProject: ((server: ServerAccess) => Promise<ServerAccess>) | undefined;
  close(): Promise<void>;
}

/**
 * Finds the servers: `MEDPLUM_BASE_URL` (unlimited quotas expected) and
 * `MEDPLUM_DEFAULT_QUOTA_BASE_URL` (each with `_CLIENT_ID` and `_CLIENT_SECRET`), else both
 * started from the Medplum server box and stopped (databases dropped) by `close`.
 *
 * @param options - `defaultQuota: false` starts no default-quota server from the box (rows
 *   that need one are then missing).
 * @returns The servers, any of them missing with the reason.
 */
export async function openRealServers(
  options: { readonly defaultQuota?: boolean } = {},
): Promise<RealServers> {
  const given = accessFrom('MEDPLUM');
  if (given !== undefined) {
    const defaultQuota = accessFrom('MEDPLUM_DEFAULT_QUOTA');
    return {
      unlimited: given,
      defaultQuota,
      missing: defaultQuota === undefined ? 'MEDPLUM_DEFAULT_QUOTA_BASE_URL is not set' : undefined,
      newProject: undefined,
      close: () => Promise.resolve(),
    };
  }
  const box = findServerBox();
  if (box === undefined) {
    return {
      unlimited: undefined,
      defaultQuota: undefined,
      missing: 'neither MEDPLUM_BASE_URL nor the Medplum server box is available',
      newProject: undefined,
      close: () => Promise.resolve(),
    };
  }
  // One after the other: two servers starting at once on a fresh machine both create the box's
  // database role, and one fails on the other's.
  const started: BoxServer[] = [];
  try {
    started.push(await startBoxServer(box, boxDatabase('bench'), ['--unlimited']));
    if (options.defaultQuota !== false) started.push(await startBoxServer(box, boxDatabase('benchq'), []));
  } catch (err) {
    await Promise.all(started.map((server) => stopBoxServer(server)));
    throw err;
  }
  const [unlimited, defaultQuota] = started as [BoxServer, BoxServer | undefined];
  return {
    unlimited: boxAccess(unlimited),
    defaultQuota: defaultQuota === undefined ? undefined : boxAccess(defaultQuota),
    missing: defaultQuota === undefined ? 'no default-quota server asked for' : undefined,
    newProject: async (server) => ({
      baseUrl: server.baseUrl,
      ...(await newBoxProject(server.baseUrl, `bench-${randomUUID().slice(0, 8)}`)),
    }),
    close: async () => {
      await Promise.all(started.map((server) => stopBoxServer(server)));
    },
  };
}

function accessFrom(prefix: string): ServerAccess | undefined {
  const baseUrl = process.env[`${prefix}_BASE_URL`];
  const clientId = process.env[`${prefix}_CLIENT_ID`];
  const clientSecret = process.env[`${prefix}_CLIENT_SECRET`];
  if (baseUrl === undefined || baseUrl === '' || clientId === undefined || clientSecret === undefined)
    return undefined;
  return { baseUrl, clientId, clientSecret };
}

function boxAccess(server: BoxServer): ServerAccess {
  const { MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET } = server.variables;
  return { baseUrl: MEDPLUM_BASE_URL!, clientId: MEDPLUM_CLIENT_ID!, clientSecret: MEDPLUM_CLIENT_SECRET! };
}

/** What a trial's requests were answered: statuses, and 429s inside batch answers. */
export class AnswerCount {
  readonly statuses = new Map<number, number>();
  requests = 0;
  /** Writes sent: plain requests and batch entries. */
  writes = 0;
  /** Writes answered 429: requests and batch entries. */
  throttled = 0;

  readonly fetch: FetchLike = async (url, options) => {
    const init = options as RequestInit | undefined;
    const response = await fetch(url, init);
    this.requests += 1;
    this.statuses.set(response.status, (this.statuses.get(response.status) ?? 0) + 1);
    const method = init?.method ?? 'GET';
    if (method === 'GET') return response;
    const body = typeof init?.body === 'string' ? init.body : '';
    const isBatch = body.includes('"type":"batch"');
    if (!isBatch) {
      this.writes += 1;
      if (response.status === 429) this.throttled += 1;
      return response;
    }
    this.writes += (body.match(/"request":/g) ?? []).length;
    if (response.status === 429) this.throttled += (body.match(/"request":/g) ?? []).length;
    else if (response.ok) {
      const answer = (await response.clone().json()) as Bundle;
      this.throttled += (answer.entry ?? []).filter(
        (e) => e.response?.status.startsWith('429') === true,
      ).length;
    }
    return response;
  };
}

export async function loggedIn(server: ServerAccess, fetchFn: FetchLike): Promise<MedplumClient> {
  const client = createMedplumClient({ baseUrl: server.baseUrl, fetch: fetchFn });
  await client.startClientLogin(server.clientId, server.clientSecret);
  return client;
}

/** Patients of a trial, under an identifier system no other trial or run uses. */
function trialPatients(ids: readonly number[]): { system: string; resources: Patient[] } {
  const system = `https://clinic.example.org/bench/${randomUUID()}/patient-id`;
  const mapping = clinicPatientMapping(system);
  return {
    system,
    resources: ids.map((id) => ({
      ...mapping.toFhir(patientRow(id), undefined, {}),
      identifier: [{ system, value: String(id) }],
    })),
  };
}

/** A hand-written client's creates: batch Bundles of `size`, `inFlight` at a time. */
export async function directBatches(
  server: ServerAccess,
  ids: readonly number[],
  size: number,
  inFlight: number,
): Promise<number> {
  const count = new AnswerCount();
  const client = await loggedIn(server, count.fetch);
  const { resources } = trialPatients(ids);
  const bundles: Patient[][] = [];
  for (let i = 0; i < resources.length; i += size) bundles.push(resources.slice(i, i + size));
  const started = performance.now();
  await eachLimited(bundles, inFlight, async (bundle) => {
    const answer = await client.executeBatch(
      {
        resourceType: 'Bundle',
        type: 'batch',
        entry: bundle.map((resource) => ({ resource, request: { method: 'POST' as const, url: 'Patient' } })),
      },
      { maxRetries: 0, cache: 'no-cache' },
    );
    if (answer.entry?.some((e) => e.response?.status.startsWith('201') !== true) !== false)
      throw new Error('a bundled create failed');
  });
  return ids.length / ((performance.now() - started) / 1000);
}

/** A hand-written client's creates: one POST each, `inFlight` at a time. */
export async function directPlain(
  server: ServerAccess,
  ids: readonly number[],
  inFlight: number,
): Promise<number> {
  const count = new AnswerCount();
  const client = await loggedIn(server, count.fetch);
  const { resources } = trialPatients(ids);
  const started = performance.now();
  await eachLimited(resources, inFlight, (resource) => client.createResource(resource, { maxRetries: 0 }));
  return ids.length / ((performance.now() - started) / 1000);
}

interface Ctx {
  readonly clinic: string;
}

/** What a drain of pending creates did. */
interface DrainRun {
  readonly rate: number;
  readonly ms: number;
  readonly count: AnswerCount;
  readonly pacer: QuotaPacer;
}

/**
 * Journals `ids.length` creates (legacy authority, async mirror; untimed), then times
 * `writer.drain()` mirroring them to the server with the given drainer options.
 */
export async function drainRun(
  db: BenchDatabase,
  server: ServerAccess,
  ids: readonly number[],
  drainer: DrainerOptions = {},
): Promise<DrainRun> {
  const count = new AnswerCount();
  const medplum = await loggedIn(server, count.fetch);
  const label = `real_${ids[0]!}`;
  const pool = db.pool(8, `${db.prefix}_${label}`);
  const { system } = trialPatients([]);
  const pacer = new QuotaPacer();
  try {
    const sql = sqlClientFromPg(pool);
    const store = await PostgresStore.open({ sql, schema: db.journalSchema(label) });
    const { table, schema } = await db.patientsTable();
    const writer = new DualWriter<Ctx, PostgresTableRow>({
      legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table, schema } } }),
      medplum,
      mappings: [clinicPatientMapping(system)],
      plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
      store,
      mirror: 'async',
      drainer,
      pacer,
    });
    await eachLimited(ids, 8, (id) => writer.create('Patient', patientRow(id), { clinic: 'north' }));
    const started = performance.now();
    const report = await writer.drain({ timeoutMs: 600_000 });
    const ms = performance.now() - started;
    if (report.applied !== ids.length || report.deadLettered !== 0 || report.timedOut) {
      throw new Error(
        `real drain applied ${report.applied}/${ids.length}, dead-lettered ${report.deadLettered}, timed out: ${report.timedOut}`,
      );
    }
    await store.close();
    return { rate: ids.length / (ms / 1000), ms, count, pacer };
  } finally {
    await pool.end();
  }
}

/** Sizes of the real-server measurement. */
export interface RealMedplumOptions {
  /** Creates per throughput trial. */
  readonly entries: number;
  /** Timed trials of each throughput side (interleaved). */
  readonly trials: number;
  /** Creates of the quota-utilisation backlog. */
  readonly backlog: number;
}

/**
 * `real-direct-batch`, `real-direct-plain`, `real-drain-throughput` and
 * `real-quota-utilisation` against a real Medplum 5.0.10 (see {@link openRealServers}).
 *
 * @param db - The run's database (journal and legacy table).
 * @param servers - The servers.
 * @param options - Sizes.
 * @returns The rows; none for a server that is missing.
 */
export async function measureRealMedplum(
  db: BenchDatabase,
  servers: RealServers,
  options: RealMedplumOptions,
): Promise<Measurement> {
  const rows: BenchRow[] = [];
  const details: string[] = [];
  if (servers.missing !== undefined) details.push(`real Medplum: rows missing: ${servers.missing}`);
  let nextId = 1;
  const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++);
  const { unlimited, defaultQuota } = servers;
  if (unlimited !== undefined) {
    // Warm-up: the server's caches and JIT, the pool, this process's JIT.
    await directBatches(unlimited, ids(100), 20, 4);
    await drainRun(db, unlimited, ids(100));
    const batch: number[] = [];
    const plain: number[] = [];
    const drain: number[] = [];
    for (let t = 0; t < options.trials; t++) {
      batch.push(await directBatches(unlimited, ids(options.entries), 20, 4));
      drain.push((await drainRun(db, unlimited, ids(options.entries))).rate);
      plain.push(await directPlain(unlimited, ids(options.entries), 8));
    }
    const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    rows.push(
      {
        name: 'real-direct-batch',
        value: mean(batch),
        unit: 'creates/s',
        note: `batch Bundles of 20, 4 in flight, ${options.entries} creates × ${options.trials}`,
      },
      compared('real-direct-plain', 'creates/s', mean(plain), mean(batch), {
        note: `POST Patient, 8 in flight, vs real-direct-batch`,
      }),
      compared('real-drain-throughput', 'creates/s', mean(drain), mean(batch), {
        target: { op: '>=', ratio: 0.9 },
        note: `writer.drain() with the default drainer options, ${options.entries} creates × ${options.trials}, vs real-direct-batch`,
      }),
    );
    details.push(
      `real Medplum trials (creates/s): batch ${batch.map((r) => r.toFixed(0)).join(', ')}; drain ${drain.map((r) => r.toFixed(0)).join(', ')}; plain ${plain.map((r) => r.toFixed(0)).join(', ')}`,
    );
  }
  if (defaultQuota !== undefined) {
    // A project of its own (a new client application, so a quota window of its own), as
    // `backfill-quota-utilisation` has: the box project's window may hold what earlier rows
    // or runs spent, which would read as the drain's own waits.
    const server = (await servers.newProject?.(defaultQuota)) ?? defaultQuota;
    const run = await drainRun(db, server, ids(options.backlog));
    // Medplum's default quota: 50,000 points a minute per user, 100 points a write.
    const quotaWritesPerSecond = 50_000 / 100 / 60;
    const share429 = run.count.throttled / Math.max(1, run.count.writes);
    rows.push(
      {
        name: 'real-quota-utilisation',
        value: run.rate / quotaWritesPerSecond,
        unit: 'of quota',
        target: { op: '>=', ratio: 0.95 },
        ratio: run.rate / quotaWritesPerSecond,
        baseline: 1,
        note: `${options.backlog} creates drained in ${(run.ms / 1000).toFixed(0)} s at Medplum's default quota (${quotaWritesPerSecond.toFixed(2)} writes/s)${server === defaultQuota ? " on the given server's project" : ', a project of its own'}; ${(share429 * 100).toFixed(2)}% of writes answered 429 (target <= 1%)`,
      },
      {
        name: 'real-quota-429-share',
        value: share429,
        unit: 'of writes',
        note: `${run.count.throttled} of ${run.count.writes} writes answered 429`,
      },
    );
    const stats = run.pacer.stats();
    details.push(
      `real Medplum quota drain: ${run.count.requests} requests, statuses ${JSON.stringify([...run.count.statuses])}; pacer waited ${stats.waits} times (${(stats.waitedMs / 1000).toFixed(0)} s summed)`,
    );
  }
  return { rows, details };
}
