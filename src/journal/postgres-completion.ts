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
  if (!isRowId(lease.entry.id)) return 'fenced';
  const { resourceType, legacyId } = lease.entry;
  const params: unknown[] = [lease.entry.id, lease.token, lease.entry.seq];
  // Every parameter must be used: $4 and $5 only when the link changes.
  if (link !== undefined) params.push(resourceType, legacyId);
  const done = `(SELECT outcome FROM verdict) = 'done'`;
  let linkStatements = '';
  let owner = 'NULL::text';
  if (link === null) {
    linkStatements = `, unlinked AS (
       DELETE FROM ${tables.links} WHERE resource_type = $4 AND legacy_id = $5 AND ${done} RETURNING 1
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
       WHERE ${done} AND NOT EXISTS (SELECT 1 FROM holder)
       ${LINK_UPSERT}
       RETURNING 1
     )`;
  }
  const free = link === undefined || link === null ? '' : ' AND NOT EXISTS (SELECT 1 FROM holder)';
  let rows: { outcome: LeaseOutcome; owner: string | null }[];
  try {
    ({ rows } = await q.query<{ outcome: LeaseOutcome; owner: string | null }>(
      `WITH entry AS MATERIALIZED (
         SELECT seq, lease_token::text AS token FROM ${tables.outbox} WHERE id = $1::bigint FOR UPDATE
       ), verdict AS MATERIALIZED (
         SELECT CASE WHEN e.token IS DISTINCT FROM $2::text THEN 'fenced'
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
