import { ConfigurationError, InvalidInputError, RejectedError, UnavailableError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import {
  LegacyNotFoundError,
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyChangePage,
  type LegacyRecord,
  type LegacyScanOptions,
  type LegacyScanPage,
  type LegacyWriteOptions,
} from '../sides/legacy-adapter.ts';
import { classifyMysqlError } from '../sql/mysql-errors.ts';
import { changePage, decodeChangeCursor } from './change-cursor.ts';
import { guardedDelete, guardedUpdate } from './guarded-write.ts';
import {
  atText,
  decodeMysqlRow,
  discoverMysqlTable,
  type MysqlColumn,
  type MysqlPool,
  type MysqlQueryable,
  type MysqlTableSchema,
} from './mysql-table-schema.ts';
import {
  installMysqlTombstones,
  validateMysqlTombstones,
  type MysqlTombstoneOptions,
  type MysqlTombstoneSettings,
} from './mysql-table-tombstones.ts';
import { validateTable, type PostgresTableOptions } from './postgres-table-options.ts';
import { refusedRow } from './table-rejection.ts';
import {
  checkLimit,
  distinctIds,
  field,
  givenId as givenIdOf,
  refuseNonColumns,
  scalarText,
  tableRecord,
} from './table-rows.ts';
import { TableSchemas } from './table-schemas.ts';

export type { MysqlConnection, MysqlPool, MysqlQueryable, MysqlQueryOptions } from './mysql-table-schema.ts';
export type { MysqlTombstoneOptions } from './mysql-table-tombstones.ts';

/**
 * A legacy row as {@link MysqlTableAdapter} reads and writes it: column name to value, as
 * `mysql2` returns it with dates and big numbers as text (`DATE` `'2026-01-02'`, `DATETIME`
 * `'2026-01-02 03:04:05.000000'`, `BIGINT` and `DECIMAL` as strings, `JSON` parsed on MySQL and
 * text on MariaDB, where JSON is a LONGTEXT), except the updated-at column, which reads as an
 * ISO 8601 UTC instant. Objects and arrays written to a column are written as JSON text.
 *
 * @example
 * ```ts
 * const row: MysqlTableRow = { id: 7, fname: 'Ada', DOB: '1815-12-10' };
 * ```
 */
export type MysqlTableRow = Record<string, unknown>;

/**
 * Where one FHIR resource type lives: as for {@link PostgresTableAdapter} (`schema` is the
 * database; default: the pool's). The version column is an integer; the updated-at column a
 * `DATETIME(6)` or `TIMESTAMP(6)` that the legacy application stamps with `SYSDATE(6)` (see
 * {@link MysqlTableAdapter.changesSince}).
 *
 * @example
 * ```ts
 * const patients: MysqlTableOptions = { table: 'patient_data', idColumn: 'pid' };
 * ```
 */
export type MysqlTableOptions = PostgresTableOptions;

/**
 * Options of {@link MysqlTableAdapter}.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * const options: MysqlTableAdapterOptions = {
 *   pool: mysql.createPool('mysql://app@127.0.0.1:3306/clinic'),
 *   tables: { Patient: { table: 'patient_data', idColumn: 'pid' } },
 *   tombstones: true,
 * };
 * ```
 */
export interface MysqlTableAdapterOptions {
  /** A `mysql2/promise` pool (`mysql.createPool(...)`) on the legacy database (InnoDB tables). */
  readonly pool: MysqlPool;
  /** One table per FHIR resource type, keyed by resource type. */
  readonly tables: Readonly<Record<string, MysqlTableOptions>>;
  /**
   * Record deletes as tombstones so the change feed reports them (`true` for the defaults);
   * create the table and triggers with `installTombstones()`.
   * @default undefined: deletes do not appear in `changesSince`
   */
  readonly tombstones?: true | MysqlTombstoneOptions | undefined;
}

const INTEGER_ID = /^-?\d{1,20}$/;
/** What every query asks of `mysql2`, so values do not depend on the pool's settings. */
const READ_AS_TEXT = { dateStrings: true, supportBigNumbers: true, bigNumberStrings: true } as const;

/**
 * A {@link LegacyAdapter} over MySQL or MariaDB tables (InnoDB), one per resource type, through
 * a `mysql2/promise` pool — what {@link PostgresTableAdapter} is for PostgreSQL:
 *
 * - `create` inserts with version 1 and updated-at `SYSDATE(6)`; ids come from the row, an
 *   `AUTO_INCREMENT` column (the insert id) or a default expression such as `uuid()` (evaluated
 *   first, so `newId` can reserve one ahead). A taken id is a {@link LegacyVersionConflictError}.
 * - `update` and `delete` are guarded by the version in the statement itself
 *   (`WHERE id = ? AND version = ?`); MySQL has no `UPDATE … RETURNING`, so an update reads its
 *   row back in the same transaction, under the row lock its write took: the version returned
 *   is the one its own write made, never a later one.
 * - `readMany`, a keyset `scan` by primary key, and `changesSince` by (updated-at, id) with
 *   tombstones for deletes.
 * - Errors: a deadlock, lock wait timeout, lost connection or shutdown is an
 *   {@link UnavailableError} (retried); a value the table refuses is a {@link RejectedError}
 *   naming the column; neither ever quotes the server's message (it can quote the row).
 *
 * The journal stays in PostgreSQL or PGlite: a legacy write and its outbox entry are in two
 * databases, so there is no transactional outbox; the writer journals the intent before the
 * legacy write and holds the record until it lands (see the README).
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * const pool = mysql.createPool(process.env.LEGACY_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/clinic');
 * const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table: 'patients' } } });
 * const created = await legacy.create('Patient', { name: 'Ada' });
 * await legacy.update('Patient', created.id, { name: 'Ada L.' }, { expectedVersion: created.version });
 * ```
 */
export class MysqlTableAdapter implements LegacyAdapter<MysqlTableRow> {
  readonly #pool: MysqlPool;
  readonly #tombstones: MysqlTombstoneSettings | undefined;
  readonly #schemas: TableSchemas<MysqlTableSchema>;

  /**
   * @param options - The pool and the table of each resource type.
   * @throws {@link ConfigurationError} naming the option at fault.
   */
  constructor(options: MysqlTableAdapterOptions) {
    const given = options as unknown;
    if (typeof given !== 'object' || given === null)
      throw new ConfigurationError('options', given, 'must be an object');
    const { pool, tables, tombstones } = options;
    const isPool = (value: unknown): boolean =>
      typeof value === 'object' &&
      value !== null &&
      typeof (value as Record<string, unknown>).query === 'function' &&
      typeof (value as Record<string, unknown>).getConnection === 'function';
    if (!isPool(pool))
      throw new ConfigurationError('pool', pool, 'must be a mysql2/promise pool (mysql.createPool(...))');
    if (typeof tables !== 'object' || (tables as unknown) === null || Object.keys(tables).length === 0)
      throw new ConfigurationError('tables', tables, 'must map at least one resource type to a table');
    this.#pool = pool;
    this.#schemas = new TableSchemas(
      new Map(Object.entries(tables).map(([type, table]) => [type, validateTable(type, table)])),
      (settings) => discoverMysqlTable(pool, settings),
    );
    this.#tombstones = validateMysqlTombstones(tombstones);
  }

  /**
   * Reserves an id ahead of the write when the id column's default is an expression (such as
   * `uuid()`), by evaluating it; `undefined` for an `AUTO_INCREMENT` column (MySQL cannot hand
   * out its next value without inserting) or ids the caller gives.
   *
   * @param resourceType - The resource type whose table to draw from.
   * @returns The reserved id, or `undefined`.
   * @example
   * ```ts
   * const id = await legacy.newId('Patient'); // '0b5c…' for a uuid() default
   * ```
   */
  async newId(resourceType: string): Promise<string | undefined> {
    const schema = await this.#schema(resourceType);
    if (schema.idSource !== 'expression' || schema.id.defaultExpression === undefined) return undefined;
    const rows = await this.#rows(
      this.#pool,
      resourceType,
      `SELECT CAST(${schema.id.defaultExpression} AS CHAR) AS id`,
      [],
    );
    const id = rows[0]?.id;
    return typeof id === 'string' ? id : undefined;
  }

  /** {@inheritDoc LegacyAdapter.create} */
  async create(resourceType: string, row: MysqlTableRow): Promise<LegacyRecord<MysqlTableRow>> {
    const schema = await this.#schema(resourceType);
    refuseNonColumns(row, columnNames(schema), resourceType);
    let id = givenIdOf(row, schema.id.name, schema.idSource === 'caller', resourceType, schema.integerId);
    if (id === undefined && schema.idSource === 'expression') id = await this.newId(resourceType);
    const names: string[] = [];
    const values: unknown[] = [];
    if (id !== undefined) {
      names.push(schema.id.sqlName);
      values.push(id);
    }
    for (const column of schema.writable) {
      const value = field(row, column.name);
      if (value === undefined) continue;
      names.push(column.sqlName);
      values.push(encode(value));
    }
    const text = `INSERT INTO ${schema.sqlTable} (${[...names, schema.version.sqlName, schema.updatedAt.sqlName].join(', ')})
      VALUES (${[...values.map(() => '?'), '1', 'SYSDATE(6)'].join(', ')})`;
    let created: LegacyRecord<MysqlTableRow> | undefined;
    try {
      created = await this.#transaction(resourceType, id, async (connection) => {
        const [result] = await connection.query({ sql: text, values, ...READ_AS_TEXT });
        const stored = id ?? scalarText((result as { insertId?: unknown }).insertId);
        if (stored === undefined) throw new Error('the insert reported no id');
        const record = await this.#readOn(connection, schema, stored);
        if (record === undefined) throw new Error('the inserted row is not visible to its own transaction');
        return record;
      });
    } catch (err) {
      if (classifyMysqlError(err).kind !== 'duplicate-key' || id === undefined)
        throw this.#typed(err, resourceType, id);
      const existing = await this.read(resourceType, id);
      throw new LegacyVersionConflictError(resourceType, id, undefined, existing?.version);
    }
    if (created === undefined) throw new Error('the insert answered no row');
    return created;
  }

  /** {@inheritDoc LegacyAdapter.update} */
  async update(
    resourceType: string,
    id: string,
    row: MysqlTableRow,
    options: LegacyWriteOptions = {},
  ): Promise<LegacyRecord<MysqlTableRow>> {
    const schema = await this.#schema(resourceType);
    refuseNonColumns(row, columnNames(schema), resourceType);
    if (this.#namesNoRecord(schema, id)) throw new LegacyNotFoundError(resourceType, id);
    const expected = options.expectedVersion;
    return guardedUpdate(
      { resourceType, id, expected },
      () => {
        const values: unknown[] = [];
        const sets = schema.writable.map((column) => {
          const value = field(row, column.name);
          if (value === undefined) return `${column.sqlName} = DEFAULT`;
          values.push(encode(value));
          return `${column.sqlName} = ?`;
        });
        sets.push(
          `${schema.version.sqlName} = ${schema.version.sqlName} + 1`,
          `${schema.updatedAt.sqlName} = SYSDATE(6)`,
        );
        values.push(id);
        let guard = '';
        if (expected !== undefined) {
          values.push(expected);
          guard = ` AND ${schema.version.sqlName} = ?`;
        }
        const text = `UPDATE ${schema.sqlTable} SET ${sets.join(', ')} WHERE ${schema.id.sqlName} = ?${guard}`;
        return this.#transaction(resourceType, id, async (connection) => {
          const [result] = await connection.query({ sql: text, values, ...READ_AS_TEXT });
          if ((result as { affectedRows?: unknown }).affectedRows !== 1) return undefined;
          // Read under the row lock the UPDATE holds: no other write can land in between, so
          // this is the version this write made.
          return this.#readOn(connection, schema, id);
        });
      },
      () => this.read(resourceType, id),
    );
  }

  /** {@inheritDoc LegacyAdapter.delete} */
  async delete(resourceType: string, id: string, options: LegacyWriteOptions = {}): Promise<void> {
    const schema = await this.#schema(resourceType);
    if (this.#namesNoRecord(schema, id)) return;
    const expected = options.expectedVersion;
    await guardedDelete(
      { resourceType, id, expected },
      async () => {
        const guard = expected === undefined ? '' : ` AND ${schema.version.sqlName} = ?`;
        const values = expected === undefined ? [id] : [id, expected];
        const sql = `DELETE FROM ${schema.sqlTable} WHERE ${schema.id.sqlName} = ?${guard}`;
        return (await this.#affected(resourceType, id, sql, values)) > 0;
      },
      () => this.read(resourceType, id),
    );
  }

  /** {@inheritDoc LegacyAdapter.read} */
  async read(resourceType: string, id: string): Promise<LegacyRecord<MysqlTableRow> | undefined> {
    const schema = await this.#schema(resourceType);
    if (this.#namesNoRecord(schema, id)) return undefined;
    try {
      return await this.#readOn(this.#pool, schema, id);
    } catch (err) {
      throw this.#typed(err, resourceType, id);
    }
  }

  /**
   * Reads several records in one `WHERE id IN (…)` statement; ids the id column cannot hold
   * (not an integer, for an integer key) answer `undefined` without reaching the database.
   *
   * @param resourceType - The resource type of the records.
   * @param ids - Their legacy ids.
   * @returns Each id and its record (`undefined`: none).
   * @example
   * ```ts
   * const records = await legacy.readMany('Patient', ['1', '2']);
   * ```
   */
  async readMany(
    resourceType: string,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, LegacyRecord<MysqlTableRow> | undefined>> {
    const requested = distinctIds(ids);
    const schema = await this.#schema(resourceType);
    const found = new Map<string, LegacyRecord<MysqlTableRow> | undefined>(
      requested.map((id) => [id, undefined]),
    );
    const asked = requested.filter((id) => !this.#namesNoRecord(schema, id));
    if (asked.length === 0) return found;
    const rows = await this.#rows(
      this.#pool,
      resourceType,
      `SELECT ${schema.selectList} FROM ${schema.sqlTable} t WHERE t.${schema.id.sqlName} IN (${asked.map(() => '?').join(', ')})`,
      asked,
    );
    const byKey = new Map(rows.map((raw) => [scalarText(raw[schema.id.name]), toRecord(schema, raw)]));
    // A text key compares by the column's collation (often case-insensitive): answer each id as
    // asked with the row read would find.
    for (const id of asked) {
      const exact = byKey.get(id);
      found.set(id, exact ?? (schema.integerId ? undefined : await this.read(resourceType, id)));
    }
    return found;
  }

  /**
   * Pages through every row in primary-key order (`WHERE id > ? ORDER BY id LIMIT n`, on the
   * key's index). Reads only. The cursor is the page's last id.
   *
   * @param resourceType - The resource type whose table to read.
   * @param options - The cursor to start after and the page size.
   * @returns Up to `limit` records and the next cursor (`undefined` after the last page).
   * @throws {@link InvalidInputError} naming `limit` or `after`.
   * @example
   * ```ts
   * const page = await legacy.scan('Patient', { limit: 500 });
   * ```
   */
  async scan(resourceType: string, options: LegacyScanOptions): Promise<LegacyScanPage<MysqlTableRow>> {
    const schema = await this.#schema(resourceType);
    const { after, limit } = options;
    checkLimit(limit, resourceType);
    if (after !== undefined && (typeof after !== 'string' || this.#namesNoRecord(schema, after)))
      throw new InvalidInputError('after', 'is not an id of this table', { side: 'legacy', resourceType });
    const where = after === undefined ? '' : ` WHERE t.${schema.id.sqlName} > ?`;
    const rows = await this.#rows(
      this.#pool,
      resourceType,
      `SELECT ${schema.selectList} FROM ${schema.sqlTable} t${where} ORDER BY t.${schema.id.sqlName} LIMIT ${limit + 1}`,
      after === undefined ? [] : [after],
    );
    const records = rows.slice(0, limit).map((raw) => toRecord(schema, raw));
    return { records, next: rows.length > limit ? records.at(-1)?.id : undefined };
  }

  /**
   * Creates the tombstone table and an AFTER DELETE trigger on every configured table
   * (idempotent; run it at deployment, before writes start).
   *
   * @returns When installed.
   * @throws {@link ConfigurationError} naming `tombstones` when the option is not set.
   * @example
   * ```ts
   * const legacy = new MysqlTableAdapter({ pool, tables: { Patient: { table: 'patients' } }, tombstones: true });
   * await legacy.installTombstones();
   * ```
   */
  async installTombstones(): Promise<void> {
    if (this.#tombstones === undefined)
      throw new ConfigurationError('tombstones', undefined, 'must be set to install tombstones');
    const schemas = await Promise.all(this.#schemas.resourceTypes.map((type) => this.#schema(type)));
    await installMysqlTombstones(this.#pool, this.#tombstones, schemas);
  }

  /**
   * Pages through rows in (updated-at, id) order after the cursor, each at its latest write,
   * with deletes merged in from the tombstones when they are on. The cursor keeps the
   * updated-at at microseconds and the changes already returned at that instant, so writes
   * sharing an instant are neither skipped nor repeated.
   *
   * The legacy application must stamp the updated-at with `SYSDATE(6)` on every write (a
   * trigger or its own SQL), not `NOW(6)` or `ON UPDATE CURRENT_TIMESTAMP(6)`, which are fixed
   * when the statement starts: a write that waited on a lock would be stamped before writes
   * that committed while it waited, and the feed could already be past it. Sessions must share
   * a time zone (UTC is safest), since the instant is compared as the session renders it.
   *
   * @param resourceType - The resource type whose table to read.
   * @param cursor - A cursor from an earlier page, or `undefined` to start from the beginning.
   * @param limit - The most changes to return (a positive integer).
   * @returns Up to `limit` changes and the cursor after the last one.
   * @throws {@link InvalidInputError} naming `cursor` or `limit`.
   * @example
   * ```ts
   * const page = await legacy.changesSince('Patient', undefined, 100);
   * ```
   */
  async changesSince(
    resourceType: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<LegacyChangePage<MysqlTableRow>> {
    const schema = await this.#schema(resourceType);
    checkLimit(limit, resourceType);
    const after = cursor === undefined ? undefined : decodeChangeCursor(cursor, resourceType);
    const id = schema.id.sqlName;
    const version = schema.version.sqlName;
    const at = `t.${schema.updatedAt.sqlName}`;
    const rowKey = `CONCAT(t.${id}, '@', COALESCE(t.${version}, ''))`;
    const values: unknown[] = [];
    const since = (column: string, key: string): string => {
      if (after === undefined) return `${column} IS NOT NULL`;
      values.push(after.updatedAt, after.updatedAt);
      const seen =
        after.seen.length === 0 ? '' : ` AND ${key} NOT IN (${after.seen.map(() => '?').join(', ')})`;
      values.push(...after.seen);
      return `(${column} > ? OR (${column} = ?${seen}))`;
    };
    // Rows and tombstones in one ordered list; a tombstone's row columns are NULL. No join
    // back to the table: the ids of the two parts may differ in type and collation.
    const parts = [
      `SELECT ${at} AS dw_time, ${atText(at)} AS dw_time_text, CAST(t.${id} AS CHAR) AS dw_id,
              0 AS dw_deleted, ${rowKey} AS dw_change, ${schema.selectList}
         FROM ${schema.sqlTable} t WHERE ${since(at, rowKey)}`,
    ];
    if (this.#tombstones !== undefined) {
      const deadKey = `CONCAT(d.legacy_id, '@deleted@', COALESCE(d.version, ''))`;
      const where = since('d.deleted_at', deadKey);
      values.push(resourceType);
      const nulls = schema.selectColumns.map(() => 'NULL').join(', ');
      parts.push(
        `SELECT d.deleted_at, ${atText('d.deleted_at')}, CAST(d.legacy_id AS CHAR), 1, ${deadKey}, ${nulls}
           FROM ${this.#tombstones.sqlTable} d WHERE ${where} AND d.resource_type = ?`,
      );
    }
    const text = `${parts.join(' UNION ALL ')} ORDER BY dw_time, dw_id LIMIT ${limit}`;
    const rows = await this.#rows(this.#pool, resourceType, text, values);
    return changePage(
      after,
      cursor,
      rows.map((raw) => {
        const changeId = String(raw.dw_id);
        const change =
          Number(raw.dw_deleted) === 1
            ? { resourceType, id: changeId, kind: 'delete' as const }
            : { resourceType, id: changeId, kind: 'upsert' as const, record: toRecord(schema, raw) };
        return { at: String(raw.dw_time_text), id: changeId, key: String(raw.dw_change), change };
      }),
    );
  }

  #schema(resourceType: string): Promise<MysqlTableSchema> {
    return this.#schemas.of(resourceType);
  }

  /** An id that no row can have: not an integer, for an integer key (MySQL would cast `'abc'` to 0). */
  #namesNoRecord(schema: MysqlTableSchema, id: string): boolean {
    return schema.integerId && !INTEGER_ID.test(id);
  }

  async #readOn(
    db: MysqlQueryable,
    schema: MysqlTableSchema,
    id: string,
  ): Promise<LegacyRecord<MysqlTableRow> | undefined> {
    const [rows] = await db.query({
      sql: `SELECT ${schema.selectList} FROM ${schema.sqlTable} t WHERE t.${schema.id.sqlName} = ?`,
      values: [id],
      ...READ_AS_TEXT,
    });
    const raw = (rows as readonly Record<string, unknown>[])[0];
    return raw === undefined ? undefined : toRecord(schema, raw);
  }

  async #rows(
    db: MysqlQueryable,
    resourceType: string,
    sql: string,
    values: readonly unknown[],
  ): Promise<readonly Record<string, unknown>[]> {
    try {
      const [rows] = await db.query({ sql, values: [...values], ...READ_AS_TEXT });
      return rows as readonly Record<string, unknown>[];
    } catch (err) {
      throw this.#typed(err, resourceType, undefined);
    }
  }

  async #affected(
    resourceType: string,
    id: string,
    sql: string,
    values: readonly unknown[],
  ): Promise<number> {
    try {
      const [result] = await this.#pool.query({ sql, values: [...values], ...READ_AS_TEXT });
      return Number((result as { affectedRows?: unknown }).affectedRows ?? 0);
    } catch (err) {
      throw this.#typed(err, resourceType, id);
    }
  }

  /** Runs `fn` in a transaction on one pooled connection; rolls back when it throws or answers nothing. */
  async #transaction<T>(
    resourceType: string,
    id: string | undefined,
    fn: (connection: MysqlQueryable) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    let connection;
    try {
      connection = await this.#pool.getConnection();
    } catch (err) {
      throw this.#typed(err, resourceType, id);
    }
    try {
      await connection.beginTransaction();
      const result = await fn(connection);
      if (result === undefined) await connection.rollback();
      else await connection.commit();
      return result;
    } catch (err) {
      await connection.rollback().catch(() => undefined);
      if (classifyMysqlError(err).kind === 'duplicate-key') throw err;
      throw this.#typed(err, resourceType, id);
    } finally {
      connection.release();
    }
  }

  /**
   * The library's error for a driver error: transient → {@link UnavailableError}, refused data →
   * {@link RejectedError} naming the column when the server names one, anything else a
   * {@link RejectedError} with the codes and a value-free cause. The server's message is never copied (a duplicate-entry or truncation message quotes values).
   */
  #typed(err: unknown, resourceType: string, legacyId: string | undefined): unknown {
    if (err instanceof UnavailableError || err instanceof RejectedError) return err;
    const { kind, errno, code, sqlState } = classifyMysqlError(err);
    const what = `MySQL error ${errno ?? '?'}${code === undefined ? '' : ` (${code})`}${sqlState === undefined ? '' : `, SQLSTATE ${sqlState}`}`;
    const details = { side: 'legacy' as const, resourceType, legacyId };
    if (kind === 'transient')
      return new UnavailableError(`${resourceType}: the legacy database failed: ${what}`, details);
    if (kind === 'rejected' || kind === 'duplicate-key') {
      const message = (err as { sqlMessage?: unknown }).sqlMessage;
      const column = typeof message === 'string' ? columnNamed(message) : undefined;
      // A CHECK's name, an identifier (MariaDB: CONSTRAINT `c` failed for …; MySQL: Check
      // constraint 'c' is violated.); never anything else of the message.
      const named =
        typeof message === 'string'
          ? /^(?:CONSTRAINT `([^`]+)` failed|Check constraint '([^']+)' is violated)/.exec(message)
          : null;
      const constraint = named?.[1] ?? named?.[2];
      return refusedRow(
        err,
        { code: sqlState ?? (errno === undefined ? undefined : String(errno)), what, column, constraint },
        { resourceType, legacyId },
        false,
      );
    }
    // Anything else (a denied privilege, a trigger's SIGNAL): the driver's error carries the
    // statement with every value (`sql`), and its message may quote them.
    return new RejectedError(`${resourceType}: the legacy database refused the call: ${what}`, [], {
      ...details,
      code: sqlState ?? (errno === undefined ? undefined : String(errno)),
      cause: valueFreeError(err),
    });
  }
}

/**
 * The column a refusal names: MySQL writes `column 'name'`, MariaDB `column \`db\`.\`table\`.\`name\``
 * for a value it cannot convert (a character the charset lacks, a bad date, text for a number).
 * Read at the end of the message (`… for column … at row 1`) or its start (`Column '…' cannot be
 * null`), never in the middle, where the message quotes the value refused.
 */
function columnNamed(message: string): string | undefined {
  const found =
    /\bcolumn (?:'([^']+)'|(?:`[^`]*`\.)*`([^`]+)`)(?: at row \d+)?$/i.exec(message) ??
    /^Column (?:'([^']+)'|(?:`[^`]*`\.)*`([^`]+)`)/.exec(message);
  return found?.[1] ?? found?.[2];
}

function toRecord(
  schema: MysqlTableSchema,
  raw: Readonly<Record<string, unknown>>,
): LegacyRecord<MysqlTableRow> {
  const { row, iso } = decodeMysqlRow(schema, raw);
  return tableRecord(row, { id: schema.id.name, version: schema.version.name }, iso);
}

function columnNames(schema: MysqlTableSchema): string[] {
  return schema.all.map((column: MysqlColumn) => column.name);
}

/** Objects and arrays go in as JSON text; `mysql2` would otherwise expand them into SQL lists. */
function encode(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Date || Buffer.isBuffer(value))
    return value;
  return JSON.stringify(value);
}
