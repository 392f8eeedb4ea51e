/**
 * What an error from MySQL or MariaDB (through `mysql2`) means for a write: worth another
 * attempt, refused for good by the data, or neither (left to the caller). The PostgreSQL
 * counterpart reads SQLSTATEs; MySQL's own error numbers are finer (a deadlock and a lock wait
 * timeout share SQLSTATE 40001 and HY000), so they are read first.
 *
 * @packageDocumentation
 */

/**
 * Server and client error numbers after which the same statement may succeed: the transaction
 * was rolled back to break a deadlock or gave up waiting for a lock, the connection or the
 * server went away, or the server is out of connections.
 */
const TRANSIENT_ERRNOS: ReadonlyMap<number, string> = new Map([
  [1040, 'ER_CON_COUNT_ERROR'],
  [1053, 'ER_SERVER_SHUTDOWN'],
  [1158, 'ER_NET_READ_ERROR'],
  [1159, 'ER_NET_READ_INTERRUPTED'],
  [1160, 'ER_NET_ERROR_ON_WRITE'],
  [1161, 'ER_NET_WRITE_INTERRUPTED'],
  [1205, 'ER_LOCK_WAIT_TIMEOUT'],
  [1213, 'ER_LOCK_DEADLOCK'],
  [1614, 'ER_XA_RBDEADLOCK'],
  [1927, 'ER_CONNECTION_KILLED'],
  [2002, 'CR_CONNECTION_ERROR'],
  [2003, 'CR_CONN_HOST_ERROR'],
  [2006, 'CR_SERVER_GONE_ERROR'],
  [2013, 'CR_SERVER_LOST'],
  [4031, 'ER_CLIENT_INTERACTION_TIMEOUT'],
]);

/** `mysql2`'s own codes for a connection it lost or could not use (no server errno). */
const TRANSIENT_DRIVER_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
]);

/**
 * Errors whose number means a refused row whatever the SQLSTATE says, with the name the server
 * gives them. mysql2's code table is MySQL's: it names MariaDB's 4025 (a CHECK constraint failed,
 * SQLSTATE 23000) `ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE`, and MySQL files its own CHECK
 * failure (3819) under the catch-all SQLSTATE HY000.
 */
const CONSTRAINT_ERRNOS: ReadonlyMap<number, string> = new Map([
  [4025, 'ER_CONSTRAINT_FAILED'],
  [3819, 'ER_CHECK_CONSTRAINT_VIOLATED'],
]);

/** The primary key's name in MySQL and MariaDB duplicate-key errors. */
const PRIMARY_KEY = 'PRIMARY';

/**
 * How a MySQL error is to be handled.
 *
 * - `transient`: retry (deadlock, lock wait timeout, lost connection, shutdown, …).
 * - `duplicate-key`: the row's primary key is taken (error 1062 on `PRIMARY`).
 * - `rejected`: the data was refused (SQLSTATE class 22 or 23: NOT NULL, a too-long value, a
 *   foreign key, a CHECK or another unique key); retrying cannot help.
 * - `unknown`: none of these; the caller decides.
 *
 * @example
 * ```ts
 * const kind: MysqlErrorKind = classifyMysqlError(err).kind;
 * ```
 */
export type MysqlErrorKind = 'transient' | 'duplicate-key' | 'rejected' | 'unknown';

/**
 * A MySQL error read without its message (the server's text can quote the row's values).
 *
 * @example
 * ```ts
 * const { kind, errno, code } = classifyMysqlError(err); // 'transient', 1213, 'ER_LOCK_DEADLOCK'
 * ```
 */
export interface MysqlErrorClass {
  /** How to handle it. */
  readonly kind: MysqlErrorKind;
  /** The server's (or client library's) error number, when there is one. */
  readonly errno: number | undefined;
  /** The symbolic code (`ER_LOCK_DEADLOCK`), when known. */
  readonly code: string | undefined;
  /** The SQLSTATE, when the server sent one. */
  readonly sqlState: string | undefined;
}

/**
 * Classifies an error thrown by `mysql2` (or any error of that shape: `errno`, `code`,
 * `sqlState`, `fatal`).
 *
 * @param err - What the driver threw.
 * @returns The class, and the error's number and codes.
 * @example
 * ```ts
 * try {
 *   await pool.query('UPDATE patients SET name = ? WHERE id = ?', ['Ada', 7]);
 * } catch (err) {
 *   if (classifyMysqlError(err).kind === 'transient') {
 *     // try again later
 *   }
 * }
 * ```
 */
export function classifyMysqlError(err: unknown): MysqlErrorClass {
  const record = typeof err === 'object' && err !== null ? (err as Record<string, unknown>) : {};
  const errno = typeof record.errno === 'number' ? record.errno : undefined;
  const driverCode = typeof record.code === 'string' ? record.code : undefined;
  const sqlState = typeof record.sqlState === 'string' ? record.sqlState : undefined;
  const code =
    (errno === undefined ? undefined : (TRANSIENT_ERRNOS.get(errno) ?? CONSTRAINT_ERRNOS.get(errno))) ??
    driverCode;
  const of = (kind: MysqlErrorKind): MysqlErrorClass => ({ kind, errno, code, sqlState });
  if (errno !== undefined && TRANSIENT_ERRNOS.has(errno)) return of('transient');
  // A fatal driver error means the connection is unusable; a new one may work.
  if (record.fatal === true || (driverCode !== undefined && TRANSIENT_DRIVER_CODES.has(driverCode)))
    return of('transient');
  if (errno === 1062 && duplicateKeyName(record) === PRIMARY_KEY) return of('duplicate-key');
  if (errno !== undefined && CONSTRAINT_ERRNOS.has(errno)) return of('rejected');
  if (sqlState !== undefined && (sqlState.startsWith('22') || sqlState.startsWith('23')))
    return of('rejected');
  return of('unknown');
}

/**
 * The key a duplicate-entry error names: MySQL 8 says `for key 'table.PRIMARY'`, MariaDB and
 * MySQL 5.7 `for key 'PRIMARY'`. Only the key's name is read from the message, never the value.
 */
function duplicateKeyName(record: Record<string, unknown>): string | undefined {
  const message = typeof record.sqlMessage === 'string' ? record.sqlMessage : record.message;
  if (typeof message !== 'string') return undefined;
  const key = /for key '([^']*)'$/.exec(message)?.[1];
  return key?.split('.').at(-1);
}
