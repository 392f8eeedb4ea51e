import type { SqlQueryable } from '../sql/sql-client.ts';
import type { Link } from './link.ts';
import type { Lease, LeaseOutcome } from './outbox.ts';
import {
  isViolationOf,
  LINK_UPSERT,
  LINK_WRITE_COLUMNS,
  LinkRace,
  linkWritePlaceholders,
  linkWriteValues,
  MEDPLUM_KEY,
} from './postgres-links.ts';
import { isRowId, type JournalTables } from './postgres-tables.ts';
import { LinkConflictError } from './sync-store.ts';

/*
 * Completing a lease in one statement: what `finish` does in a transaction of six round trips
 * (BEGIN, lock the entry, check who holds the Medplum id, upsert the link, delete the entry,
 * COMMIT). The drain bench measured them at 6 of 9.3 statements
 * and about half of the SQL time per drained entry.
 *
 * - The entry is locked first (`FOR UPDATE`, a MATERIALIZED CTE): a concurrent intend bumping
 *   `seq` either committed before, and the lock sees its row (READ COMMITTED re-reads a row it
 *   waited for), or waits until this statement commits and then inserts a fresh entry.
 * - The verdict (fenced, requeued, done) decides, through InitPlans, which of the other
 *   sub-statements change anything: release the lease, or save the link and delete the entry.
 * - A Medplum id held by another legacy id stops the link and the deletion, and is reported
 *   (LinkConflictError); a concurrent writer taking it meanwhile fails the statement on the
 *   unique key, reported as LinkRace for the caller to run it again, as with `saveLink`.
 */

/**
 * Finishes a lease in one statement: `fenced` if its token moved on, `requeued` (lease
 * released) if a newer intent bumped `seq`, else the link saved (`Link`), deleted (`null`) or
 * left alone (`undefined`) and the entry removed: `done`.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lease - The worker's lease.
 * @param link - What becomes of the record's link.
 * @returns What happened.
 * @throws {@link LinkConflictError} when another legacy id holds the link's Medplum id.
 * @throws {@link LinkRace} when a concurrent write took the Medplum id meanwhile.
 * @example
 * ```ts
 * const outcome = await retryingLinkRaces(() => completeLease(sql, tables, lease, link));
 * ```
 */
export async function completeLease(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  link: Link | null | undefined,
): Promise<LeaseOutcome> {
  const outcome = await completion(q, tables, lease, link, false);
  if (outcome === 'skipped') throw new Error('a completion that waits for its lock cannot be skipped');
  return outcome;
}

/**
 * {@link completeLease} without waiting: when another transaction holds the entry's row lock
 * (an application's, recording an intent with its own write), nothing is done and the answer
 * is `skipped`, for the caller to finish the lease with {@link completeLease} elsewhere.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lease - The worker's lease.
 * @param link - What becomes of the record's link.
 * @returns What happened, or `skipped`.
 * @throws {@link LinkConflictError} when another legacy id holds the link's Medplum id.
 * @throws {@link LinkRace} when a concurrent write took the Medplum id meanwhile.
 * @example
 * ```ts
 * if ((await tryCompleteLease(sql, tables, lease, link)) === 'skipped') await completeLease(sql, tables, lease, link);
 * ```
 */
export function tryCompleteLease(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  link: Link | null | undefined,
): Promise<LeaseOutcome | 'skipped'> {
  return completion(q, tables, lease, link, true);
}

async function completion(
  q: SqlQueryable,
  tables: JournalTables,
  lease: Lease,
  link: Link | null | undefined,
  skipLocked: boolean,
): Promise<LeaseOutcome | 'skipped'> {
  if (!isRowId(lease.entry.id)) return 'fenced';
  const { resourceType, legacyId } = lease.entry;
  const params: unknown[] = [lease.entry.id, lease.token, lease.entry.seq];
  // Every parameter must be used: $4 and $5 only when the link changes.
  if (link !== undefined) params.push(resourceType, legacyId);
  const done = `(SELECT outcome FROM verdict) = 'done'`;
  // The link is written when the lease was still this worker's, done or requeued: a requeued
  // mirror's writes happened, and the next attempt compares the target with what it wrote.
  const held = `(SELECT outcome FROM verdict) IN ('done', 'requeued')`;
  let linkStatements = '';
  let owner = 'NULL::text';
  if (link === null) {
    linkStatements = `, unlinked AS (
       DELETE FROM ${tables.links} WHERE resource_type = $4 AND legacy_id = $5 AND ${held} RETURNING 1
     )`;
  } else if (link !== undefined) {
    params.push(...linkWriteValues(link));
    owner = '(SELECT legacy_id FROM holder)';
    linkStatements = `, holder AS MATERIALIZED (
       SELECT legacy_id FROM ${tables.links} WHERE resource_type = $4 AND medplum_id = $6 AND legacy_id <> $5
       LIMIT 1
     ), linked AS (
       INSERT INTO ${tables.links} (resource_type, legacy_id, ${LINK_WRITE_COLUMNS})
       SELECT $4, $5, ${linkWritePlaceholders(6)}
       WHERE ${held} AND NOT EXISTS (SELECT 1 FROM holder)
       ${LINK_UPSERT}
       RETURNING 1
     )`;
  }
  const free = link === undefined || link === null ? '' : ' AND NOT EXISTS (SELECT 1 FROM holder)';
  let rows: { outcome: LeaseOutcome | 'skipped'; owner: string | null }[];
  try {
    ({ rows } = await q.query<{ outcome: LeaseOutcome | 'skipped'; owner: string | null }>(
      `WITH entry AS MATERIALIZED (
         SELECT seq, lease_token::text AS token FROM ${tables.outbox} WHERE id = $1::bigint
         FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}
       ), verdict AS MATERIALIZED (
         SELECT CASE ${skipLocked ? `WHEN e.seq IS NULL AND EXISTS (SELECT 1 FROM ${tables.outbox} x WHERE x.id = $1::bigint) THEN 'skipped'` : ''}
                     WHEN e.token IS DISTINCT FROM $2::text THEN 'fenced'
                     WHEN e.seq <> $3::integer THEN 'requeued' ELSE 'done' END AS outcome
         FROM (SELECT 1) AS one LEFT JOIN entry e ON true
       )${linkStatements}, released AS (
         UPDATE ${tables.outbox} SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
         WHERE id = $1::bigint AND (SELECT outcome FROM verdict) = 'requeued'
         RETURNING 1
       ), removed AS (
         DELETE FROM ${tables.outbox} WHERE id = $1::bigint AND ${done}${free}
         RETURNING 1
       )
       SELECT outcome, ${owner} AS owner FROM verdict`,
      params,
    ));
  } catch (err) {
    if (isViolationOf(err, MEDPLUM_KEY)) throw new LinkRace(err);
    throw err;
  }
  const row = rows[0];
  if (row === undefined) throw new Error('the completion statement returned no row');
  if (row.outcome === 'done' && row.owner !== null && link) {
    throw new LinkConflictError(resourceType, link.medplumId, row.owner, legacyId);
  }
  return row.outcome;
}

/**
 * The columns of {@link completeLeases}' input, one array parameter each, zipped by `ROWS FROM`
 * (multi-argument `unnest` cannot be schema-qualified): entry id, lease token, seq, link mode,
 * resource type, legacy id, and the link's columns.
 */
const COMPLETION_ARRAYS = [
  'bigint',
  'text',
  'integer',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'timestamptz',
  'jsonb',
]
  .map((type, i) => `pg_catalog.unnest($${String(i + 1)}::${type}[])`)
  .join(', ');

/** One lease to finish in {@link completeLeases}, and what becomes of its record's link. */
export interface Completion {
  readonly lease: Lease;
  readonly link: Link | null | undefined;
}

/**
 * Finishes several leases in one statement, each exactly as {@link completeLease} would: the
 * same verdicts from the same row locks, the same link writes and the same holder check. It
 * never waits for a lock on an entry (`SKIP LOCKED`): an entry locked by another transaction
 * (an application's, recording an intent with its own write) is answered `skipped` and left
 * alone, for the caller to finish on its own. Waiting there could deadlock with a transaction
 * that locks several entries in another order, and would hold up every completion behind it.
 * Atomic: when any part fails (a unique violation when two of the links name one Medplum id,
 * or one record twice), nothing is written and the caller finishes each lease on its own.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param completions - The leases and their links; leases of distinct records.
 * @returns Per completion, in order: its outcome, `skipped`, or the {@link LinkConflictError}
 *   it ran into.
 * @example
 * ```ts
 * const outcomes = await completeLeases(sql, tables, [{ lease, link }, { lease: other, link: null }]);
 * ```
 */
export async function completeLeases(
  q: SqlQueryable,
  tables: JournalTables,
  completions: readonly Completion[],
): Promise<(LeaseOutcome | 'skipped' | LinkConflictError)[]> {
  const rowIds = completions.filter(({ lease }) => isRowId(lease.entry.id));
  if (rowIds.length === 0) return completions.map(() => 'fenced');
  const column = <T>(value: (c: Completion) => T): T[] => rowIds.map(value);
  const links = column(({ link }) => (link ? linkWriteValues(link) : undefined));
  const linkColumn = (i: number): unknown[] => links.map((values) => values?.[i] ?? null);
  const { rows } = await q.query<{ n: number; outcome: LeaseOutcome | 'skipped'; owner: string | null }>(
    `WITH input AS MATERIALIZED (
       SELECT * FROM ROWS FROM (${COMPLETION_ARRAYS})
         WITH ORDINALITY AS i(id, token, seq, mode, resource_type, legacy_id, medplum_id, legacy_version,
           medplum_version, content_hash, synced_at, base, n)
     ), entry AS MATERIALIZED (
       SELECT o.id, o.seq, o.lease_token::text AS token FROM ${tables.outbox} o
       WHERE o.id IN (SELECT id FROM input) ORDER BY o.id FOR UPDATE SKIP LOCKED
     ), verdict AS MATERIALIZED (
       SELECT i.*, CASE WHEN e.id IS NULL AND EXISTS (SELECT 1 FROM ${tables.outbox} x WHERE x.id = i.id)
                          THEN 'skipped'
                        WHEN e.token IS DISTINCT FROM i.token THEN 'fenced'
                        WHEN e.seq <> i.seq THEN 'requeued' ELSE 'done' END AS outcome
       FROM input i LEFT JOIN entry e ON e.id = i.id
     ), holder AS MATERIALIZED (
       SELECT v.id, (SELECT l.legacy_id FROM ${tables.links} l
                     WHERE l.resource_type = v.resource_type AND l.medplum_id = v.medplum_id
                       AND l.legacy_id <> v.legacy_id LIMIT 1) AS owner
       FROM verdict v WHERE v.mode = 'save' AND v.outcome IN ('done', 'requeued')
     ), unlinked AS (
       DELETE FROM ${tables.links} l USING verdict v
       WHERE v.mode = 'delete' AND v.outcome IN ('done', 'requeued')
         AND l.resource_type = v.resource_type AND l.legacy_id = v.legacy_id
       RETURNING 1
     ), linked AS (
       INSERT INTO ${tables.links} (resource_type, legacy_id, ${LINK_WRITE_COLUMNS})
       SELECT v.resource_type, v.legacy_id, v.medplum_id, v.legacy_version, v.medplum_version, v.content_hash,
         v.synced_at, v.base
       FROM verdict v JOIN holder h ON h.id = v.id WHERE h.owner IS NULL
       ORDER BY v.resource_type, v.legacy_id
       ${LINK_UPSERT}
       RETURNING 1
     ), released AS (
       UPDATE ${tables.outbox} o SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
       FROM verdict v WHERE o.id = v.id AND v.outcome = 'requeued'
       RETURNING 1
     ), removed AS (
       DELETE FROM ${tables.outbox} o USING verdict v
       WHERE o.id = v.id AND v.outcome = 'done'
         AND NOT EXISTS (SELECT 1 FROM holder h WHERE h.id = v.id AND h.owner IS NOT NULL)
       RETURNING 1
     )
     SELECT v.n::integer AS n, v.outcome, h.owner FROM verdict v LEFT JOIN holder h ON h.id = v.id`,
    [
      column(({ lease }) => lease.entry.id),
      column(({ lease }) => lease.token),
      column(({ lease }) => lease.entry.seq),
      column(({ link }) => (link === undefined ? 'keep' : link === null ? 'delete' : 'save')),
      column(({ lease }) => lease.entry.resourceType),
      column(({ lease }) => lease.entry.legacyId),
      ...[0, 1, 2, 3, 4, 5].map(linkColumn),
    ],
  );
  const byRow = new Map(rows.map((row) => [rowIds[row.n - 1], row]));
  return completions.map((completion) => {
    if (!isRowId(completion.lease.entry.id)) return 'fenced';
    const row = byRow.get(completion);
    if (row === undefined) throw new Error('the completion statement returned no row for a lease');
    const { link, lease } = completion;
    if (row.outcome === 'done' && row.owner !== null && link) {
      return new LinkConflictError(lease.entry.resourceType, link.medplumId, row.owner, lease.entry.legacyId);
    }
    return row.outcome;
  });
}
