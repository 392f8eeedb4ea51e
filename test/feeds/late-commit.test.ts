import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  type LegacyAdapter,
} from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, type Ctx } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

/*
 * A legacy transaction that stamps its row, stays open across a feed pass that reads a later
 * transaction's row, and commits afterwards: its row becomes visible behind the feed's cursor.
 * PostgreSQL only: the open transaction needs a connection of its own.
 */
describe('the legacy feed and a transaction that commits after a later one was read', () => {
  let server: FhirTestServer;
  let pool: pg.Pool;
  let schema: string;
  let legacy: LegacyAdapter<PatientRow>;
  let store: PostgresStore;
  let plan: CutoverPlan<Ctx>;
  let writer: DualWriter<Ctx, PatientRow>;
  const medplum = () => createMedplumClient({ baseUrl: server.baseUrl });

  beforeEach(async () => {
    server = await startFhirTestServer();
    pool = new pg.Pool({
      connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      max: 4,
    });
    schema = `dw_late_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.patients (
      id text PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, birth_date date, notes text,
      version integer NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    const sql = sqlClientFromPg(pool);
    legacy = new PostgresTableAdapter({
      sql,
      tables: { Patient: { table: 'patients', schema } },
    }) as unknown as LegacyAdapter<PatientRow>;
    store = await PostgresStore.open({ sql, schema: `${schema}_journal` });
    plan = new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.unit });
    writer = new DualWriter<Ctx, PatientRow>({
      legacy,
      medplum: medplum(),
      mappings: [patientMapping],
      plan,
      store,
    });
  });
  afterEach(async () => {
    await store.close();
    await pool.query(`DROP SCHEMA IF EXISTS ${schema}_journal CASCADE`);
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
    await server.close();
  });

  /** Inserts two patients and lets a pass mirror them, so the feed has a cursor. */
  async function twoPatientsMirrored(feeds: ReturnType<typeof feedsOver>): Promise<void> {
    await pool.query(
      `INSERT INTO ${schema}.patients (id, first_name, last_name) VALUES ('p-1', 'Ada', 'Lovelace'), ('p-2', 'Grace', 'Hopper')`,
    );
    expect(await feeds.pollOnce()).toMatchObject({ queued: 2, errors: 0 });
    await writer.drain();
  }

  /** Updates p-1 in a transaction left open; updates p-2 and commits; returns the open one. */
  async function lateUpdateOfP1(): Promise<pg.PoolClient> {
    const late = await pool.connect();
    await late.query('BEGIN');
    await late.query(
      `UPDATE ${schema}.patients SET last_name = 'Byron', version = version + 1, updated_at = clock_timestamp() WHERE id = 'p-1'`,
    );
    await pool.query(
      `UPDATE ${schema}.patients SET last_name = 'King', version = version + 1, updated_at = clock_timestamp() WHERE id = 'p-2'`,
    );
    return late;
  }

  it('mirrors the late transaction’s change on a later pass', async () => {
    const feeds = feedsOver({ legacy, medplum: medplum(), plan, store });
    await twoPatientsMirrored(feeds);
    const late = await lateUpdateOfP1();
    try {
      // The pass reads p-2's change; p-1's is not visible yet, though stamped earlier.
      expect(await feeds.pollOnce()).toMatchObject({ queued: 1 });
      await writer.drain();
      await late.query('COMMIT');
    } finally {
      late.release();
    }
    expect(await feeds.pollOnce()).toMatchObject({ queued: 1, errors: 0 });
    await writer.drain();
    expect((await medplumCopies(medplum(), 'p-1'))[0]?.name?.[0]?.family).toBe('Byron');
    expect((await medplumCopies(medplum(), 'p-2'))[0]?.name?.[0]?.family).toBe('King');
    // Read again on later passes while in the window, the changes are echoes: nothing is queued.
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0, errors: 0 });
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
  });

  it('misses it without the overlap (legacyOverlapMs: 0), as every version before did', async () => {
    const feeds = feedsOver({ legacy, medplum: medplum(), plan, store }, { legacyOverlapMs: 0 });
    await twoPatientsMirrored(feeds);
    const late = await lateUpdateOfP1();
    try {
      await feeds.pollOnce();
      await late.query('COMMIT');
    } finally {
      late.release();
    }
    expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
    await writer.drain();
    expect((await medplumCopies(medplum(), 'p-1'))[0]?.name?.[0]?.family).toBe('Lovelace');
  });
});
