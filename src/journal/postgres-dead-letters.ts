import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { DeadLetter, DeadLetterFilter, OutboxError, OutboxTicket } from './outbox.ts';
import type { NewDeadLetter } from './sync-store.ts';
import { commit, intend } from './postgres-outbox.ts';
import {
  LETTER_COLUMNS,
  isRowId,
  jsonParam,
  toDeadLetter,
  type JournalTables,
  type LetterRow,
} from './postgres-tables.ts';

/*
 * The dead-letter queue's SQL for `PostgresStore`. Letters are never deleted: an operator's
 * retry or discard closes one (status, time, note), so the table is also the audit trail.
 * Closing is a conditional UPDATE (`WHERE status = 'open'`), so two operators acting on one
 * letter at once cannot both succeed: the second sees it closed.
 */

/**
 * Moves a leased entry to the dead-letter queue (inside the finishing transaction, which holds
 * the entry's lock): copies it with one more attempt, the reason and the lease's token, then
 * deletes it. When the record already has an open letter for the same failure (same target,
 * kind and reason), that letter counts the repeat instead (`repeats`, `last_failed_at`, and the
 * newest unit, base, attempts and token), so one failure is one letter however often the record
 * is queued again. The check and the write run under the record's advisory lock, the one
 * {@link openDeadLetter} takes.
 *
 * @param tx - The finishing transaction.
 * @param tables - The store's tables.
 * @param lease - The entry's id, its record and the lease's token.
 * @param reason - Why it failed for good.
 * @param keepBase - Whether the letter keeps the entry's base (the caller's copy of the record).
 * @returns When moved.
 * @example
 * ```ts
 * await finish(sql, tables, lease, (tx) => moveToDeadLetters(tx, tables, { entryId: lease.entry.id, token: lease.token, resourceType: 'Patient', legacyId: '42' }, error));
 * ```
 */
export async function moveToDeadLetters(
  tx: SqlQueryable,
  tables: JournalTables,
  lease: {
    readonly entryId: string;
    readonly token: string;
    readonly resourceType: string;
    readonly legacyId: string;
  },
  reason: OutboxError,
  keepBase = true,
): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))`, [
    recordLockKey(tables, lease.resourceType, lease.legacyId),
  ]);
  await tx.query(
    `WITH gone AS (DELETE FROM ${tables.outbox} WHERE id = $1::bigint RETURNING *),
     same AS (
       SELECT d.id FROM ${tables.deadLetters} d JOIN gone g
         ON d.resource_type = g.resource_type AND d.legacy_id = g.legacy_id AND d.target = g.target
        AND d.kind = g.kind
       WHERE d.status = 'open' AND d.reason = $2::text::jsonb
       ORDER BY d.id LIMIT 1
     ), repeated AS (
       UPDATE ${tables.deadLetters} d
          SET repeats = d.repeats + 1, last_failed_at = clock_timestamp(), unit = g.unit,
              base = CASE WHEN $3::boolean THEN g.base END, attempts = g.attempts + 1, lease_token = $4::bigint
         FROM gone g
        WHERE d.id = (SELECT id FROM same)
       RETURNING d.id
     )
     INSERT INTO ${tables.deadLetters}
       (resource_type, legacy_id, target, unit, kind, base, attempts, reason, lease_token)
     SELECT resource_type, legacy_id, target, unit, kind, CASE WHEN $3::boolean THEN base END, attempts + 1,
       $2::text::jsonb, $4::bigint FROM gone WHERE NOT EXISTS (SELECT 1 FROM same)`,
    [lease.entryId, jsonParam(reason), keepBase, tokenOf(lease.token)],
  );
}

/** The key of a record's advisory lock over its letters (a key space of its own). */
function recordLockKey(tables: JournalTables, resourceType: string, legacyId: string): string {
  return `${tables.deadLetters}:${resourceType}/${legacyId}`;
}

/**
 * Whether a lease already moved its entry to the dead-letter queue: the letter carries its token
 * (an earlier try of the same recording committed, and only its answer was lost).
 *
 * @param tx - The finishing transaction.
 * @param tables - The store's tables.
 * @param token - The lease's token.
 * @returns Whether a letter of that lease exists.
 * @example
 * ```ts
 * await finish(sql, tables, lease, move, (tx) => letteredBy(tx, tables, lease.token));
 * ```
 */
export async function letteredBy(tx: SqlQueryable, tables: JournalTables, token: string): Promise<boolean> {
  const bigint = tokenOf(token);
  if (bigint === null) return false;
  const { rows } = await tx.query(
    `SELECT 1 FROM ${tables.deadLetters} WHERE lease_token = $1::bigint LIMIT 1`,
    [bigint],
  );
  return rows.length > 0;
}

/** A lease token as the column keeps it: the journal's tokens are integers from one sequence. */
function tokenOf(token: string): string | null {
  return /^[0-9]{1,18}$/.test(token) ? token : null;
}

/**
 * Dead letters, oldest first; every filter given must match.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param filter - Status (`open` unless given), unit, resource type, target, reason, limit.
 * @returns The letters.
 * @example
 * ```ts
 * const open = await listDeadLetters(sql, tables, { status: 'open', unit: 'north', limit: 50 });
 * ```
 */
export async function listDeadLetters(
  q: SqlQueryable,
  tables: JournalTables,
  filter: DeadLetterFilter,
): Promise<DeadLetter[]> {
  const { rows } = await q.query<LetterRow>(
    `SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters} d
     WHERE ($1 = 'all' OR d.status = $1) AND ($3::text IS NULL OR d.unit = $3)
       AND ($4::text IS NULL OR d.resource_type = $4) AND ($5::text IS NULL OR d.target = $5)
       AND ($6::text IS NULL OR d.reason->>'name' = $6)
     ORDER BY d.id LIMIT $2`,
    [
      filter.status ?? 'open',
      filter.limit ?? null,
      filter.unit ?? null,
      filter.resourceType ?? null,
      filter.target ?? null,
      filter.reason ?? null,
    ],
  );
  return rows.map(toDeadLetter);
}

/**
 * The open dead letter of a record, either target (the newest when there are two).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param resourceType - The record's type.
 * @param legacyId - The record's legacy id.
 * @returns The letter, or `undefined`.
 * @example
 * ```ts
 * const letter = await findDeadLetter(sql, tables, 'Patient', '42');
 * ```
 */
export async function findDeadLetter(
  q: SqlQueryable,
  tables: JournalTables,
  resourceType: string,
  legacyId: string,
): Promise<DeadLetter | undefined> {
  const { rows } = await q.query<LetterRow>(
    `SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters} d
     WHERE d.resource_type = $1 AND d.legacy_id = $2 AND d.status = 'open'
     ORDER BY d.id DESC LIMIT 1`,
    [resourceType, legacyId],
  );
  const row = rows[0];
  return row === undefined ? undefined : toDeadLetter(row);
}

/**
 * Reads one letter by id, whatever its status.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param id - The letter's id.
 * @returns The letter; `undefined` when there is none (or the id is not a number).
 * @example
 * ```ts
 * const letter = await getDeadLetter(sql, tables, '12');
 * ```
 */
export async function getDeadLetter(
  q: SqlQueryable,
  tables: JournalTables,
  id: string,
): Promise<DeadLetter | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined;
  const { rows } = await q.query<LetterRow>(
    `SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters} d WHERE d.id = $1::bigint`,
    [id],
  );
  return rows[0] === undefined ? undefined : toDeadLetter(rows[0]);
}

/**
 * Closes an open letter as retried and queues its record again as a claimable entry (an intent
 * with no hold, committed), all in one transaction: either the letter is closed and the entry
 * queued, or neither. When the record already has a pending entry (a newer write), the retry
 * coalesces into it like any intent.
 *
 * @param sql - The database.
 * @param tables - The store's tables.
 * @param id - The letter's id.
 * @returns The new intent's ticket; `undefined` when no open letter has that id.
 * @example
 * ```ts
 * const ticket = await retryDeadLetter(sql, tables, '12');
 * ```
 */
export async function retryDeadLetter(
  sql: SqlClient,
  tables: JournalTables,
  id: string,
): Promise<OutboxTicket | undefined> {
  if (!isRowId(id)) return undefined;
  return sql.transaction(async (tx) => {
    const { rows } = await tx.query<LetterRow>(
      `UPDATE ${tables.deadLetters} SET status = 'retried', resolved_at = clock_timestamp()
       WHERE id = $1::bigint AND status = 'open'
       RETURNING ${LETTER_COLUMNS}`,
      [id],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const letter = toDeadLetter(row);
    const ticket = await intend(tx, tables, letter, 0);
    await commit(tx, tables, ticket);
    return ticket;
  });
}

/**
 * Closes an open letter as discarded, with the operator's note.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param id - The letter's id.
 * @param note - Why it was discarded.
 * @returns Whether an open letter was closed.
 * @example
 * ```ts
 * await discardDeadLetter(sql, tables, '12', 'record deleted in both systems');
 * ```
 */
export async function discardDeadLetter(
  q: SqlQueryable,
  tables: JournalTables,
  id: string,
  note: string,
): Promise<boolean> {
  if (!isRowId(id)) return false;
  const { rows } = await q.query(
    `UPDATE ${tables.deadLetters} SET status = 'discarded', resolved_at = clock_timestamp(), note = $2
     WHERE id = $1::bigint AND status = 'open'
     RETURNING id`,
    [id, note],
  );
  return rows.length > 0;
}

/**
 * Closes an open letter as resolved, with the operator's note and what decided it.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param id - The letter's id.
 * @param note - Why it was resolved so.
 * @param resolution - The side that won, or `merged`.
 * @returns Whether an open letter was closed.
 * @example
 * ```ts
 * await resolveDeadLetter(sql, tables, '12', 'legacy confirmed', 'legacy');
 * ```
 */
export async function resolveDeadLetter(
  q: SqlQueryable,
  tables: JournalTables,
  id: string,
  note: string,
  resolution: 'legacy' | 'medplum' | 'merged',
): Promise<boolean> {
  if (!isRowId(id)) return false;
  const { rows } = await q.query(
    `UPDATE ${tables.deadLetters}
     SET status = 'resolved', resolved_at = clock_timestamp(), note = $2, resolution = $3
     WHERE id = $1::bigint AND status = 'open'
     RETURNING id`,
    [id, note, resolution],
  );
  return rows.length > 0;
}

/**
 * Opens a letter for a record without a claimed entry, unless an open letter of the same
 * record, target, kind and reason name exists (then returns that one). The check and the insert
 * run under a transaction-scoped advisory lock on the record (a key space of its own), so two
 * instances holding one decision at once open one letter.
 *
 * @param sql - The database.
 * @param tables - The store's tables.
 * @param letter - The record, its unit, kind and reason.
 * @returns The open letter.
 * @example
 * ```ts
 * const letter = await openDeadLetter(sql, tables, { resourceType: 'Patient', legacyId: '42', target: 'legacy', unit: 'north', kind: 'delete', reason });
 * ```
 */
export async function openDeadLetter(
  sql: SqlClient,
  tables: JournalTables,
  letter: NewDeadLetter,
): Promise<DeadLetter> {
  return sql.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))`, [
      recordLockKey(tables, letter.resourceType, letter.legacyId),
    ]);
    const params = [letter.resourceType, letter.legacyId, letter.target, letter.kind, letter.reason.name];
    const { rows: open } = await tx.query<LetterRow>(
      `SELECT ${LETTER_COLUMNS} FROM ${tables.deadLetters} d
       WHERE d.status = 'open' AND d.resource_type = $1 AND d.legacy_id = $2 AND d.target = $3
         AND d.kind = $4 AND d.reason->>'name' = $5
       ORDER BY d.id LIMIT 1`,
      params,
    );
    if (open[0] !== undefined) return toDeadLetter(open[0]);
    const { rows } = await tx.query<LetterRow>(
      `INSERT INTO ${tables.deadLetters} AS d (resource_type, legacy_id, target, unit, kind, attempts, reason)
       VALUES ($1, $2, $3, $4, $5, 0, $6::text::jsonb)
       RETURNING ${LETTER_COLUMNS}`,
      [
        letter.resourceType,
        letter.legacyId,
        letter.target,
        letter.unit,
        letter.kind,
        jsonParam(letter.reason),
      ],
    );
    const [opened] = rows;
    if (opened === undefined) throw new Error('INSERT … RETURNING returned no row');
    return toDeadLetter(opened);
  });
}
