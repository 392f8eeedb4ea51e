import type { UnitPause } from '../journal/housekeeping.ts';
import { ConfigurationError } from '../errors.ts';
import { anObject, checkOptions, optionsObject, positiveInteger, positiveMs } from '../option-checks.ts';

/**
 * The limits a unit must be within to move forward a stage. A limit left out is not checked.
 *
 * @example
 * ```ts
 * const gates: ReadinessGates = { maxMirrorLagP95Ms: 5_000, maxConflicts: 0, maxDivergence: 0, maxDeadLetters: 0 };
 * ```
 */
export interface ReadinessGates {
  /**
   * Most mirror lag at the 95th percentile over the window (from the write to its mirror).
   * @default 60000
   */
  readonly maxMirrorLagP95Ms?: number | undefined;
  /**
   * Most conflicts over the window.
   * @default 10
   */
  readonly maxConflicts?: number | undefined;
  /**
   * Most divergence findings (read-backs and shadow reads) over the window.
   * @default 0
   */
  readonly maxDivergence?: number | undefined;
  /**
   * Most open dead letters of the unit (whatever their age).
   * @default 0
   */
  readonly maxDeadLetters?: number | undefined;
  /**
   * Most outbox entries of the unit waiting to be mirrored.
   * @default 1000
   */
  readonly maxPending?: number | undefined;
  /**
   * Most mapped resource types the unit mirrors without a backfill completed since it entered
   * a mirroring stage (`0`: every type backfilled; records from before the move are not
   * stranded). Not checked by default.
   * @default Infinity
   */
  readonly maxUnbackfilledTypes?: number | undefined;
  /**
   * Most disagreements in the latest completed reconciliation of each mapped type the unit
   * mirrors (every class but `agree`); a type never reconciled counts as infinitely many. Set
   * it (with `maxReconcileAgeMs`) to require a clean, recent reconcile before a unit in a
   * mirroring stage moves on, e.g. to `live`. Not checked by default.
   * @default Infinity
   */
  readonly maxReconcileDisagreements?: number | undefined;
  /**
   * Oldest the latest reconciliation of each mapped type may be; a type never reconciled is
   * infinitely old. Not checked by default.
   * @default Infinity
   */
  readonly maxReconcileAgeMs?: number | undefined;
}

/**
 * The gates with every limit set.
 *
 * @example
 * ```ts
 * const limits: GateLimits = { ...DEFAULT_GATES, maxConflicts: 0 };
 * ```
 */
export type GateLimits = { readonly [K in keyof ReadinessGates]-?: number };

/**
 * How readiness is measured.
 *
 * @example
 * ```ts
 * const options: ReadinessOptions = { windowMs: 24 * 3_600_000, gates: { maxConflicts: 0 } };
 * ```
 */
export interface ReadinessOptions {
  /**
   * The sliding window the figures cover.
   * @default 3600000 (one hour)
   */
  readonly windowMs?: number | undefined;
  /** The limits (merged over the defaults). */
  readonly gates?: ReadinessGates | undefined;
  /**
   * The evidence a gate needs over the window before it can pass, while the unit mirrors:
   * applied mirrors for `maxMirrorLagP95Ms` and `maxConflicts`, comparisons of the two copies
   * (read-backs, shadow reads) for `maxDivergence`. With less, the gate is `unknown` and the
   * verdict cannot be `ready`. Samples come from every instance sharing the store.
   * @default 1
   */
  readonly minSamples?: number | undefined;
}

/**
 * A unit's figures over the window, and whether it is within its gates.
 *
 * @example
 * ```ts
 * const readiness = await writer.readiness('north');
 * if (readiness.verdict === 'ready') await plan.set('north', 'shadow', { by: 'ops' });
 * else console.log(readiness.failing);
 * ```
 */
export interface Readiness {
  readonly unit: string;
  /** The window's start and end (ISO 8601). */
  readonly window: { readonly from: string; readonly to: string };
  readonly figures: {
    /** Mirror lag over the window, every instance's: write to applied mirror. */
    readonly mirrorLagMs: {
      readonly p50: number | undefined;
      readonly p95: number | undefined;
      readonly samples: number;
    };
    readonly conflicts: number;
    /** Comparisons of the two copies over the window (read-backs and shadow reads). */
    readonly comparisons: number;
    readonly divergence: number;
    readonly deadLetters: number;
    readonly pending: number;
    /** Mapped types the unit mirrors with no backfill since it entered a mirroring stage. */
    readonly unbackfilledTypes?: readonly string[] | undefined;
    /** Disagreements in the latest reconciliations (`Infinity`: a type never reconciled). */
    readonly reconcileDisagreements?: number | undefined;
    /** Age of the oldest latest reconciliation (`Infinity`: a type never reconciled). */
    readonly reconcileAgeMs?: number | undefined;
  };
  readonly gates: GateLimits;
  /**
   * The stored plan as the instance that measured sees it: the revision it routes by, and
   * whether its copy is stale (its re-reads of the store fail). A stale plan is never `ready`.
   */
  readonly plan: { readonly revision: number | undefined; readonly stale: boolean };
  /**
   * The unit's pause, when an operator paused its mirroring (`pauseUnit`): its mirrors wait in
   * the journal, counted in `figures.pending`.
   */
  readonly paused?: UnitPause | undefined;
  /**
   * `not-ready` when a gate fails; else `unknown` when a gate has too little evidence (see
   * `minSamples`) or the plan is stale; else `ready`.
   */
  readonly verdict: 'ready' | 'not-ready' | 'unknown';
  /** The gates without enough evidence over the window to pass. */
  readonly unknown: readonly {
    readonly gate: keyof ReadinessGates;
    readonly samples: number;
    readonly needed: number;
  }[];
  /** The gates the unit is outside of. */
  readonly failing: readonly {
    readonly gate: keyof ReadinessGates;
    readonly value: number;
    readonly limit: number;
  }[];
}

/**
 * The gates' defaults.
 *
 * @example
 * ```ts
 * const gates: GateLimits = { ...DEFAULT_GATES, ...options.gates };
 * ```
 */
export const DEFAULT_GATES: GateLimits = {
  maxMirrorLagP95Ms: 60_000,
  maxConflicts: 10,
  maxDivergence: 0,
  maxDeadLetters: 0,
  maxPending: 1000,
  maxUnbackfilledTypes: Number.POSITIVE_INFINITY,
  maxReconcileDisagreements: Number.POSITIVE_INFINITY,
  maxReconcileAgeMs: Number.POSITIVE_INFINITY,
};

/**
 * Checks readiness options, naming the field at fault.
 *
 * @param options - The options given.
 * @param field - The option's name.
 * @throws {@link ConfigurationError} naming the option at fault, or an unknown option or gate.
 * @example
 * ```ts
 * validateReadinessOptions(options.readiness, 'readiness');
 * ```
 */
export function validateReadinessOptions(options: unknown, field: string): void {
  const given = checkOptions(
    options,
    field,
    'configuration',
    { windowMs: positiveMs, gates: anObject, minSamples: positiveInteger },
    `${field}.`,
  );
  const nonNegative = (name: string, value: unknown) => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0))
      throw new ConfigurationError(name, value, 'must be a non-negative number');
  };
  const gates = optionsObject(given.gates, `${field}.gates`, 'configuration');
  for (const [name, value] of Object.entries(gates)) {
    if (!(name in DEFAULT_GATES))
      throw new ConfigurationError(
        `${field}.gates.${name}`,
        value,
        `is not a gate (gates: ${Object.keys(DEFAULT_GATES).join(', ')})`,
      );
    nonNegative(`${field}.gates.${name}`, value);
  }
}

/**
 * The verdict on a unit's figures.
 *
 * @param figures - The figures.
 * @param gates - The limits.
 * @returns The failing gates (none: ready).
 * @example
 * ```ts
 * const failing = failingGates(figures, { ...DEFAULT_GATES, ...options.gates });
 * ```
 */
export function failingGates(figures: Readiness['figures'], gates: GateLimits): Readiness['failing'] {
  const checks: [keyof ReadinessGates, number | undefined, number][] = [
    ['maxMirrorLagP95Ms', figures.mirrorLagMs.p95, gates.maxMirrorLagP95Ms],
    ['maxConflicts', figures.conflicts, gates.maxConflicts],
    ['maxDivergence', figures.divergence, gates.maxDivergence],
    ['maxDeadLetters', figures.deadLetters, gates.maxDeadLetters],
    ['maxPending', figures.pending, gates.maxPending],
    ['maxUnbackfilledTypes', figures.unbackfilledTypes?.length, gates.maxUnbackfilledTypes],
    ['maxReconcileDisagreements', figures.reconcileDisagreements, gates.maxReconcileDisagreements],
    ['maxReconcileAgeMs', figures.reconcileAgeMs, gates.maxReconcileAgeMs],
  ];
  return checks
    .filter(
      (check): check is [keyof ReadinessGates, number, number] =>
        check[1] !== undefined && check[1] > check[2],
    )
    .map(([gate, value, limit]) => ({ gate, value, limit }));
}

/**
 * The gates a unit's figures are too thin to judge: while the unit mirrors, lag and conflicts
 * need `minSamples` applied mirrors, divergence `minSamples` comparisons. A unit that mirrors
 * nothing (legacy-only, medplum-only) has nothing to measure, and its gates are judged as they are.
 *
 * @param figures - The figures.
 * @param minSamples - The evidence each gate needs.
 * @param mirrors - Whether the unit mirrors any resource type now.
 * @returns The gates without enough evidence.
 * @example
 * ```ts
 * const unknown = unknownGates(figures, 20, true);
 * ```
 */
export function unknownGates(
  figures: Readiness['figures'],
  minSamples: number,
  mirrors: boolean,
): Readiness['unknown'] {
  if (!mirrors) return [];
  const lag = figures.mirrorLagMs.samples;
  const checks: [keyof ReadinessGates, number][] = [
    ['maxMirrorLagP95Ms', lag],
    ['maxConflicts', lag],
    ['maxDivergence', figures.comparisons],
  ];
  return checks
    .filter(([, samples]) => samples < minSamples)
    .map(([gate, samples]) => ({ gate, samples, needed: minSamples }));
}
