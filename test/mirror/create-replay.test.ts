/**
 * Issue 10 (nothing lost, every disagreement seen) at an unlinked record's create: a worker
 * creates the record's copy on the mirror's target and dies before recording it (no link, the
 * entry still owed). Someone edits that new copy before another worker replays the entry. The
 * replay must tell the dead worker's own create from that edit: the edit is a conflict for the
 * resolver, never silently overwritten. The kill is injected at that instant: from then on
 * nothing the dead worker does reaches the journal or either side.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchLike, MedplumClient } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CutoverPlan,
  DualWriter,
  MemoryStore,
  PostgresStore,
  createMedplumClient,
  manualReview,
  sqlClientFromPg,
  type DrainerOptions,
  type DualWriteEvent,
  type LegacyAdapter,
  type Stage,
  type SyncStore,
} from '../../src/index.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies } from '../harness/writer-fixture.ts';

interface Ctx {
  readonly unit: string;
}

const LEASE_MS = 600;
const drainer: DrainerOptions = {
  leaseMs: LEASE_MS,
  concurrency: 1,
  pollIntervalMs: 5,
  bundle: 1,
  backoff: { minMs: 5, maxMs: 20 },
};
const ada: PatientRow = { id: 'p-1', first_name: 'Ada', last_name: 'Lovelace' };
const north: Ctx = { unit: 'north' };

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `dw_create_replay_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
let pool: pg.Pool;
let schemas = 0;
let server: FhirTestServer | undefined;
const writers: DualWriter<Ctx, PatientRow>[] = [];
beforeAll(() => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
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

/** The journals the promise must hold on: one process's, and one every instance shares. */
const journals: Record<string, () => Promise<SyncStore>> = {
  MemoryStore: () => Promise.resolve(new MemoryStore()),
  PostgresStore: () => {
    schemas += 1;
    return PostgresStore.open({ sql: sqlClientFromPg(pool), schema: `${run}_${schemas}` });
  },
};

/** Once `dead.now`, a process sends nothing more: every call rejects. */
interface Death {
  now: boolean;
}

function killed(): Error {
  return new Error('the process was killed (injected)');
}

/** A journal as a process that may die sees it. */
function dyingStore(real: SyncStore, dead: Death): SyncStore {
  return new Proxy(real, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        dead.now ? Promise.reject(killed()) : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
}

/** A legacy adapter as a process that may die uses it; `after` names the call it dies after. */
function dyingLegacy(
  real: MemoryLegacyAdapter<PatientRow>,
  dead: Death,
  after: keyof LegacyAdapter<PatientRow> | undefined,
): LegacyAdapter<PatientRow> {
  return new Proxy(real, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (dead.now) throw killed();
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (property === after) dead.now = true;
        return result;
      };
    },
  });
}

/** A fetch of a process that may die; it dies once a request of `afterMethod` is answered. */
function dyingFetch(dead: Death, afterMethod: string | undefined): FetchLike {
  const real: FetchLike = globalThis.fetch.bind(globalThis);
  return async (url, options) => {
    if (dead.now) throw killed();
    const response = (await real(url, options)) as Response;
    if ((options as RequestInit | undefined)?.method === afterMethod) dead.now = true;
    return response;
  };
}

/**
 * Writer A, which dies right after it creates the record's copy on `target`, and writer B, over
 * one journal, one legacy system and one Medplum; the record written (by B) with its mirror owed.
 */
async function setUp(journal: () => Promise<SyncStore>, stage: Stage, target: 'medplum' | 'legacy') {
  server = await startFhirTestServer();
  const store = await journal();
  const legacy = new MemoryLegacyAdapter<PatientRow>();
  const plan = new CutoverPlan<Ctx>({ default: stage, unitOf: (ctx) => ctx.unit });
  const dead: Death = { now: false };
  const base = { mappings: [patientMapping], plan, mirror: 'async' as const, resolver: manualReview() };
  const a = new DualWriter<Ctx, PatientRow>({
    ...base,
    store: dyingStore(store, dead),
    legacy: dyingLegacy(legacy, dead, target === 'legacy' ? 'create' : undefined),
    medplum: createMedplumClient({
      baseUrl: server.baseUrl,
      fetch: dyingFetch(dead, target === 'medplum' ? 'POST' : undefined),
    }),
    drainer: { ...drainer, workerId: 'A' },
  });
  const events: DualWriteEvent[] = [];
  const b = new DualWriter<Ctx, PatientRow>({
    ...base,
    store,
    legacy,
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    drainer: { ...drainer, workerId: 'B' },
    onEvent: (event) => events.push(event),
  });
  writers.push(a, b);
  const created = await b.create('Patient', ada, north);
  expect(created.mirror).toBe('pending');
  const direct: MedplumClient = createMedplumClient({ baseUrl: server.baseUrl });
  // A claims the entry, creates the copy, and dies before recording it.
  await a.drain({ timeoutMs: 1_000 }).catch(() => undefined);
  expect(dead.now).toBe(true);
  expect(await b.linkOf('Patient', 'p-1')).toBeUndefined();
  return { b, direct, legacy, events };
}

/** Waits past the dead worker's lease, so that B can claim its entry. */
async function afterLeaseLapses(): Promise<void> {
  await sleep(LEASE_MS + 200);
}

describe.each(Object.entries(journals))('a replayed create on %s', (_name, journal) => {
  it('a Medplum edit of the copy a dead worker created is a conflict on replay, not overwritten', async () => {
    const { b, direct, events } = await setUp(journal, 'dual-write', 'medplum');
    const [copy] = await medplumCopies(direct, 'p-1');
    expect(copy?.name?.[0]?.family).toBe('Lovelace');
    await direct.updateResource<Patient>({
      ...(copy as Patient & { id: string }),
      gender: 'female',
      name: [{ family: 'EditedInMedplum' }],
    });

    await afterLeaseLapses();
    await b.drain({ timeoutMs: 5_000 });

    // The edit was seen: the resolver (manual review) was asked, and the copy left alone.
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'conflict', legacyId: 'p-1', target: 'medplum', resolution: 'manual' }),
    );
    expect(await b.deadLetters()).toMatchObject([
      { legacyId: 'p-1', reason: { name: 'ReviewRequiredError' } },
    ]);
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ gender: 'female', name: [{ family: 'EditedInMedplum' }] });
  });

  it('an untouched copy a dead worker created is adopted on replay: linked, no conflict, no second copy', async () => {
    const { b, direct, events } = await setUp(journal, 'dual-write', 'medplum');
    await afterLeaseLapses();
    expect(await b.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 0 });
    const copies = await medplumCopies(direct, 'p-1');
    expect(copies).toHaveLength(1);
    expect(await b.linkOf('Patient', 'p-1')).toMatchObject({ medplumId: copies[0]?.id });
    expect(events.filter((event) => event.type === 'conflict')).toEqual([]);
  });

  it('a legacy edit of the row a dead worker created is a conflict on replay, not overwritten', async () => {
    const { b, legacy, events } = await setUp(journal, 'live', 'legacy');
    const row = await legacy.read('Patient', 'p-1');
    expect(row?.row.last_name).toBe('Lovelace');
    await legacy.update(
      'Patient',
      'p-1',
      { ...ada, last_name: 'EditedInLegacy' },
      { expectedVersion: row?.version },
    );

    await afterLeaseLapses();
    await b.drain({ timeoutMs: 5_000 });

    expect(events).toContainEqual(
      expect.objectContaining({ type: 'conflict', legacyId: 'p-1', target: 'legacy', resolution: 'manual' }),
    );
    expect(await b.deadLetters()).toMatchObject([
      { legacyId: 'p-1', reason: { name: 'ReviewRequiredError' } },
    ]);
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('EditedInLegacy');
  });

  it('an untouched row a dead worker created is adopted on replay: linked, no conflict', async () => {
    const { b, legacy, events } = await setUp(journal, 'live', 'legacy');
    await afterLeaseLapses();
    expect(await b.drain({ timeoutMs: 5_000 })).toMatchObject({ deadLettered: 0 });
    expect((await legacy.read('Patient', 'p-1'))?.row.last_name).toBe('Lovelace');
    expect(await b.linkOf('Patient', 'p-1')).toMatchObject({ legacyId: 'p-1' });
    expect(events.filter((event) => event.type === 'conflict')).toEqual([]);
  });
});
