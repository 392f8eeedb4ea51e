/**
 * What the library's errors may contain: ids, resource types, JSON paths, codes and statuses,
 * never field values. A driver's or server's message can quote the row (PostgreSQL's
 * `invalid input syntax for type date: "1931x"`, its DETAIL `Key (ssn)=(…)` and `Failing row
 * contains (…)`, MariaDB's `Incorrect date value: '1931' for column …`), so before such a
 * message or error reaches an error the library throws, a dead letter's reason or a report, it
 * goes through here. Internal.
 */

/** The fields of a driver error that name things (codes, constraints, columns), never values. */
const NAMING_FIELDS = [
  'code',
  'sqlState',
  'errno',
  'severity',
  'constraint',
  'column',
  'table',
  'schema',
  'dataType',
  'routine',
  'syscall',
] as const;

/**
 * A message with the values it could quote taken out: only its first line is kept (PostgreSQL
 * DETAIL, HINT and statement lines follow it), quoted text becomes `'…'` or `"…"` (identifiers
 * too: telling them from values is not possible in general), and PostgreSQL's
 * `(column)=(value)` and `Failing row contains (…)` lose their values.
 *
 * @param message - A driver's or server's message.
 * @returns The message without values.
 * @example
 * ```ts
 * withoutValues("Incorrect date value: '1931' for column `clinic`.`birth_date` at row 1");
 * // "Incorrect date value: '…' for column `clinic`.`birth_date` at row 1"
 * ```
 */
export function withoutValues(message: string): string {
  let line = message.split(/\r?\n/, 1)[0] ?? '';
  line = line.replace(/Failing row contains \(.*$/, 'Failing row contains (…)');
  line = line.replace(/\)=\(.*$/, ')=(…)');
  for (const quote of ["'", '"']) line = blankQuoted(line, quote);
  return line;
}

/** Replaces everything from the first to the last `quote` of a line (or to its end). */
function blankQuoted(line: string, quote: string): string {
  const first = line.indexOf(quote);
  if (first < 0) return line;
  const last = line.lastIndexOf(quote);
  // A value holding the quote character itself cannot be told from two values: blank it all.
  return last > first
    ? `${line.slice(0, first)}${quote}…${quote}${line.slice(last + 1)}`
    : `${line.slice(0, first)}${quote}…`;
}

/**
 * The SQLSTATE of an exception that code in the database raised with a text of its own
 * (PostgreSQL's `RAISE EXCEPTION`, class P0; MySQL's and MariaDB's `SIGNAL`, SQLSTATE 45000 or
 * error 1644): such a text is written by whoever wrote the trigger, quotes values unquoted
 * ("patient Ann born 1931-04-12 is blocked"), and cannot be cleaned.
 */
function raisedByDatabaseCode(err: Error): string | undefined {
  const { code, sqlState, errno } = err as { code?: unknown; sqlState?: unknown; errno?: unknown };
  if (typeof code === 'string' && /^P0[0-9A-Z]{3}$/.test(code)) return code;
  if (sqlState === '45000' || errno === 1644) return typeof sqlState === 'string' ? sqlState : '45000';
  return undefined;
}

/**
 * A copy of an error that carries no values, to keep as a typed error's `cause`: the same
 * `name`, its message through {@link withoutValues}, the fields that name things (SQLSTATE
 * `code`, `constraint`, `column`, `table`, …) and its stack frames; not `detail`, `hint`,
 * `where`, `parameters`, nor any other property. A value that is not an `Error` becomes an
 * `Error` saying only its kind.
 *
 * @param err - What a driver, a server or a callback threw.
 * @param options - `message: 'dropped'` keeps no part of the message, for errors from code that
 *   is not a driver's, whose messages follow no pattern (a mapping's `BigInt(value)` says
 *   `Cannot convert +1 555-0100 to a BigInt`). An exception raised by a trigger or function
 *   never keeps its text either.
 * @returns An `Error` safe to log, print or send to an error reporter.
 * @example
 * ```ts
 * throw new RejectedError('the legacy table rejected the row', [], { cause: valueFreeError(err) });
 * ```
 */
export function valueFreeError(err: unknown, options: { readonly message?: 'kept' | 'dropped' } = {}): Error {
  if (!(err instanceof Error)) {
    return new Error(`a thrown ${err === null ? 'null' : typeof err}`);
  }
  const raised = raisedByDatabaseCode(err);
  const copy = new Error(
    options.message === 'dropped'
      ? 'its message is not kept: it may quote values'
      : raised === undefined
        ? withoutValues(err.message)
        : `an exception raised by the database's own code (a trigger or function), SQLSTATE ${raised}: its text is not kept, as it may quote values`,
  );
  copy.name = typeof err.name === 'string' ? withoutValues(err.name) : 'Error';
  const source = err as unknown as Record<string, unknown>;
  const target = copy as unknown as Record<string, unknown>;
  for (const field of NAMING_FIELDS) {
    const value = source[field];
    if (typeof value === 'string' || typeof value === 'number') target[field] = value;
  }
  const frames = (err.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  copy.stack = [`${copy.name}: ${copy.message}`, ...frames].join('\n');
  return copy;
}

/**
 * A failure as events may show it: its name and code, never its message (which may quote values).
 *
 * @param error - What was thrown.
 * @returns `Name (code)`, the name alone, or the type of a thrown non-object.
 * @example
 * ```ts
 * describeError(Object.assign(new Error('… (ssn)=(…)'), { code: '23505' })); // 'Error (23505)'
 * ```
 */
export function describeError(error: unknown): string {
  if (typeof error !== 'object' || error === null) return typeof error;
  const { name, code } = error as { name?: unknown; code?: unknown };
  const named = typeof name === 'string' ? name : 'Error';
  return typeof code === 'string' || typeof code === 'number' ? `${named} (${String(code)})` : named;
}

/**
 * What an error says of a legacy id that names no record: its kind and length, never the id.
 * Such an id is the caller's value only (nothing in either system has it), and callers have
 * passed a social security number or a chart number where the id goes.
 *
 * @param id - The id.
 * @returns `a string of 11 characters`, `an empty string`, `undefined`.
 * @example
 * ```ts
 * throw new RejectedError(`Patient: no record has that legacy id (${idShape(legacyId)})`, []);
 * ```
 */
export function idShape(id: unknown): string {
  // Not `kindOf` (option-checks.ts): errors.ts uses this, and option-checks imports errors.ts.
  if (typeof id !== 'string') return id === null || id === undefined ? String(id) : `a ${typeof id}`;
  if (id === '') return 'an empty string';
  const kind = id.trim() === '' ? 'a blank string' : 'a string';
  return `${kind} of ${String(id.length)} character${id.length === 1 ? '' : 's'}`;
}
