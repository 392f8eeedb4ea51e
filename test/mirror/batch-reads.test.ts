import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createMedplumClient,
  sqlClientFromPg,
  type DualWriter,
  type DualWriterOptions,
  type PostgresStore,
  type PostgresTableRow,
} from '../../src/index.ts';
import { MedplumSide } from '../../src/sides/medplum-side.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { openClinicWriter, type ClinicCtx } from '../harness/clinic-writer.ts';

const SYSTEM = 'https://clinic.example.org/patient-id';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const north: ClinicCtx = { clinic: 'north' };

let pool: pg.Pool;
const run = `dw_batch_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
let fixtures = 0;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
  await pool.query('select 1');
});

afterAll(async () => {
  for (let i = 1; i <= fixtures; i++) {
    await pool.query(`DROP SCHEMA IF EXISTS "${run}_${i}" CASCADE`);
    await pool.query(`DROP TABLE IF EXISTS ${run}_${i}_patients`);
  }
  await pool.end();
});

/** A clinic writer on a fresh table and journal schema, mirroring to `server`, retries off. */
function openWriter(
  server: FhirTestServer,
  writer: Partial<DualWriterOptions<ClinicCtx, PostgresTableRow>>,
): ReturnType<typeof openClinicWriter> {
  fixtures += 1;
  return openClinicWriter({
    sql: sqlClientFromPg(pool),
    table: `${run}_${fixtures}_patients`,
    schema: `${run}_${fixtures}`,
    baseUrl: server.baseUrl,
    system: SYSTEM,
    writer: { retry: { retries: 0 }, ...writer },
  });
}

describe('a drained batch reads its records at once', () => {
  let server: FhirTestServer;
  let writer: DualWriter<ClinicCtx, PostgresTableRow>;
  let store: PostgresStore;

  beforeEach(async () => {
    server = await startFhirTestServer();
    ({ writer, store } = await openWriter(server, {
      drainer: { concurrency: 4, batchSize: 4, pollIntervalMs: 10, backoff: { minMs: 5, maxMs: 20 } },
    }));
  });

  afterEach(async () => {
    await writer.stop();
    await store.close();
    await server.close();
  });

  async function createRows(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const row = { clinic: 'north', first_name: `F${i}`, last_name: `L${i}` };
      ids.push((await writer.create('Patient', row, north)).legacyId);
    }
    return ids;
  }

  async function copies(legacyId: string): Promise<Patient[]> {
    const client = createMedplumClient({ baseUrl: server.baseUrl });
    return client.searchResources('Patient', { identifier: `${SYSTEM}|${legacyId}` }, { cache: 'no-cache' });
  }

  it('searches once per batch, adopts an orphan, and leaves a duplicate to its own search', async () => {
    const ids = await createRows(12);
    const direct = createMedplumClient({ baseUrl: server.baseUrl });
    // An orphan: a copy created before a crash lost its link. A duplicate: two copies.
    const orphan = await direct.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM, value: ids[3]! }],
      name: [{ family: 'stale' }],
    });
    for (let i = 0; i < 2; i++)
      await direct.createResource<Patient>({
        resourceType: 'Patient',
        identifier: [{ system: SYSTEM, value: ids[7]! }],
      });
    const before = server.faults.stats.byMethod.GET ?? 0;

    const report = await writer.drain({ timeoutMs: 10_000 });

    expect(report).toMatchObject({ applied: 11, deadLettered: 1 });
    const searches = (server.faults.stats.byMethod.GET ?? 0) - before;
    // One search per entry would be 12, and 13 with the duplicate's own. The first claim takes a
    // batch of 4 (every worker is free then), which alone saves 3; later claims take what the
    // workers freed meanwhile.
    expect(searches).toBeLessThanOrEqual(10);
    for (const id of ids.filter((_, i) => i !== 7)) expect(await copies(id)).toHaveLength(1);
    const [adopted] = await copies(ids[3]!);
    expect(adopted?.id).toBe(orphan.id);
    expect(adopted?.name?.[0]?.family).toBe('L3');
    const [dead] = await writer.deadLetters();
    expect(dead).toMatchObject({ legacyId: ids[7], reason: { name: 'RejectedError' } });
    expect(dead?.reason.message).toMatch(/2 resources with the identifier/);
  });

  it('falls back to a search per entry when the batch search fails, and applies every entry once', async () => {
    const ids = await createRows(8);
    server.faults.failNext(2, 503, { methods: ['GET'] });
    const report = await writer.drain({ timeoutMs: 10_000 });
    expect(report).toMatchObject({ applied: 8, deadLettered: 0 });
    for (const id of ids) expect(await copies(id)).toHaveLength(1);
  });
});

describe('MedplumSide.findManyByIdentifier', () => {
  it('groups what one search finds by value, ignoring case, and leaves out values it cannot search', async () => {
    const server = await startFhirTestServer();
    try {
      const client = createMedplumClient({ baseUrl: server.baseUrl });
      const side = new MedplumSide(client);
      const make = (value: string): Promise<Patient> =>
        client.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: SYSTEM, value }] });
      const a = await make('a-1');
      const b1 = await make('b-1');
      const b2 = await make('b-1');
      // One resource carrying two of the values searched for: it could be either record's.
      await client.createResource<Patient>({
        resourceType: 'Patient',
        identifier: [
          { system: SYSTEM, value: 'd-1' },
          { system: SYSTEM, value: 'e-1' },
        ],
      });
      await make('ABC');
      const found = await side.findManyByIdentifier<Patient>('Patient', SYSTEM, [
        'a-1',
        'b-1',
        'c-1',
        'x,y',
        'd-1',
        'e-1',
        'abc',
        'ABC',
      ]);
      expect(found.get('a-1')?.map((p) => p.id)).toEqual([a.id]);
      expect((found.get('b-1') ?? []).map((p) => p.id).sort()).toEqual([b1.id, b2.id].sort());
      expect(found.get('c-1')).toEqual([]);
      // Left out, for their own searches: a value that needs escaping, values one resource
      // matches together, and values that differ only by case.
      expect([...found.keys()].sort()).toEqual(['a-1', 'b-1', 'c-1']);
      expect(await side.findManyByIdentifier('Patient', SYSTEM, [])).toEqual(new Map());
      // More values than one search takes: several searches, one answer.
      const many = Array.from({ length: MedplumSide.SEARCH_VALUES + 5 }, (_, i) => `n-${String(i)}`);
      const before = server.faults.stats.byMethod.GET ?? 0;
      const all = await side.findManyByIdentifier<Patient>('Patient', SYSTEM, [...many, 'a-1']);
      expect((server.faults.stats.byMethod.GET ?? 0) - before).toBe(2);
      expect(all.get('a-1')?.map((p) => p.id)).toEqual([a.id]);
      expect(all.size).toBe(many.length + 1);
    } finally {
      await server.close();
    }
  });
});

describe('a drain sends its writes to Medplum in bundles', () => {
  async function drainTwelve(
    bundle: number | undefined,
    conflictOn?: number,
  ): Promise<{ posts: number; applied: number; conflicts: string[]; families: (string | undefined)[] }> {
    const server = await startFhirTestServer();
    const conflicts: string[] = [];
    const { writer, store } = await openWriter(server, {
      drainer: {
        concurrency: 6,
        batchSize: 6,
        pollIntervalMs: 10,
        ...(bundle === undefined ? {} : { bundle }),
      },
      onEvent: (event) => {
        if (event.type === 'conflict') conflicts.push(event.legacyId);
      },
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const row = { clinic: 'north', first_name: `F${i}`, last_name: `L${i}` };
        ids.push((await writer.create('Patient', row, north)).legacyId);
      }
      const before = server.faults.stats.byMethod.POST ?? 0;
      let report = await writer.drain({ timeoutMs: 10_000 });
      let applied = report.applied;
      const posts = (server.faults.stats.byMethod.POST ?? 0) - before;
      const direct = createMedplumClient({ baseUrl: server.baseUrl });
      const find = async (id: string): Promise<Patient[]> =>
        direct.searchResources('Patient', { identifier: `${SYSTEM}|${id}` }, { cache: 'no-cache' });
      if (conflictOn !== undefined) {
        // Someone edits one record in Medplum; then every record changes in the legacy system.
        const [copy] = await find(ids[conflictOn]!);
        await direct.updateResource({ ...copy!, birthDate: '1999-09-09' });
        for (const [i, id] of ids.entries()) {
          const row = { clinic: 'north', first_name: `F${i}`, last_name: `Changed${i}` };
          await writer.update('Patient', id, row, north);
        }
        report = await writer.drain({ timeoutMs: 10_000 });
        applied = report.applied;
      }
      const families: (string | undefined)[] = [];
      for (const id of ids) {
        const copies = await find(id);
        expect(copies).toHaveLength(1);
        families.push(copies[0]?.name?.[0]?.family);
      }
      expect(report.deadLettered).toBe(0);
      return { posts, applied, conflicts, families };
    } finally {
      await writer.stop();
      await store.close();
      await server.close();
    }
  }

  it('by default: the creates of mirrors running at once go together, each record created once', async () => {
    const { posts, applied } = await drainTwelve(undefined);
    expect(applied).toBe(12);
    // Claims of up to six, their six mirrors reaching their creates together.
    expect(posts).toBeLessThanOrEqual(6);
  });

  it('with bundle 1, one request per write', async () => {
    const { posts, applied } = await drainTwelve(1);
    expect(applied).toBe(12);
    expect(posts).toBe(12);
  });

  it('a conflict in a bundle is its own entry: decided for the authority, the other writes applied', async () => {
    const { applied, conflicts, families } = await drainTwelve(undefined, 5);
    expect(applied).toBe(12);
    expect(conflicts).toHaveLength(1);
    // authorityWins: the legacy state is written over the Medplum edit, as for every other record.
    expect(families).toEqual(Array.from({ length: 12 }, (_, i) => `Changed${i}`));
  });
});
