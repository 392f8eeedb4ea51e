import type { SqlClient, SqlQueryable, SqlResult } from './sql-client.ts';

/**
 * The part of a `pg` query result this library reads. Structural, so the library does not
 * depend on `pg` or `@types/pg` (the same choice kysely makes for its Postgres dialect).
 *
 * @example
 * ```ts
 * const result: PgQueryResult = { rows: [{ n: 1 }], rowCount: 1 };
 * ```
 */
export interface PgQueryResult {
  /** The rows returned. */
  readonly rows: unknown[];
  /** Rows affected (or returned, for a SELECT); `null` for commands that report none. */
  readonly rowCount?: number | null | undefined;
}

/**
 * A `pg` Client, PoolClient or Pool, reduced to its text-and-values `query` overload.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const queryable: PgQueryable = new pg.Pool();
 * ```
 */
export interface PgQueryable {
  /** Runs one statement with positional parameters. */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
}

/**
 * A client checked out of a `pg` Pool: it must be released exactly once.
 *
 * @example
 * ```ts
 * const client: PgPoolClient = await pool.connect();
 * client.release();
 * ```
 */
export interface PgPoolClient extends PgQueryable {
  /** Returns the client to the pool; passing an error (or `true`) destroys it instead. */
  release(destroy?: Error | boolean): void;
}

/**
 * A `pg` Pool as this library uses it: one-off queries on any connection, and `connect()` to
 * hold one connection for a transaction.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const pool: PgPool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * ```
 */
export interface PgPool extends PgQueryable {
  /** Checks a client out of the pool. */
  connect(): Promise<PgPoolClient>;
}

/**
 * Adapts a `pg` Pool to {@link SqlClient}. Plain queries go to the pool (any idle connection);
 * `transaction(fn)` checks out one client, wraps `fn` in BEGIN/COMMIT (ROLLBACK when `fn`
 * throws) and releases the client afterwards. A client whose ROLLBACK fails is destroyed
 * rather than returned, because its session state is unknown.
 *
 * The pool stays the caller's: this adapter never ends it.
 *
 * @param pool - A `pg` Pool (or anything with the same `query` and `connect`).
 * @returns A {@link SqlClient} running on the pool.
 * @example
 * ```ts
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const sql = sqlClientFromPg(pool);
 * await sql.transaction(async (tx) => {
 *   await tx.query('update patients set name = $1 where id = $2', ['Ada', '1']);
 * });
 * await pool.end();
 * ```
 */
export function sqlClientFromPg(pool: PgPool): SqlClient {
  return {
    query: <R>(text: string, params?: readonly unknown[]) => run<R>(pool, text, params),
    transaction: async <T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> => {
      const client = await pool.connect();
      const scope = new TransactionScope(client);
      let destroy: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(scope);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          destroy = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
        throw err;
      } finally {
        scope.end();
        client.release(destroy);
      }
    },
  };
}

/**
 * The queryable handed to a transaction callback. It refuses work once the transaction has
 * ended: a callback that leaks it (a forgotten `await`, a timer) would otherwise run
 * statements on a connection that is back in the pool, maybe inside someone else's transaction.
 */
class TransactionScope implements SqlQueryable {
  readonly #client: PgQueryable;
  #ended = false;

  constructor(client: PgQueryable) {
    this.#client = client;
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    if (this.#ended)
      return Promise.reject(new Error('The transaction has ended; this queryable can no longer be used'));
    return run<R>(this.#client, text, params);
  }

  end(): void {
    this.#ended = true;
  }
}

async function run<R>(
  target: PgQueryable,
  text: string,
  params: readonly unknown[] | undefined,
): Promise<SqlResult<R>> {
  // pg wants a mutable array; copying also keeps it from holding on to the caller's array.
  const result = await target.query(text, params === undefined ? undefined : [...params]);
  return { rows: result.rows as R[], rowCount: result.rowCount };
}
