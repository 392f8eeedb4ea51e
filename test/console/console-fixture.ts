import pg from 'pg';
import {
  CutoverPlan,
  DualWriter,
  MirrorError,
  Operator,
  PostgresStore,
  createMedplumClient,
  sqlClientFromPg,
  type SqlClient,
} from '../../src/index.ts';
import type { RecordSources } from '../../src/console/record-diff.ts';
import { MemoryLegacyAdapter, startFhirTestServer, type FhirTestServer } from '../../src/testing/index.ts';
import { patientMapping, type PatientRow } from '../harness/patient-fixture.ts';

/** A value no page may show: every patient's family name starts with it. */
export const MARKER = 'Zyxmarker';

interface Ctx {
  unit: string;
}

/** A migration in progress, as the demo leaves one: two units, mirrors, dead letters, jobs. */
export interface ConsoleState {
  readonly server: FhirTestServer;
  readonly store: PostgresStore;
  readonly writer: DualWriter<Ctx, PatientRow>;
  readonly operator: Operator<Ctx, PatientRow>;
  /** Where the console reads a record's two copies. */
  readonly records: RecordSources<PatientRow>;
  /** The legacy system (in memory), to make its next calls fail. */
  readonly legacy: MemoryLegacyAdapter<PatientRow>;
  /** Changes a record's family name in Medplum directly, behind the writer's back. */
  divergeInMedplum(legacyId: string, family: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Builds a demo-like state on PostgreSQL (its own schema) and the HTTP FHIR test server: north
 * in shadow and south in dual-write, patients written in both with their mirrors applied, three
 * mirrors refused by Medplum (400, dead letters), a backfill and a reconciliation of north.
 *
 * @param schema - The journal's schema.
 * @returns The state and its operator.
 */
export async function openConsoleState(schema: string): Promise<ConsoleState> {
  const url = process.env.DATABASE_URL;
  if (url === undefined) throw new Error('the console tests need DATABASE_URL (a PostgreSQL database)');
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const sql: SqlClient = sqlClientFromPg(pool);
  await sql.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  const store = await PostgresStore.open({ sql, schema });
  const server = await startFhirTestServer();
  const plan = new CutoverPlan<Ctx>({
    default: 'dual-write',
    units: { north: 'shadow' },
    unitOf: (ctx) => ctx.unit,
  });
  const legacy = new MemoryLegacyAdapter<PatientRow>();
  const writer = new DualWriter<Ctx, PatientRow>({
    legacy,
    medplum: createMedplumClient({ baseUrl: server.baseUrl }),
    mappings: [patientMapping],
    plan,
    store,
    retry: { retries: 1, minTimeoutMs: 5, maxTimeoutMs: 20 },
  });
  for (const unit of ['north', 'south'])
    for (let i = 0; i < 4; i++)
      await writer.create(
        'Patient',
        { id: `${unit}-${i}`, first_name: 'Ann', last_name: `${MARKER}${i}` },
        { unit },
      );
  server.faults.failNext(3, 400, { methods: ['POST', 'PUT'] });
  for (const [unit, id] of [
    ['north', 'north-9'],
    ['south', 'south-8'],
    ['south', 'south-9'],
  ] as const)
    // Written to legacy; the inline mirror is refused and dead-lettered (a MirrorError says so).
    await writer
      .create('Patient', { id, first_name: 'Bea', last_name: `${MARKER}${id}` }, { unit })
      .catch((err: unknown) => {
        if (!(err instanceof MirrorError)) throw err;
      });
  await writer.drain();
  await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
  await writer.reconcile({ resourceType: 'Patient', unit: 'north' });
  const medplum = createMedplumClient({ baseUrl: server.baseUrl });
  const operator = new Operator<Ctx, PatientRow>({
    store,
    mappings: [patientMapping],
    plan,
    legacy,
    medplum,
  });
  return {
    server,
    store,
    writer,
    operator,
    legacy,
    records: {
      store,
      legacy,
      medplum: createMedplumClient({ baseUrl: server.baseUrl }),
      mappings: [patientMapping],
    },
    divergeInMedplum: async (legacyId, family) => {
      const link = await store.getLink('Patient', legacyId);
      if (link === undefined) throw new Error(`${legacyId} has no link`);
      const direct = createMedplumClient({ baseUrl: server.baseUrl });
      const patient = await direct.readResource('Patient', link.medplumId);
      await direct.updateResource({ ...patient, name: [{ given: ['Ann'], family }] });
    },
    close: async () => {
      await operator.close();
      await writer.stop();
      await server.close();
      await store.close();
      await pool.end();
    },
  };
}
