import type { SqlQueryable } from '../sql/sql-client.ts';
import type { PruneCounts, RetentionRule, RetentionRules, UnitPause } from './housekeeping.ts';
import { iso, millis, optional, type JournalTables } from './postgres-tables.ts';

/*
 * Housekeeping SQL for `PostgresStore`: unit pauses (migration 27) and retention. Each prune is
 * one DELETE per kind of row, of at most `limit` rows found through an index (by time for the
 * age rule, by id for the count rule), so a call's cost is bounded by its limit whatever the
 * table's size; the caller repeats it while `more` says rows remain.
 */

/**
 * An SQL condition that keeps an entry's unit out of claims while the unit is paused.
 *
 * @param tables - The store's tables.
 * @param alias - The outbox row's alias.
 * @returns The condition.
 * @example
 * ```ts
 * const where = `next_attempt_at <= clock_timestamp() AND ${notPaused(tables, 'o')}`;
 * ```
 */
export function notPaused(tables: JournalTables, alias: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${tables.unitPauses} p WHERE p.unit = ${alias}.unit)`;
}

interface PauseRow {
  readonly unit: string;
  readonly since: string;
  readonly paused_by: string | null;
  readonly reason: string | null;
}

const PAUSE_COLUMNS = `unit, ${iso('paused_at')} AS since, paused_by, reason`;

function toPause(row: PauseRow): UnitPause {
  return { unit: row.unit, since: row.since, by: optional(row.paused_by), reason: optional(row.reason) };
}

/**
 * Pauses a unit (keeping an earlier pause as it is).
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param unit - The unit.
 * @param note - Who and why.
 * @returns The unit's pause.
 * @example
 * ```ts
 * await pauseUnit(sql, tables, 'north', { by: 'ops' });
 * ```
 */
export async function pauseUnit(
  q: SqlQueryable,
  tables: JournalTables,
  unit: string,
  note: { readonly by?: string | undefined; readonly reason?: string | undefined },
): Promise<UnitPause> {
  // DO UPDATE with an unchanged value, so RETURNING gives the row whether it was there or not.
  const { rows } = await q.query<PauseRow>(
    `INSERT INTO ${tables.unitPauses} (unit, paused_by, reason) VALUES ($1, $2, $3)
     ON CONFLICT (unit) DO UPDATE SET unit = excluded.unit
     RETURNING ${PAUSE_COLUMNS}`,
    [unit, note.by ?? null, note.reason ?? null],
  );
  const [row] = rows;
  if (row === undefined) throw new Error('INSERT … RETURNING returned no row');
  return toPause(row);
}

/**
 * Resumes a unit.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param unit - The unit.
 * @returns Whether it was paused.
 * @example
 * ```ts
 * await resumeUnit(sql, tables, 'north');
 * ```
 */
export async function resumeUnit(q: SqlQueryable, tables: JournalTables, unit: string): Promise<boolean> {
  const { rows } = await q.query(`DELETE FROM ${tables.unitPauses} WHERE unit = $1 RETURNING unit`, [unit]);
  return rows.length > 0;
}

/**
 * The paused units.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @returns The pauses, by unit.
 * @example
 * ```ts
 * const paused = await unitPauses(sql, tables);
 * ```
 */
export async function unitPauses(q: SqlQueryable, tables: JournalTables): Promise<UnitPause[]> {
  const { rows } = await q.query<PauseRow>(`SELECT ${PAUSE_COLUMNS} FROM ${tables.unitPauses} ORDER BY unit`);
  return rows.map(toPause);
}

/**
 * Deletes what the rules do not keep, at most `limit` rows per kind.
 *
 * @param q - Where to run.
 * @param tables - The store's tables.
 * @param rules - The retention rules.
 * @param limit - Most rows deleted per kind.
 * @returns What was deleted.
 * @example
 * ```ts
 * const counts = await prune(sql, tables, { events: { maxAgeMs: 86_400_000 } }, 1000);
 * ```
 */
export async function prune(
  q: SqlQueryable,
  tables: JournalTables,
  rules: RetentionRules,
  limit: number,
): Promise<PruneCounts> {
  const events = await pruneTable(q, tables.events, 'at', "type <> 'stage-change'", rules.events, limit);
  const deadLetters = await pruneTable(
    q,
    tables.deadLetters,
    'resolved_at',
    "status <> 'open'",
    rules.deadLetters,
    limit,
  );
  const samples = await pruneTable(q, tables.readinessSamples, 'at', 'true', rules.samples, limit);
  return { events, deadLetters, samples, more: [events, deadLetters, samples].some((n) => n >= limit) };
}

/**
 * One kind's DELETE: rows older than the age rule (oldest first, through the time index) and
 * rows beyond the newest `maxCount` (lowest ids first, through the primary key), up to `limit`.
 */
async function pruneTable(
  q: SqlQueryable,
  table: string,
  time: string,
  kept: string,
  rule: RetentionRule | undefined,
  limit: number,
): Promise<number> {
  if (rule === undefined || (rule.maxAgeMs === undefined && rule.maxCount === undefined)) return 0;
  const { rows } = await q.query<{ n: number }>(
    `WITH newest AS (
       SELECT id FROM ${table} WHERE $2::integer IS NOT NULL AND ${kept} ORDER BY id DESC OFFSET $2 LIMIT 1
     ), doomed AS (
       (SELECT id FROM ${table}
        WHERE $1::double precision IS NOT NULL AND ${time} < clock_timestamp() - ${millis('$1')} AND ${kept}
        ORDER BY ${time} LIMIT $3)
       UNION
       (SELECT id FROM ${table} WHERE id <= (SELECT id FROM newest) AND ${kept} ORDER BY id LIMIT $3)
       LIMIT $3
     ), gone AS (
       DELETE FROM ${table} t USING doomed d WHERE t.id = d.id RETURNING 1
     )
     SELECT count(*)::integer AS n FROM gone`,
    [rule.maxAgeMs ?? null, rule.maxCount ?? null, limit],
  );
  return rows[0]?.n ?? 0;
}
