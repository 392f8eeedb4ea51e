import { ConfigurationError } from '../errors.ts';
import type { TableSettings } from './postgres-table-schema.ts';

/**
 * The columns a table adapter manages and writes, found among a table's catalog columns by
 * the settings' names and checked, whatever the database: the id, an integer version, an
 * updated-at of a type that keeps microseconds, and the data columns written (all but those
 * three and generated ones, unless the settings name them).
 *
 * @internal
 * @example
 * ```ts
 * const { id, version, updatedAt, writable } = tableColumns(settings, '`patients`', all, checks);
 * ```
 */
export interface TableColumns<C> {
  readonly id: C;
  readonly version: C;
  readonly updatedAt: C;
  readonly writable: readonly C[];
}

/**
 * What a database accepts as a version and an updated-at column: `undefined` when the column
 * fits, else what it must be (`must be a timestamptz column, not date`).
 *
 * @internal
 * @example
 * ```ts
 * const checks: ColumnChecks<MysqlColumn> = { version: (c) => undefined, updatedAt: (c) => undefined };
 * ```
 */
export interface ColumnChecks<C> {
  readonly version: (column: C) => string | undefined;
  readonly updatedAt: (column: C) => string | undefined;
}

/**
 * Finds and checks the columns a table adapter manages and writes.
 *
 * @internal
 * @param settings - The resource type's table settings.
 * @param relation - The table as messages name it.
 * @param all - Its columns, in order.
 * @param checks - What the database accepts as a version and an updated-at.
 * @returns The id, version, updated-at and writable columns.
 * @throws {@link ConfigurationError} naming `tables.<type>.<option>` for a column that is
 *   missing, of the wrong type, or generated and named to be written.
 * @example
 * ```ts
 * const columns = tableColumns(settings, relation, all, { version: integerOnly, updatedAt: timestamptzOnly });
 * ```
 */
export function tableColumns<C extends { readonly name: string; readonly generated: boolean }>(
  settings: TableSettings,
  relation: string,
  all: readonly C[],
  checks: ColumnChecks<C>,
): TableColumns<C> {
  const path = `tables.${settings.resourceType}`;
  const byName = new Map(all.map((column) => [column.name, column]));
  const find = (option: string, name: string): C => {
    const column = byName.get(name);
    if (column === undefined)
      throw new ConfigurationError(`${path}.${option}`, name, `is not a column of ${relation}`);
    return column;
  };
  const checked = (option: string, name: string, check: (column: C) => string | undefined): C => {
    const column = find(option, name);
    const problem = check(column);
    if (problem !== undefined) throw new ConfigurationError(`${path}.${option}`, column.name, problem);
    return column;
  };
  const id = find('idColumn', settings.idColumn);
  const version = checked('versionColumn', settings.versionColumn, checks.version);
  const updatedAt = checked('updatedAtColumn', settings.updatedAtColumn, checks.updatedAt);
  const managed = new Set([id.name, version.name, updatedAt.name]);
  const writable =
    settings.columns === undefined
      ? all.filter((column) => !managed.has(column.name) && !column.generated)
      : settings.columns.map((name, index) =>
          checked(`columns[${String(index)}]`, name, (column) =>
            column.generated ? 'is a generated column and cannot be written' : undefined,
          ),
        );
  return { id, version, updatedAt, writable };
}
