/**
 * Issue 10 §2: a worker must not write after it can no longer prove its lease. The interleaving
 * is injected, not raced for: worker A claims an unlinked record's entry and searches Medplum
 * (nothing there); A then stalls (a long GC pause, a failover) while its renewals fail for
 * longer than the lease; B claims the expired entry, creates and links copy #1; A resumes.
 * Before the fence, A created copy #2 and its completion came back fenced: a silent duplicate.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchLike, MedplumClient } from '@medplum/core';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  createMedplumClient,
  sqlClientFromPg,
  type DrainerOptions,
  type SyncStore,
} from '../../src/index.ts';
import { LeaseKeeper } from '../../src/mirror/lease-keeper.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies } from '../harness/writer-fixture.ts';

interface Ctx {
  readonly unit: string;
}

const LEASE_MS = 1_500;
/** A lease long enough that the steps of one attempt are far apart in it. */
const SLOW_LEASE_MS = 3_000;
const drainer: DrainerOptions = {
  leaseMs: LEASE_MS,
  concurrency: 1,
  pollIntervalMs: 5,
  bundle: 1,
  backoff: { minMs: 5, maxMs: 20 },
};

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_fencing_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
let pool: pg.Pool;
let schemas = 0;
let server: FhirTestServer | undefined;
const writers: DualWriter<Ctx, PatientRow>[] = [];
beforeAll(() => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
});
afterAll(async () => {
  for (let n = 1; n <= schemas; n += 1) await pool.query(`DROP SCHEMA IF EXISTS "${run}_${n}" CASCADE`);
  await pool.end();
});
afterEach(async () => {
  for (const writer of writers.splice(0)) await writer.stop();
  await server?.close();
  server = undefined;
});

/** A journal on a PostgreSQL server, as every instance of a service shares it. */
function openStore(): Promise<PostgresStore> {
  schemas += 1;
  return PostgresStore.open({ sql: sqlClientFromPg(pool), schema: `${run}_${schemas}` });
}

/** A store whose renewals fail while `down` (the journal unreachable from this worker). */
function renewalsFailing(real: SyncStore, journal: { down: boolean }): SyncStore {
  return new Proxy(real, {
    get(target, property) {
      if (property === 'renew' && journal.down)
        return () => Promise.reject(new Error('connect ECONNREFUSED (injected)'));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The legacy row's outbox entry, its Medplum copy, and the writers A and B over one journal. */
async function setUp(
  fetchA: (fetchFn: FetchLike) => FetchLike,
  journalA: { down: boolean },
  optionsA: { readonly leaseMs?: number; readonly requestTimeoutMs?: number } = {},
) {
  server = await startFhirTestServer();
  const store = await openStore();
  const legacy = new MemoryLegacyAdapter<PatientRow>();
  const plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit });
  const base = { legacy, mappings: [patientMapping], plan, mirror: 'async' as const, drainer };
  const realFetch: FetchLike = globalThis.fetch.bind(globalThis);
  const a = new DualWriter<Ctx, PatientRow>({
    ...base,
    store: renewalsFailing(store, journalA),
    medplum: createMedplumClient({ baseUrl: server.baseUrl, fetch: fetchA(realFetch) }),
    drainer: { ...drainer, workerId: 'A', leaseMs: optionsA.leaseMs ?? LEASE_MS },
    requestTimeoutMs: optionsA.requestTimeoutMs,
  });
  const b = new DualWriter<Ctx, PatientRow>({
    ...base,
    store,
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    drainer: { ...drainer, workerId: 'B' },
  });
  writers.push(a, b);
  await b.create('Patient', { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' }, { unit: 'north' });
  const direct: MedplumClient = createMedplumClient({ baseUrl: server.baseUrl });
  return { a, b, direct, store };
}

describe('fencing: a worker that can no longer prove its lease does not write', () => {
  it('A stalls after its search while its renewals fail past the lease; B creates copy #1; A resumes and creates nothing', async () => {
    const journalA = { down: false };
    let releaseA!: () => void;
    const resumed = new Promise<void>((resolve) => (releaseA = resolve));
    let searched!: () => void;
    const stalled = new Promise<void>((resolve) => (searched = resolve));
    // The pause comes after the search's answer arrived: the process stalls, it does not wait on
    // a request, so nothing cancels it.
    const pauseAfterSearch =
      (fetchFn: FetchLike): FetchLike =>
      async (url, options) => {
        const response = (await fetchFn(url, options)) as Response;
        if (!url.includes('identifier=')) return response;
        const body = await response.text();
        journalA.down = true;
        searched();
        await resumed;
        return new Response(body, { status: response.status, headers: response.headers });
      };
    const { a, b, direct, store } = await setUp(pauseAfterSearch, journalA);
    const draining = a.drain({ timeoutMs: 10_000 });
    await stalled;
    // Past the lease, by A's renewals failing, before B claims.
    await sleep(LEASE_MS + 100);
    expect(await b.drain({ timeoutMs: 5_000 })).toMatchObject({ applied: 1, deadLettered: 0 });
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    journalA.down = false;
    releaseA();
    await draining;

    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect((await store.getLink('Patient', 'p-1'))?.medplumId).toBe(copies[0]?.id);
    expect(await store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
  });

  it("A's create is cut off in flight once its renewals stay unconfirmed for half the lease", async () => {
    // Renewals fail from the start; the search answers slowly, so the create starts late in
    // the lease (still proven) and hangs: the lease, not the request's own time limit, ends it.
    const journalA = { down: true };
    let searches = 0;
    let posts = 0;
    let reached = 0;
    let reason: unknown;
    const slowThenHung =
      (fetchFn: FetchLike): FetchLike =>
      async (url, options) => {
        const init = options as RequestInit | undefined;
        if (url.includes('identifier=') && (searches += 1) === 1) await sleep(SLOW_LEASE_MS / 4);
        if (init?.method === 'POST' && (posts += 1) === 1) {
          await new Promise<void>((_resolve, reject) => {
            init.signal?.addEventListener('abort', () => {
              reason = init.signal?.reason;
              journalA.down = false;
              reject(init.signal?.reason as Error);
            });
          });
        }
        if (init?.method === 'POST') reached += 1;
        return (await fetchFn(url, options)) as Response;
      };
    const { a, direct, store } = await setUp(slowThenHung, journalA, {
      leaseMs: SLOW_LEASE_MS,
      requestTimeoutMs: SLOW_LEASE_MS * 0.45,
    });
    expect(await a.drain({ timeoutMs: 10_000 })).toMatchObject({ applied: 1, deadLettered: 0 });
    expect(reason).toMatchObject({ name: 'UnavailableError', retryable: true });
    expect((reason as Error).message).toMatch(/lease .* can no longer be proven/);
    // The hung create never reached Medplum; the next attempt, under a fresh lease, did.
    expect(reached).toBe(1);
    expect(await medplumCopies(direct, 'p-1')).toHaveLength(1);
    expect(await store.outboxCounts()).toEqual({ pending: 0, leased: 0, dead: 0 });
  });
});

describe('LeaseKeeper.fence', () => {
  it('confirms an old lease with the store, and refuses once another worker took the entry', async () => {
    const store = await openStore();
    await store.commit(
      await store.intend(
        { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' },
        0,
      ),
    );
    const [lease] = await store.claim('A', 1, LEASE_MS);
    // Confirmed longer ago than half the lease, still granted: the fence renews it.
    const keeper = new LeaseKeeper(store, lease!, LEASE_MS, Date.now() - LEASE_MS);
    await keeper.fence();
    expect(keeper.signal.aborted).toBe(false);
    await sleep(LEASE_MS + 100);
    // Taken over: the fence must not let A write.
    expect(await store.claim('B', 1, 60_000)).toHaveLength(1);
    const late = new LeaseKeeper(store, lease!, LEASE_MS, Date.now() - LEASE_MS);
    await expect(late.fence()).rejects.toMatchObject({ name: 'UnavailableError', retryable: true });
    expect(late.signal.aborted).toBe(true);
  });
});
