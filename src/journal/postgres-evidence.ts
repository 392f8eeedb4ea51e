import type { SqlQueryable } from '../sql/sql-client.ts';
import type { JournalTables } from './postgres-tables.ts';
import type { ReadinessEvidence, ReadinessSample } from './readiness-evidence.ts';

/**
 * Inserts samples in one statement.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param samples - The samples.
 * @returns When stored.
 * @example
 * ```ts
 * await recordSamples(sql, tables, [{ unit: 'north', kind: 'comparison', value: 0 }]);
 * ```
 */
export async function recordSamples(
  sql: SqlQueryable,
  tables: JournalTables,
  samples: readonly ReadinessSample[],
): Promise<void> {
  if (samples.length === 0) return;
  // One JSON parameter rather than 3 × n placeholders: a batch of any size is one statement.
  await sql.query(
    `INSERT INTO ${tables.readinessSamples} (unit, kind, value)
     SELECT s->>'unit', s->>'kind', (s->>'value')::double precision FROM jsonb_array_elements($1::text::jsonb) s`,
    [JSON.stringify(samples)],
  );
}

/**
 * A unit's evidence since an instant.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param options - The unit and the window's start.
 * @returns The evidence.
 * @example
 * ```ts
 * const evidence = await readinessEvidence(sql, tables, { unit: 'north', since: '2026-12-01T00:00:00.000Z' });
 * ```
 */
export async function readinessEvidence(
  sql: SqlQueryable,
  tables: JournalTables,
  options: { readonly unit: string; readonly since: string },
): Promise<ReadinessEvidence> {
  const { rows } = await sql.query<{
    p50: number | null;
    p95: number | null;
    samples: number;
    comparisons: number;
  }>(
    `SELECT
       percentile_disc(0.5) WITHIN GROUP (ORDER BY value) FILTER (WHERE kind = 'mirror-lag') AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY value) FILTER (WHERE kind = 'mirror-lag') AS p95,
       (count(*) FILTER (WHERE kind = 'mirror-lag'))::integer AS samples,
       (count(*) FILTER (WHERE kind = 'comparison'))::integer AS comparisons
     FROM ${tables.readinessSamples}
     WHERE kind IN ('mirror-lag', 'comparison') AND unit = $1 AND at >= $2::timestamptz`,
    [options.unit, options.since],
  );
  const row = rows[0];
  return {
    mirrorLagMs: {
      p50: row?.p50 ?? undefined,
      p95: row?.p95 ?? undefined,
      samples: row?.samples ?? 0,
    },
    comparisons: row?.comparisons ?? 0,
  };
}
