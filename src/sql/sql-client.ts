/**
 * The smallest SQL surface the library needs, met by a `pg` Pool and by PGlite through
 * {@link sqlClientFromPg} and {@link sqlClientFromPglite}. The core never imports either
 * driver's types: these are structural.
 */

/**
 * A result row set.
 *
 * @example
 * ```ts
 * const result: SqlResult<{ n: number }> = { rows: [{ n: 1 }] };
 * ```
 */
export interface SqlResult<R> {
  /** The rows returned, in order. */
  readonly rows: R[];
  /** Rows written by an INSERT/UPDATE/DELETE, when the driver reports it. */
  readonly rowCount?: number | null | undefined;
}

/**
 * Runs parameterised SQL (`$1`, `$2`, … placeholders, PostgreSQL dialect).
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<{ now: string }>('select now()::text as now');
 * ```
 */
export interface SqlQueryable {
  /** Runs one statement with positional parameters. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
}

/**
 * A queryable that can also run a callback in one transaction: committed when the callback
 * resolves, rolled back when it throws.
 *
 * @example
 * ```ts
 * await sql.transaction(async (tx) => {
 *   await tx.query('insert into t(id) values ($1)', ['a']);
 * });
 * ```
 */
export interface SqlClient extends SqlQueryable {
  /** Runs `fn` inside a transaction on one connection. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
}
