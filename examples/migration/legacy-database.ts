/**
 * The clinic's legacy database, whichever SQL database it runs on. The demo's tables are
 * declared once ({@link ClinicTable}); a {@link ClinicDialect} says how one database creates
 * them, stamps a write, reads a column as text and wires the library's adapter and journal.
 * Everything the legacy application's own screens and the auditor do goes through
 * {@link LegacyDatabase}, in SQL both dialects share.
 *
 * Which database: `LEGACY_DATABASE_URL` (`mysql://…` for MariaDB, `postgres://…` for a
 * PostgreSQL server), else `DATABASE_URL` (PostgreSQL), else PGlite in process. The journal is
 * always PostgreSQL: in the legacy database itself when that is PostgreSQL (each legacy write
 * and its outbox entry then commit in one transaction), else at `DATABASE_URL` or in PGlite
 * (two databases: the writer journals each intent before the legacy write instead).
 */
import type { LegacyAdapter, PostgresStore } from '../../src/index.ts';

/**
 * A legacy row as the demo's adapters read and write it: column name to value (an id or a
 * number may come back as a number, a date as `YYYY-MM-DD`).
 */
export type ClinicRow = Record<string, unknown>;

/** What a column holds, in terms both dialects can map to a type of their own. */
export type ClinicColumnKind = 'text' | 'integer' | 'date';

/** One column of a clinic table. */
export interface ClinicColumn {
  readonly kind: ClinicColumnKind;
  /** @default false */
  readonly nullable?: boolean;
}

/**
 * A table of the legacy clinic, declared once for every dialect. Each dialect adds the columns
 * the legacy application maintains: `id` (an integer the database assigns, which can also be
 * reserved ahead), `version` (an integer, 1 on insert, +1 on every update) and `updated_at`
 * (when the row was last written, by a clock that orders commits).
 */
export interface ClinicTable {
  /** The table's name, unqualified (each dialect places it in the run's own namespace). */
  readonly name: string;
  /** The FHIR resource type its rows are mirrored as. */
  readonly resourceType: string;
  /** The data columns, in order. */
  readonly columns: Readonly<Record<string, ClinicColumn>>;
}

/** A value the demo's own SQL binds. */
export type ClinicValue = string | number | null;

/** What one SQL database does differently, for the clinic's tables and its own statements. */
export interface ClinicDialect {
  /** Where the legacy database is, for the demo's first lines. */
  readonly where: string;
  /** Where the journal is. */
  readonly journalWhere: string;
  /** The library's adapter over the clinic's tables, tombstones installed for deletes. */
  readonly adapter: LegacyAdapter<ClinicRow>;
  /** The journal (links, outbox, plan, events). */
  readonly store: PostgresStore;
  /**
   * A table's name as a statement writes it.
   *
   * @param name - The {@link ClinicTable.name}.
   */
  table(name: string): string;
  /**
   * The placeholder of the `n`th bound value (from 1).
   *
   * @param n - Its position.
   */
  param(n: number): string;
  /**
   * A column read as text (`'12'`, `'1950-01-10'`).
   *
   * @param column - The column.
   */
  text(column: string): string;
  /** The clock the legacy application stamps `updated_at` with: one that orders commits. */
  readonly clock: string;
  /**
   * Runs one statement.
   *
   * @param sql - The statement, with the dialect's placeholders.
   * @param values - The bound values.
   * @returns The rows it answers (none for most writes).
   */
  query(sql: string, values: readonly ClinicValue[]): Promise<Record<string, unknown>[]>;
  /** Drops what the run created on a shared server, and closes every connection. */
  close(): Promise<void>;
}

/** The clinic's legacy database: its tables, its adapter and journal, and its own SQL. */
export class LegacyDatabase {
  readonly #dialect: ClinicDialect;

  /**
   * @param dialect - The database and how it speaks.
   */
  constructor(dialect: ClinicDialect) {
    this.#dialect = dialect;
  }

  /** Where the legacy database is. */
  get where(): string {
    return this.#dialect.where;
  }

  /** Where the journal is. */
  get journalWhere(): string {
    return this.#dialect.journalWhere;
  }

  /** The library's adapter over the clinic's tables. */
  get adapter(): LegacyAdapter<ClinicRow> {
    return this.#dialect.adapter;
  }

  /** The journal. */
  get store(): PostgresStore {
    return this.#dialect.store;
  }

  /**
   * Inserts a row as the legacy application does: the database assigns the id, the version
   * starts at 1 and `updated_at` is stamped now.
   *
   * @param table - The table's name.
   * @param values - The data columns' values.
   * @returns The new row's id.
   */
  async insert(table: string, values: Readonly<Record<string, ClinicValue>>): Promise<string> {
    const d = this.#dialect;
    const columns = Object.keys(values);
    const rows = await d.query(
      `insert into ${d.table(table)} (${[...columns, 'updated_at'].join(', ')})
       values (${[...columns.map((_, i) => d.param(i + 1)), d.clock].join(', ')})
       returning ${d.text('id')} as id`,
      Object.values(values),
    );
    return textOf(rows[0]?.id) ?? '';
  }

  /**
   * Changes columns of one row as the legacy application does, moving its version on and
   * stamping `updated_at` (the adapter's conflict detection and change feed read them).
   *
   * @param table - The table's name.
   * @param id - The row's id.
   * @param values - The columns to change.
   */
  async update(table: string, id: string, values: Readonly<Record<string, ClinicValue>>): Promise<void> {
    const d = this.#dialect;
    const columns = Object.keys(values);
    const sets = columns.map((column, i) => `${column} = ${d.param(i + 1)}`);
    await d.query(
      `update ${d.table(table)} set ${[...sets, 'version = version + 1', `updated_at = ${d.clock}`].join(', ')}
       where id = ${d.param(columns.length + 1)}`,
      [...Object.values(values), Number(id)],
    );
  }

  /**
   * Deletes one row (the adapter's tombstone trigger records it for the change feed).
   *
   * @param table - The table's name.
   * @param id - The row's id.
   */
  async delete(table: string, id: string): Promise<void> {
    const d = this.#dialect;
    await d.query(`delete from ${d.table(table)} where id = ${d.param(1)}`, [Number(id)]);
  }

  /**
   * Reads columns of a table's rows as text, in id order.
   *
   * @param table - The table's name.
   * @param columns - The columns to read.
   * @param where - Equalities the rows must meet.
   * @returns One object per row, each column's value as text (or `null`).
   */
  async select<C extends string>(
    table: string,
    columns: readonly C[],
    where: Readonly<Record<string, ClinicValue>> = {},
  ): Promise<Record<C, string | null>[]> {
    const d = this.#dialect;
    const filters = Object.keys(where).map((column, i) => `${column} = ${d.param(i + 1)}`);
    const rows = await d.query(
      `select ${columns.map((column) => `${d.text(column)} as ${column}`).join(', ')} from ${d.table(table)}
       ${filters.length === 0 ? '' : `where ${filters.join(' and ')}`} order by id`,
      Object.values(where),
    );
    return rows.map(
      (row) =>
        Object.fromEntries(columns.map((column) => [column, textOf(row[column])])) as Record<
          C,
          string | null
        >,
    );
  }

  /** Drops what the run created on a shared server, and closes every connection. */
  async close(): Promise<void> {
    await this.#dialect.close();
  }
}

/** A value read as text, as text (`null` when the column is null). */
function textOf(value: unknown): string | null {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint'
    ? String(value)
    : null;
}

/** What the clinic's database needs to know of the run. */
export interface LegacyDatabaseOptions {
  /** A short id of the run, unique on a shared server: every name the run creates carries it. */
  readonly runId: string;
  /** The clinic's tables. */
  readonly tables: readonly ClinicTable[];
  /** Most connections to a database server. */
  readonly connections: number;
}

/**
 * Opens the clinic's legacy database (see the module's comment for which), creates its tables
 * and installs the adapter's tombstones.
 *
 * @param options - The run and its tables.
 * @returns The database.
 */
export async function openLegacyDatabase(options: LegacyDatabaseOptions): Promise<LegacyDatabase> {
  const url = process.env.LEGACY_DATABASE_URL ?? '';
  const scheme = url === '' ? '' : new URL(url).protocol;
  if (scheme === 'mysql:' || scheme === 'mariadb:') {
    const { openMariadbClinic } = await import('./legacy-mariadb.ts');
    return new LegacyDatabase(await openMariadbClinic(url, options));
  }
  if (scheme !== '' && scheme !== 'postgres:' && scheme !== 'postgresql:')
    throw new Error(`LEGACY_DATABASE_URL: expected mysql://, mariadb:// or postgres://, not ${scheme}//`);
  const { openPostgresClinic } = await import('./legacy-postgres.ts');
  return new LegacyDatabase(await openPostgresClinic(url === '' ? process.env.DATABASE_URL : url, options));
}
