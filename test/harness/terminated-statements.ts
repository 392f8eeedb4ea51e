/**
 * Real PostgreSQL errors at chosen statements: a `SqlClient` wrapper that fails the next
 * statement matching a pattern with the error PostgreSQL gives a statement whose backend is
 * terminated (SQLSTATE 57P01, "terminating connection due to administrator command"). The
 * error is a real one: a sacrificial connection runs `pg_sleep` and is terminated with
 * `pg_terminate_backend`; the wrapper throws what `pg` rejected it with. Deterministic, unlike
 * terminating the connections of a pool at some moment.
 */
import pg from 'pg';
import type { SqlClient, SqlQueryable, SqlResult } from '../../src/index.ts';

/** Fails chosen statements of the clients it wraps with a real 57P01. */
export class TerminatedStatements {
  readonly #url: string;
  #armed: { pattern: RegExp; times: number; when: 'before' | 'after' | 'after-commit' }[] = [];
  /** Statements failed so far. */
  failed = 0;

  /** @param url - The PostgreSQL server to take the errors from. */
  constructor(url: string) {
    this.#url = url;
  }

  /**
   * Fails the next `times` statements whose text matches `pattern`.
   *
   * @param pattern - Matched against the statement's text.
   * @param times - How many statements to fail.
   */
  failNext(pattern: RegExp, times = 1): void {
    this.#armed.push({ pattern, times, when: 'before' });
  }

  /**
   * Runs the next `times` top-level statements whose text matches `pattern`, then throws the
   * error of a terminated backend as if the answer had been lost: the statement committed, the
   * caller cannot know it. (Inside a transaction that would roll it back, so only statements
   * outside one are matched.)
   *
   * @param pattern - Matched against the statement's text.
   * @param times - How many statements to run and then fail.
   */
  loseAnswerNext(pattern: RegExp, times = 1): void {
    this.#armed.push({ pattern, times, when: 'after' });
  }

  /**
   * Lets the next `times` transactions in which a statement matching `pattern` runs commit, then
   * throws the error of a terminated backend as if the answer to `COMMIT` had been lost: the
   * transaction's work is durable, the caller cannot know it. (A transaction that fails on its
   * own is left alone, and the arming stays for the next one.)
   *
   * @param pattern - Matched against the text of each statement inside a transaction.
   * @param times - How many transactions to commit and then fail.
   */
  loseCommitAnswerNext(pattern: RegExp, times = 1): void {
    this.#armed.push({ pattern, times, when: 'after-commit' });
  }

  /**
   * A client whose statements (top-level and inside transactions) go to `sql` unless armed.
   *
   * @param sql - The client to wrap.
   * @returns The wrapped client.
   */
  wrap(sql: SqlClient): SqlClient {
    const queryOn =
      (target: SqlQueryable, topLevel: boolean) =>
      async <R>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> => {
        const armed = this.#armed.find(
          (a) =>
            a.times > 0 && (a.when === 'before' || (a.when === 'after' && topLevel)) && a.pattern.test(text),
        );
        if (armed === undefined) return target.query<R>(text, params);
        armed.times -= 1;
        this.failed += 1;
        if (armed.when === 'after') await target.query<R>(text, params);
        throw await this.#terminatedStatementError();
      };
    return {
      query: queryOn(sql, true),
      transaction: async (fn) => {
        let losing: { times: number } | undefined;
        const result = await sql
          .transaction((tx) =>
            fn({
              query: <R>(text: string, params?: readonly unknown[]) => {
                const armed = this.#armed.find(
                  (a) => a.times > 0 && a.when === 'after-commit' && a.pattern.test(text),
                );
                if (armed !== undefined && losing === undefined) {
                  armed.times -= 1;
                  losing = armed;
                }
                return queryOn(tx, false)<R>(text, params);
              },
            }),
          )
          .catch((err: unknown) => {
            // Rolled back on its own: nothing to lose; the arming waits for the next one.
            if (losing !== undefined) losing.times += 1;
            throw err;
          });
        if (losing === undefined) return result;
        this.failed += 1;
        throw await this.#terminatedStatementError();
      },
    };
  }

  async #terminatedStatementError(): Promise<unknown> {
    const victim = new pg.Client({ connectionString: this.#url });
    // The sacrificed connection's own 'error' events are expected here.
    victim.on('error', () => undefined);
    await victim.connect();
    const admin = new pg.Client({ connectionString: this.#url });
    await admin.connect();
    try {
      const { rows } = await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0]!.pid;
      const running = victim.query('SELECT pg_sleep(30)').then(
        () => new Error('pg_sleep was not terminated'),
        (error: unknown) => error,
      );
      // Terminate once the sleep is running, so the error is the statement's.
      for (;;) {
        const { rows: states } = await admin.query<{ state: string }>(
          'SELECT state FROM pg_stat_activity WHERE pid = $1',
          [pid],
        );
        if (states[0]?.state === 'active') break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      return await running;
    } finally {
      await admin.end();
      await victim.end().catch(() => undefined);
    }
  }
}
