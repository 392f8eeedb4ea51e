import { InvalidInputError, type Side } from '../errors.ts';

/**
 * Where a unit stands on the way from the legacy system to Medplum, in order.
 *
 * @example
 * ```ts
 * const first: Stage = STAGES[0]; // 'legacy-only'
 * ```
 */
export const STAGES = ['legacy-only', 'dual-write', 'shadow', 'live', 'rampdown', 'medplum-only'] as const;

/**
 * One of the six stages of a phased cutover (see the README's stage table).
 *
 * @example
 * ```ts
 * const stage: Stage = 'dual-write';
 * ```
 */
export type Stage = (typeof STAGES)[number];

/**
 * How a stage routes calls: which side is written first and is the source of truth, which
 * side is mirrored, and which side reads come from.
 *
 * @example
 * ```ts
 * routeOf('live'); // { authority: 'medplum', mirrorTo: 'legacy', readFrom: 'medplum', compareWith: 'legacy' }
 * ```
 */
export interface StageRoute {
  /** The side written first; the source of truth. */
  readonly authority: Side;
  /** The side that receives a mirror of every write, or `undefined` when none does. */
  readonly mirrorTo: Side | undefined;
  /** The side reads are served from. */
  readonly readFrom: Side;
  /** The side read alongside for comparison (shadow reads), when the stage does so. */
  readonly compareWith: Side | undefined;
}

const ROUTES: Readonly<Record<Stage, StageRoute>> = {
  'legacy-only': { authority: 'legacy', mirrorTo: undefined, readFrom: 'legacy', compareWith: undefined },
  'dual-write': { authority: 'legacy', mirrorTo: 'medplum', readFrom: 'legacy', compareWith: undefined },
  shadow: { authority: 'legacy', mirrorTo: 'medplum', readFrom: 'legacy', compareWith: 'medplum' },
  live: { authority: 'medplum', mirrorTo: 'legacy', readFrom: 'medplum', compareWith: 'legacy' },
  rampdown: { authority: 'medplum', mirrorTo: 'legacy', readFrom: 'medplum', compareWith: undefined },
  'medplum-only': { authority: 'medplum', mirrorTo: undefined, readFrom: 'medplum', compareWith: undefined },
};

/**
 * The routing of a stage.
 *
 * @param stage - The stage.
 * @returns Its authority, mirror target and read side.
 * @throws {@link InvalidInputError} naming `stage` when it is not a stage name.
 * @example
 * ```ts
 * routeOf('dual-write').mirrorTo; // 'medplum'
 * ```
 */
export function routeOf(stage: Stage): StageRoute {
  if (!isStage(stage)) throw new InvalidInputError('stage', `must be one of ${STAGES.join(', ')}`);
  return ROUTES[stage];
}

/**
 * Whether a value is one of the six stage names.
 *
 * @param value - Anything.
 * @returns `true` for a stage name.
 * @example
 * ```ts
 * isStage('shadow'); // true
 * isStage('Shadow'); // false
 * ```
 */
export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value);
}
