import type { SqlResult } from './sql-client.ts';

/**
 * A legacy write as one data-modifying SQL statement (`INSERT`, `UPDATE` or `DELETE` with a
 * `RETURNING` list), handed by an adapter to whoever runs it. A transactional outbox runs it
 * as a CTE of a larger statement that also records the write's outbox entry: one round trip
 * instead of four (BEGIN, the write, the entry, COMMIT), measured in `npm run bench` as an
 * async create going from 1.9–2.3× a direct insert to 1.40–1.50×. Internal: the contract
 * between `PostgresTableAdapter` and `PostgresStore`.
 *
 * @example
 * ```ts
 * const statement: WriteStatement = {
 *   text: 'INSERT INTO patients (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id, name',
 *   params: ['7', 'Ada'],
 *   idColumn: 'id',
 *   succeedsWithoutRow: false,
 * };
 * ```
 */
export interface WriteStatement {
  /** The statement, `$1`… placeholders; its `RETURNING` list holds the written row. */
  readonly text: string;
  /** Its parameters. */
  readonly params: readonly unknown[];
  /**
   * The `RETURNING` column holding the record's key (never NULL in a written row): the
   * record's legacy id is its text.
   */
  readonly idColumn: string;
  /**
   * Whether the write succeeds although it returned no row (a delete of a record that is
   * already gone, or without a version to check): its entry is owed all the same.
   */
  readonly succeedsWithoutRow: boolean;
}

/**
 * Runs an adapter's write statement and answers with the rows of its `RETURNING` list, as a
 * plain query would.
 *
 * @example
 * ```ts
 * const run: WriteStatementRunner = (statement) => sql.query(statement.text, statement.params);
 * ```
 */
export type WriteStatementRunner = (statement: WriteStatement) => Promise<SqlResult<Record<string, unknown>>>;
