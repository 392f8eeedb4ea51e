import { jobEvidence, mirroringSince } from '../jobs/job-evidence.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { CutoverPlan } from '../plan/cutover-plan.ts';
import {
  DEFAULT_GATES,
  failingGates,
  unknownGates,
  type GateLimits,
  type Readiness,
  type ReadinessOptions,
} from '../plan/readiness.ts';

/** The window, gates and evidence minimum a unit's readiness is judged by, defaults applied. */
export interface ReadinessPolicy {
  readonly windowMs: number;
  readonly gates: GateLimits;
  readonly minSamples: number;
}

/**
 * The readiness options with their defaults (a one-hour window, the default gates, one sample).
 *
 * @param options - The caller's options, already validated.
 * @returns The policy.
 * @example
 * ```ts
 * const policy = readinessPolicyOf({ windowMs: 600_000 });
 * ```
 */
export function readinessPolicyOf(options: ReadinessOptions | undefined): ReadinessPolicy {
  const gates: Record<string, number> = { ...DEFAULT_GATES };
  for (const [name, value] of Object.entries(options?.gates ?? {}))
    if (typeof value === 'number') gates[name] = value;
  return {
    windowMs: options?.windowMs ?? 3_600_000,
    gates: gates as GateLimits,
    minSamples: options?.minSamples ?? 1,
  };
}

/**
 * A unit's figures over a window, from the store every instance shares, and the verdict
 * against the gates (see `Operator.readiness`).
 *
 * @param parts - The store, the plan and the mapped resource types.
 * @param policy - The gates and evidence minimum.
 * @param unit - The unit.
 * @param windowMs - The window.
 * @returns The figures, the gates and the verdict.
 * @example
 * ```ts
 * const readiness = await unitReadiness({ store, plan, resourceTypes: ['Patient'] }, policy, 'north', 3_600_000);
 * ```
 */
export async function unitReadiness(
  parts: {
    readonly store: SyncStore;
    readonly plan: CutoverPlan<unknown>;
    readonly resourceTypes: readonly string[];
  },
  policy: ReadinessPolicy,
  unit: string,
  windowMs: number,
): Promise<Readiness> {
  const { store, plan, resourceTypes } = parts;
  const now = Date.now();
  const since = new Date(now - windowMs).toISOString();
  const history = await plan.history({ unit });
  const types = resourceTypes.map((resourceType) => ({
    resourceType,
    stage: plan.stageOf(unit, resourceType),
    mirroringSince: mirroringSince(history, resourceType),
  }));
  const [conflicts, divergence, counts, jobs, evidence, pauses] = await Promise.all([
    store.countEvents({ type: 'conflict', unit, since }),
    store.countEvents({ type: 'divergence', unit, since }),
    store.outboxCounts({ unit }),
    jobEvidence(store, unit, types, now),
    store.readinessEvidence({ unit, since }),
    store.unitPauses(),
  ]);
  const paused = pauses.find((pause) => pause.unit === unit);
  const figures: Readiness['figures'] = {
    mirrorLagMs: evidence.mirrorLagMs,
    conflicts,
    comparisons: evidence.comparisons,
    divergence,
    deadLetters: counts.dead,
    pending: counts.pending + counts.leased + (counts.waiting ?? 0) + (counts.paused ?? 0),
    ...jobs,
  };
  const failing = failingGates(figures, policy.gates);
  const mirrors = resourceTypes.some((type) => plan.routeOf(unit, type).mirrorTo !== undefined);
  const unknown = unknownGates(figures, policy.minSamples, mirrors);
  const { revision, stale } = plan.status();
  return {
    unit,
    window: { from: since, to: new Date(now).toISOString() },
    figures,
    gates: policy.gates,
    plan: { revision, stale },
    ...(paused === undefined ? {} : { paused }),
    verdict: failing.length > 0 ? 'not-ready' : unknown.length > 0 || stale ? 'unknown' : 'ready',
    unknown,
    failing,
  };
}
