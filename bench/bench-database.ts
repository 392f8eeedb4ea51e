import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { CLINIC_TABLE_SQL } from '../examples/clinic-mapping.ts';

/**
 * The bench's corner of the PostgreSQL server: every table and journal schema of one run lives
 * under a prefix unique to the run, and {@link BenchDatabase.dropAll} removes them all, so runs
 * never see each other's rows and nothing is left behind.
 */
export class BenchDatabase {
  readonly url: string;
  /** `bench_<random>`: the run's prefix. */
  readonly prefix: string;
  /** The schema holding the run's legacy tables. */
  readonly legacySchema: string;
  readonly #admin: pg.Pool;
  readonly #schemas = new Set<string>();
  #tables = 0;

  private constructor(url: string, admin: pg.Pool) {
    this.url = url;
    this.#admin = admin;
    this.prefix = `bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
    this.legacySchema = `${this.prefix}_legacy`;
  }

  /**
   * Connects and creates the run's legacy schema.
   *
   * @param url - The server, `DATABASE_URL` by default.
   * @returns The run's database.
   */
  static async open(
    url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  ): Promise<BenchDatabase> {
    const admin = new pg.Pool({ connectionString: url, max: 1 });
    try {
      await admin.query('select 1');
    } catch (err) {
      await admin.end();
      throw new Error(`cannot reach PostgreSQL at ${url} (set DATABASE_URL)`, { cause: err });
    }
    const db = new BenchDatabase(url, admin);
    await db.#createSchema(db.legacySchema);
    return db;
  }

  /**
   * A new pool on the server, for one measurement.
   *
   * @param max - Most connections.
   * @param applicationName - Names the connections in `pg_stat_activity` (to find their
   *   server processes).
   * @returns The pool; end it when done.
   */
  pool(max: number, applicationName = this.prefix): pg.Pool {
    return new pg.Pool({ connectionString: this.url, max, application_name: applicationName });
  }

  /**
   * A fresh name for a journal schema (the store creates it on open); dropped by `dropAll`.
   *
   * @param label - What it is for.
   * @returns The schema name.
   */
  journalSchema(label: string): string {
    const schema = `${this.prefix}_${label}`;
    this.#schemas.add(schema);
    return schema;
  }

  /**
   * Creates a fresh clinic `patients` table in the legacy schema.
   *
   * @returns The table's name (unqualified) and schema.
   */
  async patientsTable(): Promise<{ table: string; schema: string }> {
    this.#tables += 1;
    const table = `patients_${this.#tables}`;
    await this.#admin.query(CLINIC_TABLE_SQL(`"${this.legacySchema}".${table}`));
    return { table, schema: this.legacySchema };
  }

  /** Drops every schema of the run and disconnects. */
  async dropAll(): Promise<void> {
    try {
      for (const schema of this.#schemas)
        await this.#admin.query(`drop schema if exists "${schema}" cascade`);
    } finally {
      await this.#admin.end();
    }
  }

  async #createSchema(schema: string): Promise<void> {
    this.#schemas.add(schema);
    await this.#admin.query(`create schema "${schema}"`);
  }
}
