import type { Side } from '../errors.ts';
import type { Link } from './link.ts';
import type { DeadLetter, OutboxEntry, OutboxError, OutboxKind } from './outbox.ts';

/*
 * How `PostgresStore` names its tables and reads their rows back into the journal's types.
 *
 * Rows are read in a form both drivers return alike: `pg` gives bigints as strings and parses
 * jsonb, PGlite gives bigints as numbers; and a parsed jsonb `null` cannot be told from SQL
 * NULL. So ids are selected as text, jsonb as text (parsed here: jsonb `null` stays `null`,
 * SQL NULL becomes `undefined`), and timestamps as text in the exact format of
 * `Date#toISOString()` — the format MemoryStore returns, so a link's `syncedAt` round-trips
 * unchanged. Milliseconds, not microseconds, for that reason; ordering never depends on the
 * text, it is done in SQL on the full-precision values.
 *
 * The select lists alias those texts to the column names (`id::text AS id`), and a bare name in
 * ORDER BY means the select list's column: queries using them must qualify ORDER BY names
 * (`ORDER BY o.id`), or ids sort as text ('10' before '9').
 */

/**
 * The schema-qualified names of the store's tables and sequence, quoted for SQL.
 *
 * @example
 * ```ts
 * const tables = journalTables('dualwrite');
 * await sql.query(`SELECT count(*) FROM ${tables.outbox}`);
 * ```
 */
export interface JournalTables {
  /** The schema itself. */
  readonly schema: string;
  /** Links between legacy records and Medplum resources. */
  readonly links: string;
  /** Pending mirrors. */
  readonly outbox: string;
  /** Mirrors that failed for good. */
  readonly deadLetters: string;
  /** Conflicts, divergence, dead letters… as events. */
  readonly events: string;
  /** Change-feed cursors. */
  readonly cursors: string;
  /** The stored cutover plan's default and revision (one row). */
  readonly plan: string;
  /** The stored cutover plan's stages, a row per unit and resource type. */
  readonly planStages: string;
  /** Mirror lag and comparison samples, readiness's evidence. */
  readonly readinessSamples: string;
  /** Which instance polls which feed. */
  readonly feedLeases: string;
  /** Units whose mirroring is paused (migration 27). */
  readonly unitPauses: string;
  /** The processes draining each outbox lane (migration 54). */
  readonly laneHolders: string;
  /** The migrations applied. */
  readonly migrations: string;
  /** The sequence fencing tokens come from. */
  readonly leaseTokens: string;
}

/** Letters, digits and `_` only, so the name never needs escaping inside double quotes. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** PostgreSQL truncates longer names (NAMEDATALEN - 1), which would alias two schemas. */
const MAX_IDENTIFIER_LENGTH = 63;

/**
 * Whether `name` can be a schema name as given: a letter or `_`, then letters, digits or `_`,
 * at most 63 characters. Such a name never needs escaping inside double quotes.
 *
 * @param name - The candidate.
 * @returns Whether it is usable.
 * @example
 * ```ts
 * isSchemaName('dualwrite'); // true
 * isSchemaName('a.b'); // false
 * ```
 */
export function isSchemaName(name: unknown): name is string {
  return typeof name === 'string' && IDENTIFIER.test(name) && name.length <= MAX_IDENTIFIER_LENGTH;
}

/**
 * The tables of the store living in `schema` (already validated by {@link isSchemaName}).
 *
 * @param schema - The schema name.
 * @returns The quoted, qualified names.
 * @example
 * ```ts
 * journalTables('dualwrite').links; // '"dualwrite".links'
 * ```
 */
export function journalTables(schema: string): JournalTables {
  const q = `"${schema}"`;
  return {
    schema: q,
    links: `${q}.links`,
    outbox: `${q}.outbox`,
    deadLetters: `${q}.dead_letters`,
    events: `${q}.events`,
    cursors: `${q}.cursors`,
    plan: `${q}.plan`,
    planStages: `${q}.plan_stages`,
    readinessSamples: `${q}.readiness_samples`,
    feedLeases: `${q}.feed_leases`,
    unitPauses: `${q}.unit_pauses`,
    laneHolders: `${q}.lane_holders`,
    migrations: `${q}.migrations`,
    leaseTokens: `${q}.lease_tokens`,
  };
}

/**
 * A timestamptz column (or expression) as `Date#toISOString()` text, whatever the session's
 * time zone.
 *
 * @param column - The column or expression.
 * @returns An SQL expression.
 * @example
 * ```ts
 * iso('failed_at'); // to_char(failed_at AT TIME ZONE 'UTC', …)
 * ```
 */
export function iso(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/**
 * A millisecond count (a numeric parameter) as an interval.
 *
 * @param param - The placeholder, e.g. `$3`.
 * @returns An SQL expression.
 * @example
 * ```ts
 * `clock_timestamp() + ${millis('$3')}`;
 * ```
 */
export function millis(param: string): string {
  return `(${param}::double precision * interval '1 millisecond')`;
}

/**
 * A value as a jsonb parameter's text: `undefined` becomes SQL NULL. Passed as text and cast in
 * SQL (`$n::text::jsonb`) because `pg` would turn a JavaScript array into a Postgres array.
 *
 * @param value - A JSON-serialisable value.
 * @returns The JSON text, or `null`.
 * @example
 * ```ts
 * await tx.query('INSERT INTO t (doc) VALUES ($1::text::jsonb)', [jsonParam({ a: 1 })]);
 * ```
 */
export function jsonParam(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/**
 * Parses a jsonb column selected as text: SQL NULL becomes `undefined`.
 *
 * @param text - The column's text.
 * @returns The value.
 * @example
 * ```ts
 * parseJson('{"a":1}'); // { a: 1 }
 * ```
 */
export function parseJson(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text);
}

/**
 * SQL NULL as `undefined`, the way the journal's types spell absence.
 *
 * @param value - A column's value.
 * @returns The value, or `undefined` for NULL.
 * @example
 * ```ts
 * optional(row.note); // undefined when the column is NULL
 * ```
 */
export function optional<T>(value: T | null): T | undefined {
  return value ?? undefined;
}

/**
 * The select list of a link row.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<LinkRow>(`SELECT ${LINK_COLUMNS} FROM ${tables.links}`);
 * ```
 */
export const LINK_COLUMNS = `resource_type, legacy_id, medplum_id, legacy_version, medplum_version, content_hash,
  ${iso('synced_at')} AS synced_at, base`;

/**
 * A row selected with {@link LINK_COLUMNS}.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<LinkRow>(`SELECT ${LINK_COLUMNS} FROM ${tables.links}`);
 * ```
 */
export interface LinkRow {
  readonly resource_type: string;
  readonly legacy_id: string;
  readonly medplum_id: string;
  readonly legacy_version: string | null;
  readonly medplum_version: string | null;
  readonly content_hash: string;
  readonly synced_at: string;
  readonly base: unknown;
}

/**
 * Reads a link row.
 *
 * @param row - A row selected with {@link LINK_COLUMNS}.
 * @returns The link.
 * @example
 * ```ts
 * const link = rows[0] === undefined ? undefined : toLink(rows[0]);
 * ```
 */
export function toLink(row: LinkRow): Link {
  return {
    resourceType: row.resource_type,
    legacyId: row.legacy_id,
    medplumId: row.medplum_id,
    legacyVersion: optional(row.legacy_version),
    medplumVersion: optional(row.medplum_version),
    contentHash: row.content_hash,
    syncedAt: row.synced_at,
    base: (row.base ?? undefined) as Link['base'],
  };
}

/**
 * The select (or RETURNING) list of an outbox row, with its lease token.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${tables.outbox}`);
 * ```
 */
export const ENTRY_COLUMNS = `id::text AS id, resource_type, legacy_id, target, unit, kind, base::text AS base, seq,
  attempts, ${iso('next_attempt_at')} AS next_attempt_at, ${iso('hold_until')} AS hold_until,
  last_error::text AS last_error, lease_owner, lease_token::text AS lease_token,
  ${iso('lease_expires_at')} AS lease_expires_at, ${iso('created_at')} AS created_at, applying_hash,
  waiting_for, trace_parent, lane`;

/**
 * A row selected with {@link ENTRY_COLUMNS}.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ${tables.outbox}`);
 * ```
 */
export interface EntryRow {
  readonly id: string;
  readonly resource_type: string;
  readonly legacy_id: string;
  readonly target: Side;
  readonly unit: string;
  readonly kind: OutboxKind;
  readonly base: string | null;
  readonly seq: number;
  readonly attempts: number;
  readonly next_attempt_at: string;
  readonly hold_until: string | null;
  readonly last_error: string | null;
  readonly lease_owner: string | null;
  readonly lease_token: string | null;
  readonly lease_expires_at: string | null;
  readonly created_at: string;
  readonly applying_hash: string | null;
  readonly waiting_for: string | null;
  readonly trace_parent: string | null;
  /** The lane (migration 54); absent from rows read before it. */
  readonly lane?: string | null;
}

/** The columns an outbox entry and a dead letter share: the record, its direction and intent. */
function queuedRecord(
  row: EntryRow | LetterRow,
): Pick<OutboxEntry, 'id' | 'resourceType' | 'legacyId' | 'target' | 'unit' | 'kind' | 'base'> {
  return {
    id: row.id,
    resourceType: row.resource_type,
    legacyId: row.legacy_id,
    target: row.target,
    unit: row.unit,
    kind: row.kind,
    base: parseJson(row.base),
  };
}

/**
 * Reads an outbox row (the token is not part of the entry; a lease carries it).
 *
 * @param row - A row selected with {@link ENTRY_COLUMNS}.
 * @returns The entry.
 * @example
 * ```ts
 * const entries = rows.map(toEntry);
 * ```
 */
export function toEntry(row: EntryRow): OutboxEntry {
  return {
    ...queuedRecord(row),
    seq: row.seq,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    holdUntil: optional(row.hold_until),
    lastError: parseJson(row.last_error) as OutboxError | undefined,
    leaseOwner: optional(row.lease_owner),
    leaseExpiresAt: optional(row.lease_expires_at),
    createdAt: row.created_at,
    applyingHashes: row.applying_hash === null ? [] : row.applying_hash.split(' '),
    waitingFor: optional(row.waiting_for),
    traceParent: optional(row.trace_parent),
    ...(row.lane === null || row.lane === undefined ? {} : { lane: row.lane }),
  };
}

/**
 * The select (or RETURNING) list of a dead-letter row.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<LetterRow>(`SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters}`);
 * ```
 */
export const LETTER_COLUMNS = `id::text AS id, resource_type, legacy_id, target, unit, kind, base::text AS base,
  attempts, reason::text AS reason, ${iso('failed_at')} AS failed_at, status,
  ${iso('resolved_at')} AS resolved_at, note, resolution, repeats, ${iso('last_failed_at')} AS last_failed_at`;

/**
 * A row selected with {@link LETTER_COLUMNS}.
 *
 * @example
 * ```ts
 * const { rows } = await sql.query<LetterRow>(`SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters}`);
 * ```
 */
export interface LetterRow {
  readonly id: string;
  readonly resource_type: string;
  readonly legacy_id: string;
  readonly target: Side;
  readonly unit: string;
  readonly kind: OutboxKind;
  readonly base: string | null;
  readonly attempts: number;
  readonly reason: string;
  readonly failed_at: string;
  readonly status: DeadLetter['status'];
  readonly resolved_at: string | null;
  readonly note: string | null;
  readonly resolution: 'legacy' | 'medplum' | 'merged' | null;
  readonly repeats: number;
  readonly last_failed_at: string | null;
}

/**
 * Reads a dead-letter row.
 *
 * @param row - A row selected with {@link LETTER_COLUMNS}.
 * @returns The dead letter.
 * @example
 * ```ts
 * const letters = rows.map(toDeadLetter);
 * ```
 */
export function toDeadLetter(row: LetterRow): DeadLetter {
  return {
    ...queuedRecord(row),
    attempts: row.attempts,
    reason: parseJson(row.reason) as OutboxError,
    failedAt: row.failed_at,
    repeats: row.repeats,
    lastFailedAt: optional(row.last_failed_at),
    status: row.status,
    resolvedAt: optional(row.resolved_at),
    note: optional(row.note),
    ...(row.resolution === null ? {} : { resolution: row.resolution }),
  };
}

/**
 * Whether `id` can be a row id (a bigserial as text). Ids that cannot are treated as unknown,
 * as MemoryStore treats them, instead of failing the `::bigint` cast.
 *
 * @param id - The id given by a caller.
 * @returns Whether it is a decimal integer in bigint range.
 * @example
 * ```ts
 * if (!isRowId(ticket.id)) return undefined;
 * ```
 */
export function isRowId(id: string): boolean {
  return /^[0-9]{1,18}$/.test(id);
}
