import type { SqlClient, SqlQueryable, SqlResult } from './sql-client.ts';

/**
 * The part of a PGlite query result this library reads. Structural, so the library does not
 * depend on `@electric-sql/pglite`.
 *
 * @example
 * ```ts
 * const result: PgliteQueryResult = { rows: [{ n: 1 }], affectedRows: 0 };
 * ```
 */
export interface PgliteQueryResult {
  /** The rows returned. */
  readonly rows: unknown[];
  /** Rows changed by INSERT/UPDATE/DELETE, summed over the statement (0 for a SELECT). */
  readonly affectedRows?: number | undefined;
  /** The count in the command tag (rows returned by a SELECT, changed by an UPDATE). */
  readonly rowCount?: number | undefined;
}

/**
 * A PGlite instance or transaction, reduced to `query`.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * const queryable: PgliteQueryable = new PGlite();
 * ```
 */
export interface PgliteQueryable {
  /** Runs one statement with positional parameters. */
  query(text: string, params?: unknown[]): Promise<PgliteQueryResult>;
}

/**
 * A PGlite instance as this library uses it.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * const db: PgliteDatabase = new PGlite('./data/dualwrite');
 * ```
 */
export interface PgliteDatabase extends PgliteQueryable {
  /** Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: PgliteQueryable) => Promise<T>): Promise<T>;
}

/**
 * Adapts a PGlite instance to {@link SqlClient}, using PGlite's own `transaction`.
 *
 * PGlite is one Postgres backend with one connection, and it serialises everything run on it.
 * Inside `transaction(fn)`, use only the `tx` passed to `fn`: a query issued on the outer
 * client (or on `db` directly) while the transaction is open waits for the transaction to
 * end, and since the transaction is waiting for that query, the two deadlock. Code that must
 * work on both drivers should therefore never touch the outer client inside a callback, even
 * though a `pg` Pool would happily run it on another connection.
 *
 * The instance stays the caller's: this adapter never closes it.
 *
 * @param db - A PGlite instance (or anything with the same `query` and `transaction`).
 * @returns A {@link SqlClient} running on the instance.
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * const db = new PGlite();
 * const sql = sqlClientFromPglite(db);
 * await sql.transaction(async (tx) => {
 *   await tx.query('insert into patients (name) values ($1)', ['Ada']);
 *   // not: await sql.query(...) — that would wait for this transaction forever
 * });
 * ```
 */
export function sqlClientFromPglite(db: PgliteDatabase): SqlClient {
  return {
    query: <R>(text: string, params?: readonly unknown[]) => run<R>(db, text, params),
    transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> =>
      db.transaction(async (tx) => {
        let ended = false;
        const scope: SqlQueryable = {
          query: <R>(text: string, params?: readonly unknown[]) =>
            ended
              ? Promise.reject(new Error('The transaction has ended; this queryable can no longer be used'))
              : run<R>(tx, text, params),
        };
        try {
          return await fn(scope);
        } finally {
          ended = true;
        }
      }),
  };
}

async function run<R>(
  target: PgliteQueryable,
  text: string,
  params: readonly unknown[] | undefined,
): Promise<SqlResult<R>> {
  const result = await target.query(text, params === undefined ? undefined : [...params]);
  // PGlite runs in this thread and settles in microtasks: without a turn of the event loop
  // between queries, a loop of awaited writes would starve timers and sockets (measured: 2,000
  // inserts with a 10 ms interval firing zero times), and with them the drainer and HTTP.
  await new Promise<void>((resolve) => setImmediate(resolve));
  // `rowCount` matches what pg reports (it also counts SELECT rows); older PGlite builds only
  // have the cumulative `affectedRows`.
  return { rows: result.rows as R[], rowCount: result.rowCount ?? result.affectedRows };
}
