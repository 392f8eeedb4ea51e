import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  RejectedError,
  createMedplumClient,
  sqlClientFromPg,
  sqlClientFromPglite,
  type PostgresTableRow,
  type SqlClient,
} from '../../src/index.ts';
import { startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';

const SYSTEM = 'https://clinic.example.org/patient-id';
interface Ctx {
  clinic: string;
}

const backends = [
  {
    name: 'PGlite',
    open: async (): Promise<{ sql: SqlClient; schema: string; close: () => Promise<void> }> => {
      const db = await PGlite.create();
      return { sql: sqlClientFromPglite(db), schema: 'dualwrite', close: () => db.close() };
    },
  },
  {
    name: 'PostgreSQL',
    open: async (): Promise<{ sql: SqlClient; schema: string; close: () => Promise<void> }> => {
      const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
      const schema = `dw_txo_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      await pool.query(`create schema ${schema}`);
      return {
        sql: sqlClientFromPg(pool),
        schema,
        close: async () => {
          await pool.query(`drop schema ${schema} cascade`);
          await pool.end();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`a transactional outbox on ${backend.name}: legacy table and journal in one database`, () => {
    let server: FhirTestServer;
    let sql: SqlClient;
    let schema: string;
    let close: () => Promise<void>;
    let store: PostgresStore;
    let writer: DualWriter<Ctx, PostgresTableRow>;
    let table: string;

    beforeAll(async () => {
      server = await startFhirTestServer();
      ({ sql, schema, close } = await backend.open());
      table = `${schema}.patients`;
      if (backend.name === 'PGlite') await sql.query(`create schema ${schema}`);
      await sql.query(CLINIC_TABLE_SQL(table));
      store = await PostgresStore.open({ sql, schema });
      writer = new DualWriter<Ctx, PostgresTableRow>({
        legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients', schema } } }),
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings: [clinicPatientMapping(SYSTEM)],
        plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
        store,
        mirror: 'async',
        drainer: { pollIntervalMs: 10 },
      });
    });
    afterAll(async () => {
      await store.close();
      await close();
      await server.close();
    });

    it('commits the legacy row and its outbox entry together, with the id the table assigned and no hold', async () => {
      const result = await writer.create(
        'Patient',
        { clinic: 'north', first_name: 'Ada', last_name: 'Lovelace' },
        { clinic: 'north' },
      );
      expect(result).toMatchObject({ mirror: 'pending', legacy: { action: 'created' } });
      const entries = await store.listOutbox();
      expect(entries).toMatchObject([{ legacyId: result.legacyId, target: 'medplum', holdUntil: undefined }]);
      await writer.drain({ timeoutMs: 10_000 });
      expect(await writer.linkOf('Patient', result.legacyId)).toBeDefined();
    });

    it('a legacy write the table refuses leaves no outbox entry behind', async () => {
      const before = (await store.listOutbox()).length;
      const error = await writer
        .create('Patient', { clinic: null, first_name: 'No', last_name: 'Clinic' }, { clinic: 'north' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RejectedError);
      expect(await store.listOutbox()).toHaveLength(before);
    });
  });
}
