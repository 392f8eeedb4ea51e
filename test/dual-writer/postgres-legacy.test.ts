import { PGlite } from '@electric-sql/pglite';
import type { Patient } from '@medplum/fhirtypes';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  MirrorError,
  manualReview,
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

interface Backend {
  readonly name: string;
  open(): Promise<{ sql: SqlClient; table: string; close: () => Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'PGlite',
    open: async () => {
      const db = await PGlite.create();
      return { sql: sqlClientFromPglite(db), table: 'patients', close: () => db.close() };
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
      await pool.query('select 1');
      const table = `dw_writer_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      return {
        sql: sqlClientFromPg(pool),
        table,
        close: async () => {
          await pool.query(`drop table if exists ${table}`);
          await pool.end();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`DualWriter over a PostgresTableAdapter on ${backend.name}`, () => {
    let server: FhirTestServer;
    let sql: SqlClient;
    let table: string;
    let close: () => Promise<void>;
    let writer: DualWriter<Ctx, PostgresTableRow>;
    let plan: CutoverPlan<Ctx>;

    beforeAll(async () => {
      server = await startFhirTestServer();
      ({ sql, table, close } = await backend.open());
      await sql.query(CLINIC_TABLE_SQL(table));
      plan = new CutoverPlan<Ctx>({
        default: 'dual-write',
        units: { south: 'live' },
        unitOf: (ctx) => ctx.clinic,
      });
      writer = new DualWriter<Ctx, PostgresTableRow>({
        legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table } } }),
        medplum: createMedplumClient({ baseUrl: server.baseUrl }),
        mappings: [
          {
            ...clinicPatientMapping(SYSTEM),
            newLegacyId: async () => {
              const { rows } = await sql.query<{ id: string }>(
                `select nextval(pg_get_serial_sequence('${table}', 'id'))::text as id`,
              );
              return rows[0]?.id ?? '';
            },
          },
        ],
        plan,
        resolver: manualReview(),
        retry: { minTimeoutMs: 5, maxTimeoutMs: 20 },
      });
    });
    afterAll(async () => {
      await close();
      await server.close();
    });

    async function copyOf(legacyId: string): Promise<Patient | undefined> {
      const medplum = createMedplumClient({ baseUrl: server.baseUrl });
      const found = await medplum.searchResources(
        'Patient',
        { identifier: `${SYSTEM}|${legacyId}` },
        { cache: 'no-cache' },
      );
      expect(found.length).toBeLessThanOrEqual(1);
      return found[0];
    }

    it('mirrors a row whose id the database assigns, and an update of it', async () => {
      const created = await writer.create(
        'Patient',
        {
          clinic: 'north',
          first_name: 'Ada',
          last_name: 'Lovelace',
          birth_date: '1815-12-10',
          notes: 'desk',
        },
        { clinic: 'north' },
      );
      expect(created.legacyId).toMatch(/^\d+$/);
      expect(await copyOf(created.legacyId)).toMatchObject({
        birthDate: '1815-12-10',
        name: [{ family: 'Lovelace' }],
      });

      const row = created.row ?? {};
      const updated = await writer.update(
        'Patient',
        created.legacyId,
        { ...row, last_name: 'King' },
        { clinic: 'north' },
      );
      expect(updated).toMatchObject({ mirror: 'applied', legacy: { action: 'updated', version: '2' } });
      expect((await copyOf(created.legacyId))?.name?.[0]?.family).toBe('King');
    });

    it('writes Medplum first for a live unit and draws the legacy id from the table sequence', async () => {
      const result = await writer.createResource(
        {
          resourceType: 'Patient',
          name: [{ given: ['Grace'], family: 'Hopper' }],
          managingOrganization: { display: 'south' },
        },
        { clinic: 'south' },
      );
      expect(result.authority).toBe('medplum');
      const { rows } = await sql.query<{ last_name: string; clinic: string }>(
        `select last_name, clinic from ${table} where id = $1`,
        [Number(result.legacyId)],
      );
      expect(rows).toEqual([{ last_name: 'Hopper', clinic: 'south' }]);
    });

    it('a legacy row edited directly in the database since the last sync is a conflict (dead-lettered), not an overwrite', async () => {
      const created = await writer.createResource(
        {
          resourceType: 'Patient',
          name: [{ given: ['Mary'], family: 'Jackson' }],
          managingOrganization: { display: 'south' },
        },
        { clinic: 'south' },
      );
      await sql.query(
        `update ${table} set notes = 'edited on the legacy screen', version = version + 1 where id = $1`,
        [Number(created.legacyId)],
      );
      const patient = created.resource as Patient;
      const error = await writer
        .updateResource({ ...patient, name: [{ given: ['Mary'], family: 'Winston' }] }, { clinic: 'south' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MirrorError);
      expect((error as MirrorError).cause).toMatchObject({ name: 'ReviewRequiredError', side: 'legacy' });
      const { rows } = await sql.query<{ last_name: string }>(
        `select last_name from ${table} where id = $1`,
        [Number(created.legacyId)],
      );
      expect(rows[0]?.last_name).toBe('Jackson');
    });

    it('a row the table refuses is a RejectedError and nothing reaches Medplum', async () => {
      const before = server.faults.stats.byMethod.POST ?? 0;
      const error = await writer
        .create('Patient', { clinic: null, first_name: 'No', last_name: 'Clinic' }, { clinic: 'north' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RejectedError);
      expect(error).toMatchObject({ side: 'legacy', retryable: false });
      expect(server.faults.stats.byMethod.POST ?? 0).toBe(before);
    });
  });
}
