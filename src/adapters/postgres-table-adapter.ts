import { ConfigurationError, InvalidInputError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import { sqlStateOf } from '../sql/database-failure.ts';
import {
  LegacyVersionConflictError,
  type LegacyAdapter,
  type LegacyChangePage,
  type LegacyRecord,
  type LegacyScanOptions,
  type LegacyScanPage,
  type LegacyWriteOptions,
} from '../sides/legacy-adapter.ts';
import type { SqlClient, SqlQueryable, SqlResult } from '../sql/sql-client.ts';
import type { WriteStatement, WriteStatementRunner } from '../sql/write-statement.ts';
import { changePage, decodeChangeCursor, type ChangeCursor } from './change-cursor.ts';
import { guardedDelete, guardedUpdate } from './guarded-write.ts';
import { validateAdapterOptions, type PostgresTableAdapterOptions } from './postgres-table-options.ts';
import {
  afterCursor,
  changeKey,
  changeKeySql,
  installTombstones,
  mergedChangesSql,
  validateTombstoneOptions,
  type TombstoneSettings,
} from './postgres-table-tombstones.ts';

export type { PostgresTableAdapterOptions, PostgresTableOptions } from './postgres-table-options.ts';
export type { PostgresTombstoneOptions } from './postgres-table-tombstones.ts';
import {
  decodeRow,
  discoverTableSchema,
  INTEGER_TYPES,
  type TableColumn,
  type TableSchema,
  type TableSettings,
} from './postgres-table-schema.ts';
import { refusedRow } from './table-rejection.ts';
import {
  checkLimit,
  distinctIds,
  field,
  givenId as givenIdOf,
  refuseNonColumns,
  tableRecord,
} from './table-rows.ts';
import { TableSchemas } from './table-schemas.ts';

/**
 * A legacy row as {@link PostgresTableAdapter} reads and writes it: column name to value.
 *
 * Values are what the driver returns, except where `pg` and PGlite disagree: `timestamptz`
 * reads as an ISO 8601 UTC string (`2026-01-02T03:04:05.123Z`, six fraction digits when the
 * stored value has microseconds), `timestamp` as the same without `Z`, `date` as `YYYY-MM-DD`,
 * `bigint`, `numeric` and `interval` (and arrays of them) as PostgreSQL's text, `bytea` as
 * `\x`-prefixed hex, and any other Date as an ISO string. `json`/`jsonb` read as parsed
 * values and any value written to them is serialised as JSON (so an array stays an array, and
 * a string is a JSON string, not JSON text). So one stored row reads identically
 * through both drivers, whatever time zone the process runs in.
 *
 * @example
 * ```ts
 * const row: PostgresTableRow = { id: '7', name: 'Ada', birth_date: '1815-12-10' };
 * ```
 */
export type PostgresTableRow = Record<string, unknown>;

/**
 * A {@link LegacyAdapter} over plain PostgreSQL tables, one per resource type, through `pg` or
 * PGlite. The reference adapter for a legacy system that is "our own SQL database".
 *
 * - `create` inserts (`RETURNING` the stored row); a taken id is a
 *   {@link LegacyVersionConflictError}.
 * - `update` replaces the data columns (columns missing from the row get their default) and
 *   increments the version, guarded by `expectedVersion` in the same statement. The id is the
 *   argument's; an id in the row is ignored, so a record is never re-keyed.
 * - `delete` removes the row, guarded likewise; a missing row is a no-op.
 * - An id that cannot be of the id column's type (`'abc'` for a serial) is a missing record.
 * - A row the table refuses (a NOT NULL, CHECK, foreign key or other unique constraint, a
 *   value of the wrong type) is a {@link RejectedError}: retrying cannot help.
 * - `changesSince` pages through rows by (updated-at, id).
 *
 * Tables are looked up in `information_schema` at the first call for their resource type;
 * a missing table or column is then reported as a {@link ConfigurationError}.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const legacy = new PostgresTableAdapter({ sql: sqlClientFromPg(pool), tables: { Patient: { table: 'patients' } } });
 * const created = await legacy.create('Patient', { name: 'Ada' });
 * await legacy.update('Patient', created.id, { ...created.row, name: 'Ada L.' }, { expectedVersion: created.version });
 * ```
 */
export class PostgresTableAdapter implements LegacyAdapter<PostgresTableRow> {
  readonly #client: SqlClient;
  /** Where queries go: the client, or one transaction of it (see {@link PostgresTableAdapter.within}). */
  #sql: SqlQueryable;
  /** Runs the writes when set (see {@link PostgresTableAdapter.writingThrough}). */
  #runWrite: WriteStatementRunner | undefined;
  readonly #options: PostgresTableAdapterOptions;
  readonly #settings: ReadonlyMap<string, TableSettings>;
  readonly #tombstones: TombstoneSettings | undefined;
  /**
   * Tables looked up on this adapter's own connection. Those already found are shared with
   * transaction views, but a view never waits on a lookup running on the pool: with every
   * pool connection held by transactions that wait for it, that would deadlock.
   */
  #schemas: TableSchemas<TableSchema>;

  /**
   * @param options - The database and the table of each resource type.
   * @throws {@link ConfigurationError} naming the option at fault.
   */
  constructor(options: PostgresTableAdapterOptions) {
    // A view (`within`, `writingThrough`: one per transactional write) takes its adapter's
    // checked options instead of checking them again.
    const from = viewing;
    if (from !== undefined && from.#options === options) {
      this.#settings = from.#settings;
      this.#tombstones = from.#tombstones;
    } else {
      this.#settings = validateAdapterOptions(options);
      this.#tombstones = validateTombstoneOptions(options.tombstones);
    }
    this.#options = options;
    this.#client = options.sql;
    this.#sql = options.sql;
    this.#schemas = new TableSchemas(this.#settings, (settings) => discoverTableSchema(this.#sql, settings));
  }

  /**
   * The database the adapter writes. A `PostgresStore` on the same client journals a write's
   * outbox entry in the write's own transaction (a transactional outbox).
   *
   * @example
   * ```ts
   * const sql = sqlClientFromPg(pool);
   * const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients' } } });
   * legacy.sql === sql; // true
   * ```
   */
  get sql(): SqlClient {
    return this.#client;
  }

  /**
   * This adapter inside one transaction of its database: every call runs on `tx`. Tables
   * looked up by either are shared.
   *
   * @param tx - A transaction of {@link PostgresTableAdapter.sql}.
   * @returns An adapter bound to the transaction.
   * @example
   * ```ts
   * await legacy.sql.transaction(async (tx) => {
   *   await legacy.within(tx).create('Patient', row);
   * });
   * ```
   */
  within(tx: SqlQueryable): PostgresTableAdapter {
    const view = this.#view();
    view.#sql = tx;
    return view;
  }

  /**
   * This adapter with each write (`create`, `update`, `delete`) handed to `run` as one SQL
   * statement instead of being run on {@link PostgresTableAdapter.sql}; reads and everything
   * else run as usual. A transactional outbox runs the statement with the write's outbox entry
   * added to it. Internal.
   *
   * @param run - Runs a write statement and answers with its `RETURNING` rows.
   * @returns An adapter whose writes go through `run`.
   * @example
   * ```ts
   * const traced = legacy.writingThrough((statement) => legacy.sql.query(statement.text, statement.params));
   * ```
   */
  writingThrough(run: WriteStatementRunner): PostgresTableAdapter {
    const view = this.#view();
    view.#runWrite = run;
    return view;
  }

  /**
   * Reserves the next id the table would assign (its serial or identity sequence, or its
   * default expression such as `gen_random_uuid()`), so the writer can journal a create before
   * the row exists. `undefined` when the table takes ids from the caller.
   *
   * @param resourceType - The resource type whose table to draw from.
   * @returns The reserved id, as a string.
   * @example
   * ```ts
   * const id = await adapter.newId('Patient'); // '1042'
   * ```
   */
  async newId(resourceType: string): Promise<string | undefined> {
    const schema = await this.#schema(resourceType);
    const { id } = schema;
    if (schema.idGeneration !== 'database') return undefined;
    // The default comes from the catalog of the table itself: evaluating it draws exactly what an
    // INSERT without an id would have drawn (a sequence value is consumed either way).
    const text = id.identity
      ? `SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($1, $2))::text AS id`
      : `SELECT (${id.defaultSql ?? 'NULL'})::text AS id`;
    const params = id.identity ? [schema.sqlTable, id.name] : [];
    const { rows } = await this.#sql.query<{ id: string | null }>(text, params);
    return rows[0]?.id ?? undefined;
  }

  /** {@inheritDoc LegacyAdapter.create} */
  async create(resourceType: string, row: PostgresTableRow): Promise<LegacyRecord<PostgresTableRow>> {
    const schema = await this.#schema(resourceType);
    refuseNonColumns(row, columnNames(schema), resourceType);
    const givenText = givenIdOf(
      row,
      schema.id.name,
      schema.idGeneration === 'caller',
      resourceType,
      INTEGER_TYPES.has(schema.id.typeName),
    );
    const givenId = givenText === undefined ? undefined : field(row, schema.id.name);
    const params: unknown[] = [];
    const names: string[] = [];
    const values: string[] = [];
    const put = (column: TableColumn, value: unknown): void => {
      params.push(column.encode(value));
      names.push(column.sqlName);
      values.push(column.placeholder(params.length));
    };
    if (givenId !== undefined) put(schema.id, givenId);
    for (const column of schema.writable) {
      const value = field(row, column.name);
      if (value !== undefined) put(column, value);
    }
    names.push(schema.version.sqlName, schema.updatedAt.sqlName);
    values.push('1', 'pg_catalog.clock_timestamp()');
    const override = givenId !== undefined && schema.id.identityAlways ? ' OVERRIDING SYSTEM VALUE' : '';
    // A taken id is answered without an error (ON CONFLICT on the key), so a create inside a
    // caller's transaction (a transactional outbox) leaves that transaction usable.
    const onTakenId = givenId === undefined ? '' : ` ON CONFLICT (${schema.id.sqlName}) DO NOTHING`;
    const text = `INSERT INTO ${schema.sqlTable} (${names.join(', ')})${override} VALUES (${values.join(', ')})${onTakenId} RETURNING ${schema.selectList}`;
    let inserted: Record<string, unknown> | undefined;
    try {
      inserted = (await this.#write(schema, text, params, false)).rows[0];
    } catch (err) {
      throw this.#rejection(err, resourceType, givenText);
    }
    if (inserted !== undefined) return toRecord(schema, inserted);
    const existing = await this.#read(schema, givenText ?? '');
    throw new LegacyVersionConflictError(
      resourceType,
      existing?.id ?? givenText ?? '',
      undefined,
      existing?.version,
    );
  }

  /** {@inheritDoc LegacyAdapter.update} */
  async update(
    resourceType: string,
    id: string,
    row: PostgresTableRow,
    options: LegacyWriteOptions = {},
  ): Promise<LegacyRecord<PostgresTableRow>> {
    const schema = await this.#schema(resourceType);
    refuseNonColumns(row, columnNames(schema), resourceType);
    const expected = options.expectedVersion;
    return guardedUpdate(
      { resourceType, id, expected },
      async () => {
        const params: unknown[] = [id];
        const sets = schema.writable.map((column) => {
          const value = field(row, column.name);
          if (value === undefined) return `${column.sqlName} = DEFAULT`;
          params.push(column.encode(value));
          return `${column.sqlName} = ${column.placeholder(params.length)}`;
        });
        sets.push(
          `${schema.version.sqlName} = ${schema.version.sqlName} + 1`,
          `${schema.updatedAt.sqlName} = pg_catalog.clock_timestamp()`,
        );
        let guard = '';
        if (expected !== undefined) {
          params.push(expected);
          guard = ` AND ${schema.version.sqlName} = $${params.length}::pg_catalog.int8`;
        }
        const text = `UPDATE ${schema.sqlTable} SET ${sets.join(', ')} WHERE ${idMatches(schema)}${guard} RETURNING ${schema.selectList}`;
        try {
          const updated = (await this.#write(schema, text, params, false)).rows[0];
          return updated === undefined ? undefined : toRecord(schema, updated);
        } catch (err) {
          if (await this.#rejectsId(schema, err, id)) return undefined;
          throw this.#rejection(err, resourceType, id);
        }
      },
      () => this.#read(schema, id),
    );
  }

  /** {@inheritDoc LegacyAdapter.delete} */
  async delete(resourceType: string, id: string, options: LegacyWriteOptions = {}): Promise<void> {
    const schema = await this.#schema(resourceType);
    const expected = options.expectedVersion;
    await guardedDelete(
      { resourceType, id, expected },
      async () => {
        const guard = expected === undefined ? '' : ` AND ${schema.version.sqlName} = $2::pg_catalog.int8`;
        const params = expected === undefined ? [id] : [id, expected];
        try {
          const text = `DELETE FROM ${schema.sqlTable} WHERE ${idMatches(schema)}${guard} RETURNING ${schema.id.selectSql}`;
          const { rows } = await this.#write(schema, text, params, expected === undefined);
          return rows.length > 0;
        } catch (err) {
          // An id the column cannot hold names no row: nothing to delete.
          if (await this.#rejectsId(schema, err, id)) return true;
          // A foreign key from another table refuses the delete for good.
          throw this.#rejection(err, resourceType, id);
        }
      },
      () => this.#read(schema, id),
    );
  }

  /** {@inheritDoc LegacyAdapter.read} */
  async read(resourceType: string, id: string): Promise<LegacyRecord<PostgresTableRow> | undefined> {
    return this.#read(await this.#schema(resourceType), id);
  }

  /**
   * Reads several records in one statement: the ids go in as one text array, each cast to the
   * id column's type as `read` casts its one, so an id matches here exactly when it matches
   * there. An id the column's type cannot hold makes the whole statement fail; the answer is
   * then empty and each record is read on its own.
   *
   * @param resourceType - The resource type of the records.
   * @param ids - Their legacy ids.
   * @returns Each id and its record (`undefined`: none).
   * @example
   * ```ts
   * const records = await adapter.readMany('Patient', ['1', '2']);
   * ```
   */
  async readMany(
    resourceType: string,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, LegacyRecord<PostgresTableRow> | undefined>> {
    const requested = distinctIds(ids);
    const schema = await this.#schema(resourceType);
    let rows: readonly Record<string, unknown>[];
    try {
      ({ rows } = await this.#sql.query(
        `SELECT ${schema.selectList}, ${REQUESTED_ID} FROM ${schema.sqlTable}
         JOIN pg_catalog.unnest($1::pg_catalog.text[]) AS requested(${REQUESTED_ID})
           ON ${schema.id.sqlName} = ${REQUESTED_ID}::${schema.id.sqlType}`,
        [requested],
      ));
    } catch (err) {
      if (sqlStateOf(err)?.startsWith('22')) return new Map();
      throw err;
    }
    const found = new Map<string, LegacyRecord<PostgresTableRow> | undefined>(
      requested.map((id) => [id, undefined]),
    );
    for (const { [REQUESTED_ID]: id, ...raw } of rows) found.set(String(id), toRecord(schema, raw));
    return found;
  }

  /**
   * Pages through every row in primary-key order: `WHERE id > $after ORDER BY id LIMIT n`, on
   * the key's index, so each page costs the same however deep the scan is and rows written
   * meanwhile never shift it. Reads only: no version bump, no trigger. The cursor is the last
   * id of the page, as text.
   *
   * @param resourceType - The resource type whose table to read.
   * @param options - The cursor to start after and the page size.
   * @returns Up to `limit` records and the cursor of the next page (`undefined` after the last).
   * @throws {@link InvalidInputError} naming `limit`, or `after` when it is not an id of the table.
   * @example
   * ```ts
   * let after: string | undefined;
   * do {
   *   const page = await legacy.scan('Patient', { after, limit: 500 });
   *   after = page.next;
   * } while (after !== undefined);
   * ```
   */
  async scan(resourceType: string, options: LegacyScanOptions): Promise<LegacyScanPage<PostgresTableRow>> {
    const schema = await this.#schema(resourceType);
    const { after, limit } = options;
    checkLimit(limit, resourceType);
    // One row more than asked tells whether another page follows, without a count.
    const params: unknown[] = after === undefined ? [limit + 1] : [limit + 1, after];
    const where = after === undefined ? '' : ` WHERE t.${schema.id.sqlName} > $2::${schema.id.sqlType}`;
    // ORDER BY names the table's column (t.id): a bare name binds to the select list's column
    // of that name first, which is the key cast to text for a bigint (1, 10, 100, 2...), while
    // the cursor compares numbers: a scan skipped rows (522 of 1,500 read).
    const text = `SELECT ${schema.selectList} FROM ${schema.sqlTable} t${where} ORDER BY t.${schema.id.sqlName} LIMIT $1`;
    let rows: readonly Record<string, unknown>[];
    try {
      ({ rows } = await this.#sql.query(text, params));
    } catch (err) {
      if (after !== undefined && sqlStateOf(err)?.startsWith('22'))
        throw new InvalidInputError('after', 'is not an id of this table', {
          side: 'legacy',
          resourceType,
          cause: valueFreeError(err),
        });
      throw err;
    }
    const records = rows.slice(0, limit).map((raw) => toRecord(schema, raw));
    return { records, next: rows.length > limit ? records.at(-1)?.id : undefined };
  }

  /**
   * Creates the tombstone table, its trigger function and an AFTER DELETE trigger on every
   * configured table (idempotent; safe to run at every start). Deletes made by anyone, the
   * legacy application included, then appear in {@link PostgresTableAdapter.changesSince}.
   *
   * @returns When installed.
   * @throws {@link ConfigurationError} naming `tombstones` when the option is not set.
   * @example
   * ```ts
   * const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients' } }, tombstones: true });
   * await legacy.installTombstones();
   * ```
   */
  async installTombstones(): Promise<void> {
    if (this.#tombstones === undefined)
      throw new ConfigurationError('tombstones', undefined, 'must be set to install tombstones');
    const schemas = await Promise.all(this.#schemas.resourceTypes.map((type) => this.#schema(type)));
    await installTombstones(this.#client, this.#tombstones, schemas);
  }

  /**
   * Pages through rows in (updated-at, id) order, after the cursor. Each row appears once, at
   * its latest write: a row updated since an earlier page appears again, later.
   *
   * With the `tombstones` option, deletes are merged in as `delete` changes at their tombstone's
   * time, ordered with the rows by (time, id); without it, deletes are not visible.
   *
   * Limits of a feed read from timestamps: rows whose updated-at is NULL are skipped; a
   * transaction that commits after a later-stamped one (a long transaction, or one stamped in
   * the same microsecond with a smaller id) can be missed by a reader that already passed its
   * timestamp; and a record re-created with the very timestamp of its own tombstone shows only
   * one of the two. Legacy writers must set updated-at with `clock_timestamp()` (not `now()`,
   * fixed per transaction) and keep transactions short.
   *
   * @param resourceType - The resource type whose table to read.
   * @param cursor - A cursor from an earlier page, or `undefined` to start from the beginning.
   * @param limit - The most changes to return (a positive integer).
   * @returns Up to `limit` upserts and the cursor after the last one.
   * @throws {@link InvalidInputError} naming `cursor` or `limit` when either is malformed.
   * @example
   * ```ts
   * let cursor: string | undefined;
   * for (;;) {
   *   const page = await legacy.changesSince('Patient', cursor, 100);
   *   if (page.changes.length === 0) break;
   *   cursor = page.cursor;
   * }
   * ```
   */
  async changesSince(
    resourceType: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<LegacyChangePage<PostgresTableRow>> {
    const schema = await this.#schema(resourceType);
    checkLimit(limit, resourceType);
    const after = cursor === undefined ? undefined : decodeChangeCursor(cursor, resourceType);
    if (this.#tombstones !== undefined)
      return this.#mergedChanges(schema, this.#tombstones, after, limit, cursor);
    // The table's columns, not the select list's text forms of them (see scan).
    const order = `t.${schema.updatedAt.sqlName}, t.${schema.id.sqlName}`;
    const params: unknown[] = after === undefined ? [limit] : [limit, after.updatedAt, after.seen];
    const from =
      after === undefined
        ? `${schema.updatedAt.sqlName} IS NOT NULL`
        : afterCursor(
            schema.updatedAt.sqlName,
            changeKeySql(schema.id.sqlName, schema.version.sqlName, false),
            '$2',
            '$3',
          );
    const text = `SELECT ${schema.selectList} FROM ${schema.sqlTable} t WHERE ${from} ORDER BY ${order} LIMIT $1`;
    const rows = await this.#changeRows(text, params, after, resourceType);
    return changePage(
      after,
      cursor,
      rows.map((raw) => {
        const record = toRecord(schema, raw);
        const { id, version, updatedAt } = record;
        const change = { resourceType, id, kind: 'upsert' as const, record };
        return { at: updatedAt, id, key: changeKey(id, version, false), change };
      }),
    );
  }

  /** Runs a change query; a cursor whose values do not fit the table is the caller's error. */
  async #changeRows(
    text: string,
    params: unknown[],
    after: ChangeCursor | undefined,
    resourceType: string,
  ): Promise<Record<string, unknown>[]> {
    try {
      return (await this.#sql.query(text, params)).rows;
    } catch (err) {
      if (after !== undefined && sqlStateOf(err)?.startsWith('22')) {
        throw new InvalidInputError('cursor', 'does not belong to this table', {
          side: 'legacy',
          resourceType,
          cause: valueFreeError(err),
        });
      }
      throw err;
    }
  }

  async #mergedChanges(
    schema: TableSchema,
    tombstones: TombstoneSettings,
    after: ChangeCursor | undefined,
    limit: number,
    cursor: string | undefined,
  ): Promise<LegacyChangePage<PostgresTableRow>> {
    const { resourceType } = schema.settings;
    const params =
      after === undefined ? [limit, resourceType] : [limit, resourceType, after.updatedAt, after.seen];
    const text = mergedChangesSql(schema, tombstones, after !== undefined);
    const rows = await this.#changeRows(text, params, after, resourceType);
    return changePage(
      after,
      cursor,
      rows.map((raw) => {
        const id = String(raw.dw_id);
        const change =
          raw.dw_deleted === true
            ? { resourceType, id, kind: 'delete' as const }
            : { resourceType, id, kind: 'upsert' as const, record: toRecord(schema, raw) };
        return { at: String(raw.dw_at), id, key: String(raw.dw_change), change };
      }),
    );
  }

  #schema(resourceType: string): Promise<TableSchema> {
    return this.#schemas.of(resourceType);
  }

  async #read(schema: TableSchema, id: string): Promise<LegacyRecord<PostgresTableRow> | undefined> {
    try {
      const raw = await this.#maybeOne(
        `SELECT ${schema.selectList} FROM ${schema.sqlTable} WHERE ${idMatches(schema)}`,
        [id],
      );
      return raw === undefined ? undefined : toRecord(schema, raw);
    } catch (err) {
      if (await this.#rejectsId(schema, err, id)) return undefined;
      throw err;
    }
  }

  /**
   * Whether `err` came from `id` not being a value of the id column's type, in which case no
   * such record can exist. A data error in the same statement may instead come from a row
   * value, so the id is checked on its own (only on this error path).
   */
  async #rejectsId(schema: TableSchema, err: unknown, id: string): Promise<boolean> {
    if (!sqlStateOf(err)?.startsWith('22')) return false;
    try {
      await this.#sql.query(`SELECT $1::${schema.id.sqlType} AS id`, [id]);
      return false;
    } catch (castError) {
      return sqlStateOf(castError)?.startsWith('22') === true;
    }
  }

  /** A new adapter on the same options, sharing this one's checked settings. */
  #view(): PostgresTableAdapter {
    return PostgresTableAdapter.#viewOf(this);
  }

  static #viewOf(from: PostgresTableAdapter): PostgresTableAdapter {
    viewing = from;
    try {
      const view = new PostgresTableAdapter(from.#options);
      // Tables already found are shared; lookups run on the view's own connection.
      view.#schemas = new TableSchemas(
        from.#settings,
        (settings) => discoverTableSchema(view.#sql, settings),
        from.#schemas.found,
      );
      return view;
    } finally {
      viewing = undefined;
    }
  }

  /**
   * Turns a data (class 22) or integrity (class 23) error into a permanent RejectedError naming
   * the constraint and column; anything else (connection loss, serialisation failure, deadlock)
   * passes through, for the writer to classify (`database-failure.ts`).
   */
  #rejection(err: unknown, resourceType: string, legacyId: string | undefined): unknown {
    const state = sqlStateOf(err);
    if (state === undefined || !(state.startsWith('22') || state.startsWith('23'))) return err;
    const { constraint, column } = err as { constraint?: unknown; column?: unknown };
    return refusedRow(
      err,
      {
        code: state,
        what: `SQLSTATE ${state}`,
        constraint: typeof constraint === 'string' ? constraint : undefined,
        column: typeof column === 'string' ? column : undefined,
      },
      { resourceType, legacyId },
      this.#options.revealValues === true,
    );
  }

  /** Runs a write statement on the database, or through the runner a view was given. */
  #write(
    schema: TableSchema,
    text: string,
    params: readonly unknown[],
    succeedsWithoutRow: boolean,
  ): Promise<SqlResult<Record<string, unknown>>> {
    if (this.#runWrite === undefined) return this.#sql.query(text, params);
    const statement: WriteStatement = { text, params, idColumn: schema.id.sqlName, succeedsWithoutRow };
    return this.#runWrite(statement);
  }

  async #one(text: string, params: readonly unknown[]): Promise<Record<string, unknown>> {
    const row = await this.#maybeOne(text, params);
    if (row === undefined) throw new Error(`Expected one row from: ${text.slice(0, 60)}…`);
    return row;
  }

  async #maybeOne(text: string, params: readonly unknown[]): Promise<Record<string, unknown> | undefined> {
    return (await this.#sql.query(text, params)).rows[0];
  }
}

/** The adapter a view is being made of, while its constructor runs (see `#view`). */
let viewing: PostgresTableAdapter | undefined;

/** The column `readMany` answers each row's requested id in (not a name a legacy table uses). */
const REQUESTED_ID = '__dualwrite_requested_id';

function idMatches(schema: TableSchema): string {
  // Casting the parameter (not the column) keeps the primary key index usable.
  return `${schema.id.sqlName} = $1::${schema.id.sqlType}`;
}

function toRecord(
  schema: TableSchema,
  raw: Readonly<Record<string, unknown>>,
): LegacyRecord<PostgresTableRow> {
  const row = decodeRow(schema, raw);
  const updatedAt = row[schema.updatedAt.name];
  return tableRecord(
    row,
    { id: schema.id.name, version: schema.version.name },
    typeof updatedAt === 'string' ? updatedAt : undefined,
  );
}

function columnNames(schema: TableSchema): string[] {
  return schema.all.map((column) => column.name);
}
