import type { SqlQueryable } from '../sql/sql-client.ts';
import { millis, type JournalTables } from './postgres-tables.ts';

/**
 * Takes a feed's lease for `owner`, or renews it when `owner` holds it: granted when nobody
 * holds it, its holder's lease expired, or `owner` is the holder. One statement, so two
 * instances asking at once cannot both be granted.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param name - The feed.
 * @param owner - The instance asking.
 * @param leaseMs - How long the lease lasts from now.
 * @returns Whether `owner` holds the lease now.
 * @example
 * ```ts
 * if (await acquireFeedLease(sql, tables, 'feed:legacy:Patient', 'worker-1', 30_000)) await poll();
 * ```
 */
export async function acquireFeedLease(
  sql: SqlQueryable,
  tables: JournalTables,
  name: string,
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  const { rows } = await sql.query(
    `INSERT INTO ${tables.feedLeases} AS l (name, owner, token, expires_at)
     VALUES ($1, $2, nextval('${tables.leaseTokens}'), clock_timestamp() + ${millis('$3')})
     ON CONFLICT (name) DO UPDATE SET
       owner = excluded.owner,
       token = CASE WHEN l.owner = excluded.owner THEN l.token ELSE excluded.token END,
       expires_at = excluded.expires_at,
       acquired_at = CASE WHEN l.owner = excluded.owner THEN l.acquired_at ELSE clock_timestamp() END
     WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()
     RETURNING l.token`,
    [name, owner, leaseMs],
  );
  return rows.length > 0;
}

/**
 * Gives a feed's lease up, when `owner` holds it, so another instance takes it at once.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param name - The feed.
 * @param owner - The holder.
 * @returns When released.
 * @example
 * ```ts
 * await releaseFeedLease(sql, tables, 'feed:legacy:Patient', 'worker-1');
 * ```
 */
export async function releaseFeedLease(
  sql: SqlQueryable,
  tables: JournalTables,
  name: string,
  owner: string,
): Promise<void> {
  await sql.query(`DELETE FROM ${tables.feedLeases} WHERE name = $1 AND owner = $2`, [name, owner]);
}
