import type { SqlQueryable } from '../sql/sql-client.ts';
import { millis, type JournalTables } from './postgres-tables.ts';

/*
 * Outbox lanes for `PostgresStore` (migration 54): which drainer claims a lane's entries. A
 * lane is held while some process's row in `lane_holders` has not expired; its entries are then
 * claimed only by claims naming the lane, and by every claim once no row is live.
 */

/**
 * The claim condition on an outbox entry `alias`: a lane's claim takes that lane's entries
 * only; a claim without one takes entries of no lane and of lanes nobody holds.
 *
 * @param tables - The store's tables.
 * @param alias - The outbox entry's alias.
 * @param laneParam - The placeholder of the claim's lane (text, NULL for none).
 * @returns An SQL condition.
 * @example
 * ```ts
 * `WHERE ${laneClaimable(tables, 'o', '$4')}`;
 * ```
 */
export function laneClaimable(tables: JournalTables, alias: string, laneParam: string): string {
  return `(CASE WHEN ${laneParam}::text IS NULL
    THEN ${alias}.lane IS NULL OR NOT EXISTS (SELECT 1 FROM ${tables.laneHolders} h
      WHERE h.lane = ${alias}.lane AND h.expires_at > clock_timestamp())
    ELSE ${alias}.lane = ${laneParam}::text END)`;
}

/**
 * Holds a lane for `owner` for `leaseMs` from now (inserting or renewing its row).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lane - The lane.
 * @param owner - The process draining it.
 * @param leaseMs - How long the hold lasts unless renewed.
 * @returns When held.
 * @example
 * ```ts
 * await holdLane(sql, tables, 'job:42', 'worker-1', 30_000);
 * ```
 */
export async function holdLane(
  q: SqlQueryable,
  tables: JournalTables,
  lane: string,
  owner: string,
  leaseMs: number,
): Promise<void> {
  await q.query(
    `INSERT INTO ${tables.laneHolders} (lane, owner, expires_at) VALUES ($1, $2, clock_timestamp() + ${millis('$3')})
     ON CONFLICT (lane, owner) DO UPDATE SET expires_at = excluded.expires_at`,
    [lane, owner, leaseMs],
  );
}

/**
 * Gives `owner`'s hold of a lane up; expired holds of any owner go with it.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lane - The lane.
 * @param owner - The process that held it.
 * @returns When released.
 * @example
 * ```ts
 * await releaseLane(sql, tables, 'job:42', 'worker-1');
 * ```
 */
export async function releaseLane(
  q: SqlQueryable,
  tables: JournalTables,
  lane: string,
  owner: string,
): Promise<void> {
  await q.query(
    `DELETE FROM ${tables.laneHolders} WHERE lane = $1 AND (owner = $2 OR expires_at <= clock_timestamp())`,
    [lane, owner],
  );
}

/**
 * The entries queued in a lane, leased or not, waiting or not.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param lane - The lane.
 * @returns How many.
 * @example
 * ```ts
 * const queued = await laneCount(sql, tables, 'job:42');
 * ```
 */
export async function laneCount(q: SqlQueryable, tables: JournalTables, lane: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::integer AS n FROM ${tables.outbox} WHERE lane = $1`,
    [lane],
  );
  return rows[0]?.n ?? 0;
}
