import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { Stage } from '../plan/stage.ts';
import type { JournalTables } from './postgres-tables.ts';
import { jsonParam } from './postgres-tables.ts';
import {
  planOfRows,
  planRows,
  storedStageOf,
  type PlanChange,
  type PlanChangeOutcome,
  type PlanSeed,
  type StoredPlan,
} from './stored-plan.ts';
import type { StoredEvent } from './sync-store.ts';

/*
 * The stored plan in PostgreSQL (tables from migration 10): a row per unit and resource type,
 * and the single `plan` row holding the default and the revision. Every write takes the `plan`
 * row's lock first (`FOR UPDATE`), so changes, seeds and their events are serialised, and the
 * revision a reader sees always matches the rows it reads in the same statement's snapshot.
 */

/**
 * The stored plan, `undefined` until a plan was seeded.
 *
 * @param sql - The database (or a transaction).
 * @param tables - The journal's tables.
 * @returns The plan.
 * @example
 * ```ts
 * const plan = await loadPlan(sql, tables);
 * ```
 */
export async function loadPlan(sql: SqlQueryable, tables: JournalTables): Promise<StoredPlan | undefined> {
  // One statement, one snapshot: the revision belongs to the rows read with it.
  const { rows } = await sql.query<{
    revision: number;
    default_stage: Stage | null;
    unit: string | null;
    resource_type: string | null;
    stage: Stage | null;
  }>(
    `SELECT p.revision::integer AS revision, p.default_stage, s.unit, s.resource_type, s.stage
     FROM ${tables.plan} p LEFT JOIN ${tables.planStages} s ON true
     WHERE p.id = 1 ORDER BY s.unit, s.resource_type`,
  );
  const head = rows[0];
  if (head?.default_stage === null || head === undefined) return undefined;
  const stages = rows.flatMap((row) =>
    row.unit === null || row.resource_type === null || row.stage === null
      ? []
      : [{ unit: row.unit, resourceType: row.resource_type, stage: row.stage }],
  );
  return planOfRows(head.revision, head.default_stage, stages);
}

/**
 * The stored plan's revision, `undefined` until a plan was seeded (a cheap poll).
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @returns The revision.
 * @example
 * ```ts
 * if ((await planRevision(sql, tables)) !== mine) await loadPlan(sql, tables);
 * ```
 */
export async function planRevision(sql: SqlQueryable, tables: JournalTables): Promise<number | undefined> {
  const { rows } = await sql.query<{ revision: number }>(
    `SELECT revision::integer AS revision FROM ${tables.plan} WHERE id = 1 AND default_stage IS NOT NULL`,
  );
  return rows[0]?.revision;
}

/**
 * Stores the default and every stage of `seed` the store does not hold yet, in one transaction;
 * the revision moves when anything was added.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param seed - The stages an instance was configured with.
 * @returns The stored plan afterwards.
 * @example
 * ```ts
 * const stored = await seedPlan(sql, tables, { default: 'legacy-only', units: {} });
 * ```
 */
export function seedPlan(sql: SqlClient, tables: JournalTables, seed: PlanSeed): Promise<StoredPlan> {
  return sql.transaction(async (tx) => {
    await tx.query(`INSERT INTO ${tables.plan} (id) VALUES (1) ON CONFLICT (id) DO NOTHING`);
    await tx.query(`SELECT 1 FROM ${tables.plan} WHERE id = 1 FOR UPDATE`);
    const defaulted = await tx.query(
      `UPDATE ${tables.plan} SET default_stage = $1 WHERE id = 1 AND default_stage IS NULL`,
      [seed.default],
    );
    let added = defaulted.rowCount ?? 0;
    for (const row of planRows(seed)) {
      const inserted = await tx.query(
        `INSERT INTO ${tables.planStages} (unit, resource_type, stage) VALUES ($1, $2, $3)
         ON CONFLICT (unit, resource_type) DO NOTHING`,
        [row.unit, row.resourceType, row.stage],
      );
      added += inserted.rowCount ?? 0;
    }
    if (added > 0)
      await tx.query(
        `UPDATE ${tables.plan} SET revision = revision + 1, updated_at = clock_timestamp() WHERE id = 1`,
      );
    const stored = await loadPlan(tx, tables);
    if (stored === undefined) throw new Error('the seeded plan was not stored');
    return stored;
  });
}

/**
 * Compares and sets one stage, and records its event, in one transaction.
 *
 * @param sql - The database.
 * @param tables - The journal's tables.
 * @param change - The change and the stage it moves from.
 * @param event - The change's `stage-change` event.
 * @returns Whether it applied, and the stored plan afterwards.
 * @example
 * ```ts
 * const { applied, plan } = await changePlan(sql, tables, change, event);
 * ```
 */
export function changePlan(
  sql: SqlClient,
  tables: JournalTables,
  change: PlanChange,
  event: StoredEvent,
): Promise<PlanChangeOutcome> {
  return sql.transaction(async (tx) => {
    const { rows } = await tx.query(
      `SELECT 1 FROM ${tables.plan} WHERE id = 1 AND default_stage IS NOT NULL FOR UPDATE`,
    );
    if (rows.length === 0) throw new Error('the plan is not stored yet: seed it first');
    const before = await loadPlan(tx, tables);
    if (before === undefined) throw new Error('the plan is not stored yet: seed it first');
    if (storedStageOf(before, change.unit, change.resourceType) !== change.from)
      return { applied: false, plan: before };
    await tx.query(
      `INSERT INTO ${tables.planStages} (unit, resource_type, stage) VALUES ($1, $2, $3)
       ON CONFLICT (unit, resource_type) DO UPDATE SET stage = excluded.stage`,
      [change.unit, change.resourceType ?? '', change.to],
    );
    await tx.query(
      `UPDATE ${tables.plan} SET revision = revision + 1, updated_at = clock_timestamp() WHERE id = 1`,
    );
    await tx.query(
      `INSERT INTO ${tables.events} (type, resource_type, legacy_id, unit, data)
       VALUES ($1, $2, $3, $4, $5::text::jsonb)`,
      [
        event.type,
        event.resourceType ?? null,
        event.legacyId ?? null,
        event.unit ?? null,
        jsonParam(event.data),
      ],
    );
    const after = await loadPlan(tx, tables);
    if (after === undefined) throw new Error('the changed plan was not stored');
    return { applied: true, plan: after };
  });
}
