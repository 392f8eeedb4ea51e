import type { Job } from '../journal/job.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { routeOf, type Stage } from '../plan/stage.ts';

/** The reconciliation classes that are disagreements (everything but `agree`). */
const DISAGREEMENTS = [
  'missingInMedplum',
  'missingInLegacy',
  'duplicate',
  'orphanLink',
  'divergent',
  'failed',
];

/**
 * What a unit's jobs say about its readiness.
 *
 * @example
 * ```ts
 * const evidence: JobEvidence = { unbackfilledTypes: ['Observation'], reconcileDisagreements: 0, reconcileAgeMs: 60_000 };
 * ```
 */
export interface JobEvidence {
  /**
   * The mapped resource types the unit mirrors with no backfill completed since the unit (or
   * the type) entered a mirroring stage: their records from before may be missing.
   */
  readonly unbackfilledTypes: readonly string[];
  /**
   * Disagreements (every class but `agree`, and records that failed) of the latest completed
   * reconciliation of each mapped type the unit mirrors, summed; `Infinity` when such a type
   * has none; `undefined` when the unit mirrors no type (nothing to compare yet).
   */
  readonly reconcileDisagreements: number | undefined;
  /** Age of the oldest of those latest reconciliations, likewise. */
  readonly reconcileAgeMs: number | undefined;
}

/** One mapped type of a unit as readiness sees it. */
export interface TypeStanding {
  readonly resourceType: string;
  readonly stage: Stage;
  /** When the unit (or the type) last entered a mirroring stage, if the plan's history says. */
  readonly mirroringSince: string | undefined;
}

/**
 * Reads a unit's backfill and reconciliation evidence from the journal: completed jobs of the
 * unit, or of every unit, per mapped type.
 *
 * @param store - The journal.
 * @param unit - The unit.
 * @param types - Each mapped type's stage and when the unit entered a mirroring stage.
 * @param now - The time to measure ages at (ms since the epoch).
 * @returns The evidence.
 * @example
 * ```ts
 * const evidence = await jobEvidence(store, 'north', [{ resourceType: 'Patient', stage: 'dual-write', mirroringSince: undefined }], Date.now());
 * ```
 */
export async function jobEvidence(
  store: SyncStore,
  unit: string,
  types: readonly TypeStanding[],
  now: number,
): Promise<JobEvidence> {
  const unbackfilledTypes: string[] = [];
  let reconcileDisagreements = 0;
  let oldest = now;
  const mirrored = types.filter(({ stage }) => routeOf(stage).mirrorTo !== undefined);
  if (mirrored.length === 0)
    return { unbackfilledTypes, reconcileDisagreements: undefined, reconcileAgeMs: undefined };
  for (const { resourceType, mirroringSince } of mirrored) {
    const backfills = await completed(store, 'backfill', resourceType, unit);
    const since = mirroringSince === undefined ? Number.NEGATIVE_INFINITY : Date.parse(mirroringSince);
    if (!backfills.some((job) => Date.parse(job.createdAt) >= since)) unbackfilledTypes.push(resourceType);
    const [latest] = await completed(store, 'reconcile', resourceType, unit);
    if (latest === undefined) {
      reconcileDisagreements = Number.POSITIVE_INFINITY;
      oldest = Number.NEGATIVE_INFINITY;
      continue;
    }
    for (const name of DISAGREEMENTS) reconcileDisagreements += latest.counts[name] ?? 0;
    oldest = Math.min(oldest, Date.parse(latest.finishedAt ?? latest.updatedAt));
  }
  return { unbackfilledTypes, reconcileDisagreements, reconcileAgeMs: now - oldest };
}

/** Completed jobs of a kind covering the unit (its own, or every unit's), newest first. */
async function completed(
  store: SyncStore,
  kind: Job['kind'],
  resourceType: string,
  unit: string,
): Promise<Job[]> {
  const jobs = await store.listJobs({ kind, resourceType, state: 'done', limit: 100 });
  return jobs.filter((job) => job.unit === undefined || job.unit === unit);
}

/**
 * When a unit's type last entered a mirroring stage, from the plan's history (newest first):
 * the latest change into a stage that mirrors from one that does not.
 *
 * @param history - The unit's stage changes, newest first.
 * @param resourceType - The type.
 * @returns The instant, or `undefined` when the history does not say.
 * @example
 * ```ts
 * const since = mirroringSince(await plan.history({ unit: 'north' }), 'Patient');
 * ```
 */
export function mirroringSince(
  history: readonly {
    readonly resourceType: string | undefined;
    readonly from: Stage;
    readonly to: Stage;
    readonly at: string;
  }[],
  resourceType: string,
): string | undefined {
  const entered = history.find(
    (change) =>
      (change.resourceType === undefined || change.resourceType === resourceType) &&
      routeOf(change.to).mirrorTo !== undefined &&
      routeOf(change.from).mirrorTo === undefined,
  );
  return entered?.at;
}
