import type { SqlQueryable } from '../sql/sql-client.ts';
import type { BacklogRecording, BacklogSample, LagPoint } from './operating-history.ts';
import { iso, millis, type JournalTables } from './postgres-tables.ts';

/** The start of the step of `$n` milliseconds holding the timestamptz `column`. */
function stepOf(column: string, param: string): string {
  return `to_timestamp(floor(extract(epoch FROM ${column}) * 1000 / ${param}::double precision) * ${param}::double precision / 1000)`;
}

/**
 * Stores the backlog now as the current step's samples (per unit and summed), in one statement;
 * a step another instance recorded already is left as it is (`ON CONFLICT DO NOTHING`).
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param recording - The step and how long samples are kept.
 * @returns When stored.
 * @example
 * ```ts
 * await recordBacklog(sql, tables, { stepMs: 60_000, keepMs: 30 * 86_400_000 });
 * ```
 */
export async function recordBacklog(
  sql: SqlQueryable,
  tables: JournalTables,
  recording: BacklogRecording,
): Promise<void> {
  const samples = `${tables.schema}.backlog_samples`;
  const unleased = '(lease_expires_at IS NULL OR lease_expires_at <= clock_timestamp())';
  await sql.query(`DELETE FROM ${samples} WHERE at < clock_timestamp() - ${millis('$1')}`, [
    recording.keepMs,
  ]);
  await sql.query(
    `WITH counts AS (
       SELECT unit, count(*) FILTER (WHERE ${unleased}) AS pending,
              count(*) FILTER (WHERE NOT ${unleased}) AS leased, 0 AS dead
       FROM ${tables.outbox} GROUP BY unit
       UNION ALL
       SELECT unit, 0, 0, count(*) FROM ${tables.deadLetters} WHERE status = 'open' GROUP BY unit
     ), units AS (
       SELECT unit, sum(pending)::integer AS pending, sum(leased)::integer AS leased,
              sum(dead)::integer AS dead
       FROM counts GROUP BY unit
     )
     INSERT INTO ${samples} (at, unit, pending, leased, dead)
     SELECT ${stepOf('clock_timestamp()', '$1')}, '', coalesce(sum(pending), 0)::integer,
            coalesce(sum(leased), 0)::integer, coalesce(sum(dead), 0)::integer FROM units
     UNION ALL
     SELECT ${stepOf('clock_timestamp()', '$1')}, unit, pending, leased, dead FROM units
     ON CONFLICT (at, unit) DO NOTHING`,
    [recording.stepMs],
  );
}

/**
 * The backlog samples since an instant, oldest first.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param options - The window's start.
 * @returns The samples.
 * @example
 * ```ts
 * const samples = await backlogHistory(sql, tables, { since: '2026-12-01T00:00:00.000Z' });
 * ```
 */
export async function backlogHistory(
  sql: SqlQueryable,
  tables: JournalTables,
  options: { readonly since: string },
): Promise<BacklogSample[]> {
  const { rows } = await sql.query<{
    at: string;
    unit: string;
    pending: number;
    leased: number;
    dead: number;
  }>(
    `SELECT ${iso('s.at')} AS at, s.unit, s.pending, s.leased, s.dead
     FROM ${tables.schema}.backlog_samples s WHERE s.at >= $1::timestamptz ORDER BY s.at, s.unit`,
    [options.since],
  );
  return rows.map((row) => ({ ...row, unit: row.unit === '' ? undefined : row.unit }));
}

/**
 * The applied mirrors' lag per step and unit since an instant, oldest first.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param options - The window's start and the step.
 * @returns The points.
 * @example
 * ```ts
 * const points = await lagHistory(sql, tables, { since: '2026-12-01T00:00:00.000Z', stepMs: 60_000 });
 * ```
 */
export async function lagHistory(
  sql: SqlQueryable,
  tables: JournalTables,
  options: { readonly since: string; readonly stepMs: number },
): Promise<LagPoint[]> {
  const { rows } = await sql.query<LagPoint>(
    `SELECT ${iso('g.step')} AS at, g.unit, g.p50, g.p95, g.samples FROM (
       SELECT ${stepOf('r.at', '$2')} AS step, r.unit,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY r.value) AS p50,
              percentile_disc(0.95) WITHIN GROUP (ORDER BY r.value) AS p95,
              count(*)::integer AS samples
       FROM ${tables.readinessSamples} r
       WHERE r.kind = 'mirror-lag' AND r.at >= $1::timestamptz
       GROUP BY 1, 2
     ) g ORDER BY g.step, g.unit`,
    [options.since, options.stepMs],
  );
  return rows;
}
