import { CLINIC_TABLE_SQL, clinicPatientMapping } from '../../examples/clinic-mapping.ts';
import {
  CutoverPlan,
  DualWriter,
  PostgresStore,
  PostgresTableAdapter,
  createMedplumClient,
  type DualWriterOptions,
  type PostgresTableRow,
  type SqlClient,
} from '../../src/index.ts';

/** The context of a clinic's writes: the clinic is the unit. */
export interface ClinicCtx {
  clinic: string;
}

/** Where a clinic writer keeps its data and mirrors to. */
export interface ClinicWriterOptions {
  /** The database of both the legacy table and the journal. */
  readonly sql: SqlClient;
  /** The legacy table, created here. */
  readonly table: string;
  /** The journal's schema. */
  readonly schema: string;
  /** The FHIR server. */
  readonly baseUrl: string;
  /** The identifier system of the legacy ids. */
  readonly system: string;
  /** Options over the defaults (dual-write for every clinic, async mirrors). */
  readonly writer?: Partial<DualWriterOptions<ClinicCtx, PostgresTableRow>>;
}

/**
 * A writer as the PostgreSQL tests use it: the example clinic table (created here) through a
 * `PostgresTableAdapter`, a `PostgresStore` on the same database, and a Medplum client.
 *
 * @param options - Where things are.
 * @returns The writer and its store (the caller closes the store).
 * @example
 * ```ts
 * const { writer, store } = await openClinicWriter({ sql, table, schema, baseUrl, system });
 * ```
 */
export async function openClinicWriter(
  options: ClinicWriterOptions,
): Promise<{ writer: DualWriter<ClinicCtx, PostgresTableRow>; store: PostgresStore }> {
  const { sql, table, schema } = options;
  await sql.query(CLINIC_TABLE_SQL(table));
  const store = await PostgresStore.open({ sql, schema });
  const writer = new DualWriter<ClinicCtx, PostgresTableRow>({
    legacy: new PostgresTableAdapter({ sql, tables: { Patient: { table } } }),
    medplum: createMedplumClient({ baseUrl: options.baseUrl }),
    mappings: [clinicPatientMapping(options.system)],
    plan: new CutoverPlan<ClinicCtx>({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
    store,
    mirror: 'async',
    ...options.writer,
  });
  return { writer, store };
}
