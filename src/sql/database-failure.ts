/**
 * The one place that says what a database error means: whether a driver error (from `pg`,
 * PGlite or a MariaDB/MySQL client) is transient, so the same statement may succeed if tried
 * again, or permanent. Every path that talks to a database uses it: the legacy side
 * (`PostgresTableAdapter`, `classifyLegacyError`), the journal (`PostgresStore`), the change
 * feeds and the lease runner. Driver types are not imported: errors are read structurally.
 */
import { DualWriteError, UnavailableError, type ErrorDetails } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import { classifyMysqlError } from './mysql-errors.ts';

/**
 * What a database error means for a retry: `transient` (the connection was lost, the server is
 * shutting down or overloaded, a serialisation failure or deadlock: the same statement may
 * succeed later), `permanent` (the server refused the statement itself), or `undefined` (not a
 * database error).
 *
 * @example
 * ```ts
 * const kind: DatabaseFailureKind | undefined = databaseFailureKind(err);
 * ```
 */
export type DatabaseFailureKind = 'transient' | 'permanent';

/** Node socket error codes that mean "no answer": the server may answer the next attempt. */
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // MariaDB/MySQL clients' own codes for a lost connection.
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
]);

/**
 * Messages `pg` and `pg-pool` give errors of a lost or refused connection, which carry no code
 * ("Connection terminated unexpectedly" when the server closed the socket, e.g. after
 * `pg_terminate_backend`).
 */
const CONNECTION_MESSAGES = [
  /^Connection terminated/,
  /connection error and is not queryable/,
  /^timeout exceeded when trying to connect/,
  /^Connection timeout/,
  /^Query read timeout/,
];

/**
 * SQLSTATEs that are transient: connection exceptions (class 08), insufficient resources
 * (class 53: too many connections, disk full, out of memory), a serialisation failure (40001)
 * or deadlock (40P01), the server shutting down or restarting (57P01 admin shutdown, as
 * `pg_terminate_backend` gives; 57P02 crash shutdown; 57P03 cannot connect now), a statement
 * cancelled by a timeout (57014), and a write sent to a server that became a read-only standby
 * in a failover (25006).
 */
const TRANSIENT_STATES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '57014', '25006']);

/**
 * The SQLSTATE of a driver error: its `code` when that is five characters of digits and
 * capitals (PostgreSQL, PGlite); MariaDB's `sqlState` otherwise.
 *
 * @param err - Whatever was thrown.
 * @returns The SQLSTATE, or `undefined`.
 * @example
 * ```ts
 * if (sqlStateOf(err) === '23505') console.warn('duplicate key');
 * ```
 */
export function sqlStateOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, sqlState } = err as { code?: unknown; sqlState?: unknown };
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  return typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState : undefined;
}

/**
 * Whether a SQLSTATE is transient (see the list above).
 *
 * @param state - A five-character SQLSTATE.
 * @returns Whether the same statement may succeed later.
 * @example
 * ```ts
 * isTransientSqlState('57P01'); // true: the backend was terminated
 * ```
 */
export function isTransientSqlState(state: string): boolean {
  return state.startsWith('08') || state.startsWith('53') || TRANSIENT_STATES.has(state);
}

/**
 * Classifies an error a database client threw.
 *
 * @param err - Whatever was thrown.
 * @returns `transient`, `permanent`, or `undefined` when it is not a database error (no
 *   SQLSTATE, no socket code, not one of `pg`'s connection messages).
 * @example
 * ```ts
 * if (databaseFailureKind(err) === 'transient') retryLater();
 * ```
 */
export function databaseFailureKind(err: unknown): DatabaseFailureKind | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  // MySQL and MariaDB put a lock wait timeout (1205) and a lost connection (2013) under the
  // catch-all SQLSTATE HY000: their error numbers decide first (see mysql-errors.ts).
  if (typeof (err as { errno?: unknown }).errno === 'number' && 'sqlState' in err) {
    if (classifyMysqlError(err).kind === 'transient') return 'transient';
  }
  const state = sqlStateOf(err);
  if (state !== undefined) return isTransientSqlState(state) ? 'transient' : 'permanent';
  const { code, message, errors } = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return 'transient';
  if (typeof message === 'string' && CONNECTION_MESSAGES.some((pattern) => pattern.test(message)))
    return 'transient';
  // Node reports a refused connection to a host with several addresses as an AggregateError.
  if (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e) => databaseFailureKind(e) === 'transient')
  )
    return 'transient';
  return undefined;
}

/**
 * Whether an error is a transient database failure.
 *
 * @param err - Whatever was thrown.
 * @returns Whether the same statement may succeed later.
 * @example
 * ```ts
 * isTransientDatabaseError(new Error('Connection terminated unexpectedly')); // true
 * ```
 */
export function isTransientDatabaseError(err: unknown): boolean {
  return databaseFailureKind(err) === 'transient';
}

/**
 * A short, value-free code for a database error: its SQLSTATE or socket code.
 *
 * @param err - Whatever was thrown.
 * @returns The code, or `undefined`.
 * @example
 * ```ts
 * databaseCodeOf(err); // '57P01'
 * ```
 */
export function databaseCodeOf(err: unknown): string | undefined {
  const state = sqlStateOf(err);
  if (state !== undefined) return state;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code) ? code : undefined;
}

/**
 * Turns what a database client threw into the library's typed error, keeping no values: a
 * transient failure is an {@link UnavailableError} (retried), anything else the error
 * `permanent` makes. The message names what failed and the code; the driver's message follows
 * with quoted values taken out, and the `cause` is a value-free copy of the driver's error
 * (see {@link valueFreeError}). A {@link DualWriteError} is returned as it is.
 *
 * @param err - What the client threw.
 * @param what - What was being done, for the message (`the journal`, `legacy Patient request`).
 * @param details - The record concerned.
 * @param permanent - Makes the error of a permanent failure.
 * @returns The typed error.
 * @example
 * ```ts
 * throw databaseError(err, 'the journal', {}, (message, details) => new JournalError(message, details));
 * ```
 */
export function databaseError(
  err: unknown,
  what: string,
  details: ErrorDetails,
  permanent: (message: string, details: ErrorDetails) => DualWriteError,
): DualWriteError {
  if (err instanceof DualWriteError) return err;
  const code = databaseCodeOf(err);
  const cause = valueFreeError(err);
  const message = `${what} failed${code === undefined ? '' : ` (${code})`}: ${cause.message}`;
  const typed = { ...details, code, cause };
  return isTransientDatabaseError(err) ? new UnavailableError(message, typed) : permanent(message, typed);
}
