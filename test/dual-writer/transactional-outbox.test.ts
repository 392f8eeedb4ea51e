import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  ConflictError,
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

    it('writes a legacy row and its outbox entry in one SQL statement', async () => {
      const statements: string[] = [];
      const counted: SqlClient = {
        query: (text, params) => {
          statements.push(text);
          return sql.query(text, params);
        },
        transaction: (fn) =>
          sql.transaction((tx) => {
            statements.push('BEGIN');
            return fn(tx);
          }),
      };
      const countedStore = await PostgresStore.open({ sql: counted, schema });
      const countedWriter = new DualWriter<Ctx, PostgresTableRow>({
        legacy: new PostgresTableAdapter({
          sql: counted,
          tables: { Patient: { table: 'patients', schema } },
        }),
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings: [clinicPatientMapping(SYSTEM)],
        plan: new CutoverPlan<Ctx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
        store: countedStore,
        mirror: 'async',
      });
      const row = { clinic: 'north', first_name: 'Grace', last_name: 'Hopper' };
      await countedWriter.create('Patient', row, { clinic: 'north' }); // looks the table up
      statements.length = 0;
      const result = await countedWriter.create('Patient', row, { clinic: 'north' });
      expect(statements).toHaveLength(1);
      expect(await store.listOutbox()).toContainEqual(
        expect.objectContaining({ legacyId: result.legacyId, seq: 1, holdUntil: undefined }),
      );
    });

    it('an update journals its entry with the row, bumping a pending one', async () => {
      const created = await writer.create(
        'Patient',
        { clinic: 'north', first_name: 'Mary', last_name: 'Jackson' },
        { clinic: 'north' },
      );
      const updated = await writer.update(
        'Patient',
        created.legacyId,
        { clinic: 'north', first_name: 'Mary', last_name: 'Jackson-Smith' },
        { clinic: 'north' },
      );
      expect(updated.row).toMatchObject({ last_name: 'Jackson-Smith', version: 2 });
      const entry = (await store.listOutbox()).find((e) => e.legacyId === created.legacyId);
      expect(entry).toMatchObject({ id: created.outboxId, seq: 2, kind: 'upsert' });
    });

    it('an update with a stale version changes nothing and journals nothing', async () => {
      const created = await writer.create(
        'Patient',
        { clinic: 'north', first_name: 'Katherine', last_name: 'Johnson' },
        { clinic: 'north' },
      );
      const error = await writer
        .update(
          'Patient',
          created.legacyId,
          { clinic: 'north', first_name: 'Katherine', last_name: 'Goble' },
          { clinic: 'north' },
          { expectedVersion: '7' },
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      const entry = (await store.listOutbox()).find((e) => e.legacyId === created.legacyId);
      expect(entry?.seq).toBe(1);
      expect((await store.listOutbox()).filter((e) => e.legacyId === created.legacyId)).toHaveLength(1);
    });

    it('a delete of a record the table no longer has still journals the delete', async () => {
      const result = await writer.delete('Patient', '987654', { clinic: 'north' });
      expect(result.mirror).toBe('pending');
      const entry = (await store.listOutbox()).find((e) => e.legacyId === '987654');
      expect(entry).toMatchObject({ id: result.outboxId, kind: 'delete', holdUntil: undefined });
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
