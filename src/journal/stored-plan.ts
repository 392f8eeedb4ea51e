import { namedRecord, ownValue } from '../named-record.ts';
import type { Stage } from '../plan/stage.ts';

/*
 * The cutover plan as the journal holds it, shared by every service instance: a default stage,
 * a stage per unit and per (unit, resource type), and a revision that every change bumps. What
 * the store holds wins over what an instance's code says (see CutoverPlan.attach).
 */

/**
 * The stored form of a plan.
 *
 * @example
 * ```ts
 * const stored: StoredPlan = { revision: 3, default: 'legacy-only', units: { north: { default: 'shadow', resourceTypes: {} } } };
 * ```
 */
export interface StoredPlan {
  /** Bumped by the store with every change; an instance reloads when it differs from its own. */
  readonly revision: number;
  readonly default: Stage;
  readonly units: Readonly<
    Record<string, { readonly default?: Stage; readonly resourceTypes: Readonly<Record<string, Stage>> }>
  >;
}

/**
 * What seeds a store's plan: the stages an instance was configured with.
 *
 * @example
 * ```ts
 * const seed: PlanSeed = { default: 'legacy-only', units: { north: { default: 'dual-write', resourceTypes: {} } } };
 * ```
 */
export type PlanSeed = Omit<StoredPlan, 'revision'>;

/**
 * One stage change, compared and set by the store: applied only when the stored stage of
 * `(unit, resourceType)` is still `from`.
 *
 * @example
 * ```ts
 * const change: PlanChange = { unit: 'north', resourceType: undefined, from: 'dual-write', to: 'shadow' };
 * ```
 */
export interface PlanChange {
  readonly unit: string;
  /** One resource type of the unit, or the unit's own stage when `undefined`. */
  readonly resourceType: string | undefined;
  /** The stage the caller saw; the change is refused when the store holds another. */
  readonly from: Stage;
  readonly to: Stage;
}

/**
 * What a compare-and-set of the plan did, and the stored plan after it.
 *
 * @example
 * ```ts
 * const { applied, plan } = await store.changePlan(change, event);
 * ```
 */
export interface PlanChangeOutcome {
  /** `false` when the stored stage was not the change's `from` (nothing was written). */
  readonly applied: boolean;
  readonly plan: StoredPlan;
}

/**
 * The stage a plan gives `(unit, resourceType)`: the type's row, else the unit's, else the
 * default; with no resource type, the unit's own stage.
 *
 * @param plan - The plan.
 * @param unit - The unit.
 * @param resourceType - A resource type, or `undefined` for the unit's own stage.
 * @returns The stage.
 * @example
 * ```ts
 * storedStageOf(plan, 'north', 'Patient');
 * ```
 */
export function storedStageOf(plan: PlanSeed, unit: string, resourceType: string | undefined): Stage {
  // Own keys only: a unit named `toString` is not Object.prototype's.
  const entry = ownValue(plan.units, unit);
  return (
    (resourceType === undefined || entry === undefined
      ? undefined
      : ownValue(entry.resourceTypes, resourceType)) ??
    entry?.default ??
    plan.default
  );
}

/**
 * A plan's stages as rows: `resourceType` is `''` for a unit's own stage.
 *
 * @param plan - The plan.
 * @returns The rows.
 * @example
 * ```ts
 * for (const row of planRows(seed)) console.log(row.unit, row.resourceType, row.stage);
 * ```
 */
export function planRows(plan: PlanSeed): { unit: string; resourceType: string; stage: Stage }[] {
  const rows: { unit: string; resourceType: string; stage: Stage }[] = [];
  for (const [unit, entry] of Object.entries(plan.units)) {
    if (entry.default !== undefined) rows.push({ unit, resourceType: '', stage: entry.default });
    for (const [resourceType, stage] of Object.entries(entry.resourceTypes))
      rows.push({ unit, resourceType, stage });
  }
  return rows;
}

/**
 * A plan from rows (`resourceType` `''` for a unit's own stage).
 *
 * @param revision - The stored revision.
 * @param defaultStage - The stored default.
 * @param rows - The stored rows.
 * @returns The plan.
 * @example
 * ```ts
 * const plan = planOfRows(3, 'legacy-only', [{ unit: 'north', resourceType: '', stage: 'shadow' }]);
 * ```
 */
export function planOfRows(
  revision: number,
  defaultStage: Stage,
  rows: readonly { readonly unit: string; readonly resourceType: string; readonly stage: Stage }[],
): StoredPlan {
  const units = namedRecord<{ default?: Stage; resourceTypes: Record<string, Stage> }>();
  for (const row of rows) {
    const entry = (units[row.unit] ??= { resourceTypes: namedRecord() });
    if (row.resourceType === '') entry.default = row.stage;
    else entry.resourceTypes[row.resourceType] = row.stage;
  }
  return { revision, default: defaultStage, units };
}
