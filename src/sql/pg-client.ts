import { InvalidInputError } from '../errors.ts';
import { createHash } from 'node:crypto';
import { databaseFailureKind, sqlStateOf } from './database-failure.ts';
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
 * A named statement as `pg` takes it: prepared once per connection under `name`, then
 * executed by name.
 *
 * @example
 * ```ts
 * const config: PgQueryConfig = { name: 'dw_1f2e', text: 'select $1::int as n', values: [1] };
 * ```
 */
export interface PgQueryConfig {
  readonly name: string;
  readonly text: string;
  readonly values: unknown[];
}

/**
 * A `pg` Client, PoolClient or Pool, reduced to the two `query` overloads this library uses:
 * text and values, and a named statement.
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
  /** Runs a named statement, preparing it on the connection the first time. */
  query(config: PgQueryConfig): Promise<PgQueryResult>;
}

/**
 * Options of {@link sqlClientFromPg}.
 *
 * @example
 * ```ts
 * // Behind PgBouncer in transaction mode before 1.21, which cannot keep prepared statements:
 * const sql = sqlClientFromPg(pool, { preparedStatements: false });
 * ```
 */
export interface PgClientOptions {
  /**
   * Prepare each parameterised statement once per connection and run it by name after that
   * (up to 256 distinct statements; more run unprepared). Planning the journal's combined
   * write-and-intent statement cost about as much as running it: unprepared, an async create
   * took 1.5x the adapter's INSERT at the median; prepared (both), 1.2x (`npm run bench`).
   * Needs a `pg` Pool or Client (named statements). Turn it off behind a pooler that cannot
   * keep prepared statements (PgBouncer in transaction mode before 1.21); should the server
   * report a prepared statement missing, the client stops preparing by itself.
   * @default true
   */
  readonly preparedStatements?: boolean | undefined;
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
  /** Listens for the client's `error` event (its connection was lost). */
  on?(event: 'error', listener: (err: Error) => void): unknown;
  /** Stops listening. */
  removeListener?(event: 'error', listener: (err: Error) => void): unknown;
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
  /** Listens for the pool's `error` event (an idle connection was lost). */
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

/** Pools given an `error` listener already (one is enough, however many clients wrap a pool). */
const listenedPools = new WeakSet<object>();

/**
 * Without a listener, an `error` event is thrown by Node and ends the process. `pg` emits one
 * when a connection is lost: on the pool for an idle connection, on a client checked out for a
 * transaction whatever it is doing (seen as "Connection terminated unexpectedly" crashing a
 * drainer when its backend was terminated). The pool drops a broken idle connection by itself;
 * a broken transaction's next statement fails and is reported there.
 */
function ignoreLostConnection(_err: Error): void {
  // Nothing to do: the failure reaches the caller through the statement it breaks.
}

/**
 * Adapts a `pg` Pool to {@link SqlClient}. Plain queries go to the pool (any idle connection);
 * `transaction(fn)` checks out one client, wraps `fn` in BEGIN/COMMIT (ROLLBACK when `fn`
 * throws) and releases the client afterwards. A client whose ROLLBACK fails is destroyed
 * rather than returned, because its session state is unknown; so is one whose connection was
 * lost meanwhile.
 *
 * Nothing the database does can crash the process: the adapter listens for `error` on the pool
 * (an idle connection lost: the pool drops it) and on each client it checks out (a connection
 * lost mid-transaction: the next statement, or the commit, fails instead).
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
export function sqlClientFromPg(pool: PgPool, options: PgClientOptions = {}): SqlClient {
  const given = pool as Partial<PgPool> | null | undefined;
  if (typeof given?.query !== 'function' || typeof given.connect !== 'function')
    throw new InvalidInputError('pool', 'must be a pg Pool (with query and connect)');
  if (typeof options !== 'object' || (options as unknown) === null)
    throw new InvalidInputError('options', 'must be an object');
  for (const key of Object.keys(options))
    if (key !== 'preparedStatements')
      throw new InvalidInputError(`options.${key}`, 'is not an option (options: preparedStatements)');
  const { preparedStatements } = options;
  if (preparedStatements !== undefined && typeof preparedStatements !== 'boolean')
    throw new InvalidInputError('options.preparedStatements', 'must be true or false');
  const prepared = options.preparedStatements === false ? undefined : new StatementNames();
  if (typeof pool.on === 'function' && !listenedPools.has(pool)) {
    listenedPools.add(pool);
    pool.on('error', ignoreLostConnection);
  }
  return {
    query: <R>(text: string, params?: readonly unknown[]) => run<R>(pool, prepared, text, params, true),
    transaction: async <T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> => {
      const client = await pool.connect();
      let lost: Error | undefined;
      const onError = (err: Error): void => {
        lost ??= err;
      };
      client.on?.('error', onError);
      const scope = new TransactionScope(client, prepared);
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
        // A lost connection fails every later statement with "not queryable": the error that
        // ended it says why (57P01: the backend was terminated).
        throw lost !== undefined && databaseFailureKind(err) !== undefined ? lost : err;
      } finally {
        scope.end();
        client.removeListener?.('error', onError);
        client.release(destroy ?? lost);
      }
    },
  };
}

/**
 * The names parameterised statements are prepared under: derived from the text, so one text
 * always has one name on every connection, and bounded, so a stream of distinct texts cannot
 * fill the connections' statement caches. A text whose prepared plan the server refuses (its
 * result type changed under it, after an ALTER TABLE) runs unprepared from then on; so does
 * every text once the server has lost a statement the connection had prepared (a pooler
 * between them hands out other sessions, or something ran `DISCARD ALL`).
 */
class StatementNames {
  static readonly LIMIT = 256;
  readonly #names = new Map<string, string | undefined>();
  #off = false;

  nameOf(text: string): string | undefined {
    if (this.#off) return undefined;
    const known = this.#names.get(text);
    if (known !== undefined || this.#names.has(text)) return known;
    if (this.#names.size >= StatementNames.LIMIT) return undefined;
    const name = `dw_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    this.#names.set(text, name);
    return name;
  }

  /** Runs `text` unprepared from now on. */
  refuse(text: string): void {
    this.#names.set(text, undefined);
  }

  /** Runs every text unprepared from now on. */
  refuseAll(): void {
    this.#off = true;
  }
}

class TransactionScope implements SqlQueryable {
  readonly #client: PgQueryable;
  readonly #prepared: StatementNames | undefined;
  #ended = false;

  constructor(client: PgQueryable, prepared: StatementNames | undefined) {
    this.#client = client;
    this.#prepared = prepared;
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    if (this.#ended)
      return Promise.reject(new Error('The transaction has ended; this queryable can no longer be used'));
    return run<R>(this.#client, this.#prepared, text, params, false);
  }

  end(): void {
    this.#ended = true;
  }
}

async function run<R>(
  target: PgQueryable,
  prepared: StatementNames | undefined,
  text: string,
  params: readonly unknown[] | undefined,
  canRetry: boolean,
): Promise<SqlResult<R>> {
  // pg wants a mutable array; copying also keeps it from holding on to the caller's array.
  const values = params === undefined ? undefined : [...params];
  const name = values === undefined || values.length === 0 ? undefined : prepared?.nameOf(text);
  let result: PgQueryResult;
  if (name === undefined || values === undefined) result = await target.query(text, values);
  else {
    try {
      result = await target.query({ name, text, values });
    } catch (err) {
      // 0A000 "cached plan must not change result type": the table changed under the prepared
      // statement. 26000 "prepared statement does not exist": the session is not the one it
      // was prepared in. Outside a transaction, run it unprepared now (inside one, the
      // transaction is aborted already: the error stands, and the next attempt runs unprepared).
      if (isStalePlan(err)) prepared?.refuse(text);
      else if (sqlStateOf(err) === '26000') prepared?.refuseAll();
      else throw err;
      if (!canRetry) throw err;
      result = await target.query(text, values);
    }
  }
  return { rows: result.rows as R[], rowCount: result.rowCount };
}

function isStalePlan(err: unknown): boolean {
  return (
    sqlStateOf(err) === '0A000' && String((err as { message?: unknown }).message).includes('cached plan')
  );
}
