import { ConfigurationError } from '../errors.ts';
import { tableColumns } from './table-columns.ts';
import type { SqlQueryable } from '../sql/sql-client.ts';

/**
 * What {@link PostgresTableAdapter} learns about one legacy table from the catalog, and how it
 * turns that table's values into rows that read the same through `pg` and PGlite.
 *
 * The two drivers disagree on several types (measured with pg 8 and PGlite 0.5): `bigint` is a
 * string in pg and a number in PGlite, `bytea` a Buffer or a Uint8Array, `interval` an object
 * or a string, and `timestamp`/`date` become a JS Date that pg builds in the process's time
 * zone. Rows are hashed and compared across drivers, so for those types the server formats
 * the value (see {@link columnCodec}) and both drivers receive the same text.
 *
 * @internal
 */

/**
 * A table's settings after validation, with defaults applied.
 *
 * @example
 * ```ts
 * const settings: TableSettings = {
 *   resourceType: 'Patient', table: 'patients', schema: undefined, idColumn: 'id',
 *   versionColumn: 'version', updatedAtColumn: 'updated_at', columns: undefined, idGeneration: undefined,
 * };
 * ```
 */
export interface TableSettings {
  readonly resourceType: string;
  readonly table: string;
  readonly schema: string | undefined;
  readonly idColumn: string;
  readonly versionColumn: string;
  readonly updatedAtColumn: string;
  readonly columns: readonly string[] | undefined;
  readonly idGeneration: 'caller' | 'database' | undefined;
}

/**
 * One column of a discovered table.
 *
 * @example
 * ```ts
 * const params = [column.encode(value)];
 * const text = `UPDATE t SET ${column.sqlName} = ${column.placeholder(1)}`;
 * ```
 */
export interface TableColumn {
  /** The column name as the catalog spells it. */
  readonly name: string;
  /** The name, double-quoted for SQL. */
  readonly sqlName: string;
  /** The (underlying) type, quoted and schema-qualified, for casts: `"pg_catalog"."int4"`. */
  readonly sqlType: string;
  /** The type name without schema (`int4`, `_int8`, `timestamptz`). */
  readonly typeName: string;
  /** Whether an INSERT that omits it gets a value (a default, serial or identity). */
  readonly hasDefault: boolean;
  /** The column's default expression as the catalog states it (`nextval('t_id_seq'::regclass)`). */
  readonly defaultSql: string | null;
  /** An identity column (its values come from an implicit sequence). */
  readonly identity: boolean;
  /** `GENERATED ALWAYS AS IDENTITY`: an explicit value needs `OVERRIDING SYSTEM VALUE`. */
  readonly identityAlways: boolean;
  /** A generated (computed) column, never written. */
  readonly generated: boolean;
  /** The expression that reads it in a select list (normalised, aliased to its name). */
  readonly selectSql: string;
  /** Turns what the driver returned into the row value. */
  readonly decode: (value: unknown) => unknown;
  /** The placeholder for a written value, with the cast its encoding needs. */
  readonly placeholder: (index: number) => string;
  /** Turns a row value into a query parameter. */
  readonly encode: (value: unknown) => unknown;
}

/**
 * A legacy table as the adapter writes it.
 *
 * @example
 * ```ts
 * const text = `SELECT ${schema.selectList} FROM ${schema.sqlTable} WHERE ${schema.id.sqlName} = $1::${schema.id.sqlType}`;
 * ```
 */
export interface TableSchema {
  readonly settings: TableSettings;
  /** `"schema"."table"`. */
  readonly sqlTable: string;
  readonly id: TableColumn;
  readonly version: TableColumn;
  readonly updatedAt: TableColumn;
  /** Data columns the adapter writes from a row (never id, version, updated-at or generated). */
  readonly writable: readonly TableColumn[];
  /** Every column, in table order: the select list's and the returned row's order. */
  readonly all: readonly TableColumn[];
  /** `idGeneration` resolved against the id column's default. */
  readonly idGeneration: 'caller' | 'database';
  /** The normalised select list (also used for `RETURNING`). */
  readonly selectList: string;
}

interface CatalogColumn {
  readonly column_name: string;
  readonly udt_schema: string;
  readonly udt_name: string;
  readonly column_default: string | null;
  readonly is_identity: string | null;
  readonly identity_generation: string | null;
  readonly is_generated: string | null;
}

/** @internal The integer types: a version column's, and an integer key's (whose given ids must be canonical). */
export const INTEGER_TYPES: ReadonlySet<string> = new Set(['int2', 'int4', 'int8']);

/**
 * Reads the table's columns from `information_schema` and checks them against the settings.
 *
 * @param sql - Where the table lives.
 * @param settings - The validated settings of one resource type.
 * @returns The table as the adapter writes it.
 * @throws {@link ConfigurationError} when the table or a named column is missing or unfit.
 * @example
 * ```ts
 * const schema = await discoverTableSchema(sql, settings);
 * await sql.query(`SELECT ${schema.selectList} FROM ${schema.sqlTable}`);
 * ```
 */
export async function discoverTableSchema(sql: SqlQueryable, settings: TableSettings): Promise<TableSchema> {
  const path = `tables.${settings.resourceType}`;
  const relation =
    settings.schema === undefined ? quoteIdent(settings.table) : qualify(settings.schema, settings.table);
  // Resolving through to_regclass finds the table the way an unqualified query would (by
  // search_path); every statement then names the schema, so a later search_path change cannot
  // redirect writes.
  const located = await sql.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS table
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = pg_catalog.to_regclass($1)`,
    [relation],
  );
  const where = located.rows[0];
  if (where === undefined) {
    throw new ConfigurationError(
      `${path}.table`,
      settings.table,
      `no such table or view is visible (looked up ${relation})`,
    );
  }
  const catalog = await sql.query<CatalogColumn>(
    `SELECT column_name, udt_schema, udt_name, column_default, is_identity, identity_generation, is_generated
       FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = $2
      ORDER BY ordinal_position`,
    [where.schema, where.table],
  );
  const all = catalog.rows.map(toColumn);
  const { id, version, updatedAt, writable } = tableColumns(settings, relation, all, {
    version: (column) =>
      INTEGER_TYPES.has(column.typeName)
        ? undefined
        : `must be a smallint, integer or bigint column, not ${column.typeName}`,
    updatedAt: (column) =>
      column.typeName === 'timestamptz' ? undefined : `must be a timestamptz column, not ${column.typeName}`,
  });

  const idGeneration = settings.idGeneration ?? (id.hasDefault ? 'database' : 'caller');
  if (idGeneration === 'database' && !id.hasDefault) {
    throw new ConfigurationError(
      `${path}.idGeneration`,
      idGeneration,
      `${id.name} has no default, serial or identity to generate ids from`,
    );
  }

  return {
    settings,
    sqlTable: qualify(where.schema, where.table),
    id,
    version,
    updatedAt,
    writable,
    all,
    idGeneration,
    selectList: all.map((column) => column.selectSql).join(', '),
  };
}

/**
 * Builds a row from what the driver returned: the table's columns in table order (so two
 * drivers yield the same key order, which a content hash may depend on), each decoded.
 *
 * @param schema - The table.
 * @param raw - The driver's row for the schema's select list.
 * @returns The normalised row.
 * @example
 * ```ts
 * const rows = (await sql.query(`SELECT ${schema.selectList} FROM ${schema.sqlTable}`)).rows;
 * const normalised = rows.map((raw) => decodeRow(schema, raw));
 * ```
 */
export function decodeRow(
  schema: TableSchema,
  raw: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  // fromEntries defines own properties, so a column named __proto__ cannot reach the prototype.
  return Object.fromEntries(
    schema.all.map((column) => [column.name, column.decode(raw[column.name] ?? null)]),
  );
}

/**
 * Double-quotes an identifier, doubling embedded quotes. Names from user options are
 * validated first; names from the catalog may hold any character and are safe once quoted.
 *
 * @param name - The identifier.
 * @returns The quoted identifier.
 * @example
 * ```ts
 * quoteIdent('order'); // '"order"', usable although ORDER is a keyword
 * ```
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

function toColumn(row: CatalogColumn): TableColumn {
  const sqlName = quoteIdent(row.column_name);
  const codec = columnCodec(row.udt_name, sqlName);
  const sqlType = qualify(row.udt_schema, row.udt_name);
  return {
    name: row.column_name,
    sqlName,
    sqlType,
    typeName: row.udt_name,
    hasDefault: row.column_default !== null || row.is_identity === 'YES',
    defaultSql: row.column_default,
    identity: row.is_identity === 'YES',
    identityAlways: row.is_identity === 'YES' && row.identity_generation === 'ALWAYS',
    generated: row.is_generated === 'ALWAYS',
    selectSql: `${codec.select} AS ${sqlName}`,
    decode: codec.decode,
    placeholder: codec.writesText ? (index) => `$${index}::text::${sqlType}` : (index) => `$${index}`,
    encode: codec.encode,
  };
}

interface ColumnCodec {
  readonly select: string;
  readonly decode: (value: unknown) => unknown;
  readonly writesText: boolean;
  readonly encode: (value: unknown) => unknown;
}

// Microseconds keep the stored value exact (so a row read and written back is unchanged, and a
// feed cursor compares exactly); `decode` trims `.123000` to `.123`, so a value with millisecond
// precision reads exactly as Date#toISOString() writes it.
const ISO_DATETIME = `'YYYY-MM-DD"T"HH24:MI:SS.US'`;

/**
 * How one column type is read and written. Values outside years 1–9999 (and ±infinity) fall
 * back to PostgreSQL's own text output, because `to_char` would drop the era.
 */
function columnCodec(typeName: string, c: string): ColumnCodec {
  const plain: ColumnCodec = { select: c, decode: normaliseValue, writesText: false, encode: encodeParam };
  const inCalendar = `pg_catalog.date_part('year', ${c}) BETWEEN 1 AND 9999`;
  switch (typeName) {
    case 'timestamptz':
      return {
        ...plain,
        select: `CASE WHEN ${inCalendar} THEN pg_catalog.to_char(${c} AT TIME ZONE 'UTC', ${ISO_DATETIME}) || 'Z' ELSE ${c}::text END`,
        decode: trimMicroseconds,
      };
    case 'timestamp':
      return {
        ...plain,
        select: `CASE WHEN ${inCalendar} THEN pg_catalog.to_char(${c}, ${ISO_DATETIME}) ELSE ${c}::text END`,
        decode: trimMicroseconds,
      };
    case 'date':
      return {
        ...plain,
        select: `CASE WHEN ${inCalendar} THEN pg_catalog.to_char(${c}, 'YYYY-MM-DD') ELSE ${c}::text END`,
      };
    case 'int8':
    case 'numeric':
    case 'interval':
      return { ...plain, select: `${c}::text` };
    case '_int8':
    case '_numeric':
    case '_interval':
      return { ...plain, select: `${c}::text[]` };
    case 'bytea':
      // pg sends a Buffer and PGlite refuses a string for a bytea parameter; both accept the
      // `\x` hex text form when the parameter is typed text.
      return {
        select: `pg_catalog.encode(${c}, 'hex')`,
        decode: (value) => (typeof value === 'string' ? `\\x${value}` : value),
        writesText: true,
        encode: (value) => (value instanceof Uint8Array ? toHex(value) : encodeParam(value)),
      };
    case 'json':
    case 'jsonb':
      // pg turns a JS array parameter into a Postgres array literal, which a json column
      // rejects; sending JSON text works the same on both drivers.
      return {
        ...plain,
        writesText: true,
        encode: (value) => (value === null || value === undefined ? null : JSON.stringify(value)),
      };
    default:
      return plain;
  }
}

function trimMicroseconds(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/(\.\d{3})000(Z?)$/, '$1$2') : normaliseValue(value);
}

/**
 * The backstop for types without a codec (arrays of timestamps, user-defined types): Dates
 * become ISO strings and byte arrays `\x` hex, at any depth of an array.
 */
function normaliseValue(value: unknown): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (value instanceof Uint8Array) return toHex(value);
  if (Array.isArray(value)) return value.map(normaliseValue);
  return value;
}

function encodeParam(value: unknown): unknown {
  // pg writes a Date in the process's time zone and PGlite in UTC; an ISO string is the same
  // instant for both (and the same wall time for a timestamp without time zone).
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return toHex(value);
  if (Array.isArray(value)) return value.map(encodeParam);
  return value === undefined ? null : value;
}

function toHex(bytes: Uint8Array): string {
  return `\\x${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}
