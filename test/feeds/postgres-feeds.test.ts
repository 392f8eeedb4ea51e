import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  sqlClientFromPg,
  sqlClientFromPglite,
  type LegacyAdapter,
  type SqlClient,
} from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';
import { medplumCopies, type Ctx } from '../harness/writer-fixture.ts';
import { feedsOver } from './feeds-fixture.ts';

interface Backend {
  readonly name: string;
  open(): Promise<{ sql: SqlClient; schema: string; close: () => Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    open: async () => {
      const db = await PGlite.create();
      return { sql: sqlClientFromPglite(db), schema: 'public', close: () => db.close() };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const pool = new pg.Pool({
        connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        max: 4,
      });
      const schema = `dw_feeds_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      await pool.query(`CREATE SCHEMA ${schema}`);
      return {
        sql: sqlClientFromPg(pool),
        schema,
        close: async () => {
          await pool.query(`DROP SCHEMA ${schema} CASCADE`);
          await pool.end();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`change feeds over a PostgresTableAdapter with tombstones and a PostgresStore on ${backend.name}`, () => {
    let server: FhirTestServer;
    let db: { sql: SqlClient; schema: string; close: () => Promise<void> };
    let legacy: LegacyAdapter<PatientRow>;
    let store: PostgresStore;
    let writer: DualWriter<Ctx, PatientRow>;
    let plan: CutoverPlan<Ctx>;
    const medplum = () => createMedplumClient({ baseUrl: server.baseUrl });

    beforeEach(async () => {
      server = await startFhirTestServer();
      db = await backend.open();
      await db.sql.query(`CREATE TABLE ${db.schema}.patients (
        id text PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, birth_date date, notes text,
        version integer NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
      const adapter = new PostgresTableAdapter({
        sql: db.sql,
        tables: { Patient: { table: 'patients', schema: db.schema } },
        tombstones: { schema: db.schema },
      });
      await adapter.installTombstones();
      legacy = adapter as unknown as LegacyAdapter<PatientRow>;
      store = await PostgresStore.open({ sql: db.sql, schema: `${db.schema}_journal` });
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
      await db.sql.query(`DROP SCHEMA IF EXISTS ${db.schema}_journal CASCADE`);
      await db.close();
      await server.close();
    });

    const fixture = () => ({ legacy, medplum: medplum(), plan, store });

    it('mirrors rows written and deleted directly in the table (by the legacy application’s own SQL)', async () => {
      const feeds = feedsOver(fixture());
      await db.sql.query(
        `INSERT INTO ${db.schema}.patients (id, first_name, last_name) VALUES ('p-1', 'Ada', 'Lovelace'), ('p-2', 'Grace', 'Hopper')`,
      );
      expect(await feeds.pollOnce()).toMatchObject({ queued: 2, errors: 0 });
      await writer.drain();
      expect(await medplumCopies(medplum(), 'p-1')).toHaveLength(1);
      await db.sql.query(`DELETE FROM ${db.schema}.patients WHERE id = 'p-1'`);
      await db.sql.query(
        `UPDATE ${db.schema}.patients SET last_name = 'King', version = version + 1, updated_at = clock_timestamp() WHERE id = 'p-2'`,
      );
      expect(await feeds.pollOnce()).toMatchObject({ queued: 2, errors: 0 });
      await writer.drain();
      expect(await medplumCopies(medplum(), 'p-1')).toHaveLength(0);
      expect((await medplumCopies(medplum(), 'p-2'))[0]?.name?.[0]?.family).toBe('King');
      for (let pass = 0; pass < 2; pass += 1) {
        expect(await feeds.pollOnce()).toMatchObject({ queued: 0 });
        await writer.drain();
      }
      expect(await store.outboxCounts()).toMatchObject({ pending: 0, leased: 0, dead: 0 });
    });

    it('a new feed on the same store after a pass stopped mid-way applies every change exactly once', async () => {
      for (let i = 1; i <= 7; i += 1) {
        await db.sql.query(
          `INSERT INTO ${db.schema}.patients (id, first_name, last_name) VALUES ($1, 'P', $2)`,
          [`p-${i}`, `F${i}`],
        );
      }
      expect(await feedsOver(fixture(), { pageSize: 3, maxPagesPerPoll: 1 }).pollOnce()).toMatchObject({
        queued: 3,
      });
      const restarted = feedsOver(fixture(), { pageSize: 3 });
      await restarted.pollOnce();
      await writer.drain();
      await restarted.pollOnce();
      await writer.drain();
      for (let i = 1; i <= 7; i += 1) {
        const copies = await medplumCopies(medplum(), `p-${i}`);
        expect(copies).toHaveLength(1);
        expect(copies[0]?.meta?.versionId).toBeDefined();
        expect((await legacy.read('Patient', `p-${i}`))?.version).toBe('1');
      }
      // Each Medplum copy was written once: its history holds one version.
      for (let i = 1; i <= 7; i += 1) {
        const [copy] = await medplumCopies(medplum(), `p-${i}`);
        const history = await medplum().readHistory('Patient', copy?.id ?? '');
        expect(history.entry).toHaveLength(1);
      }
    });
  });
}
