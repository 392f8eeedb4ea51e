import { ConfigurationError, InvalidInputError } from '../errors.ts';
import { isStage, routeOf, type Stage, type StageRoute } from './stage.ts';

/**
 * A unit's stage, either one stage for all its resource types or a default with overrides
 * per resource type.
 *
 * @example
 * ```ts
 * const a: UnitStages = 'shadow';
 * const b: UnitStages = { default: 'dual-write', resourceTypes: { Observation: 'legacy-only' } };
 * ```
 */
export type UnitStages =
  | Stage
  | {
      /** The stage of resource types not listed. Falls back to the plan's default. */
      readonly default?: Stage | undefined;
      /** Stages per FHIR resource type. */
      readonly resourceTypes: Readonly<Record<string, Stage>>;
    };

/**
 * Options of a {@link CutoverPlan}.
 *
 * @typeParam C - The per-call context type the service passes to the writer.
 * @example
 * ```ts
 * const options: CutoverPlanOptions<{ clinic: string }> = {
 *   default: 'legacy-only',
 *   units: { north: 'dual-write', south: 'live' },
 *   unitOf: (ctx) => ctx.clinic,
 * };
 * ```
 */
export interface CutoverPlanOptions<C> {
  /** The stage of every unit (and resource type) the plan does not list. */
  readonly default: Stage;
  /**
   * Stages per unit.
   * @default {}
   */
  readonly units?: Readonly<Record<string, UnitStages>> | undefined;
  /**
   * Derives the unit a call belongs to from its context. Must return a non-empty string.
   */
  readonly unitOf: (ctx: C) => string;
}

/**
 * Maps units (and optionally resource types within a unit) to stages, and derives each call's
 * unit from its context. Stages can change at run time with {@link CutoverPlan.set}; every
 * call reads the plan afresh.
 *
 * @typeParam C - The per-call context type.
 * @example
 * ```ts
 * const plan = new CutoverPlan<{ clinic: string }>({
 *   default: 'legacy-only',
 *   units: { north: 'dual-write' },
 *   unitOf: (ctx) => ctx.clinic,
 * });
 * plan.stageOf('north', 'Patient'); // 'dual-write'
 * plan.set('north', 'shadow');
 * ```
 */
export class CutoverPlan<C> {
  readonly #default: Stage;
  readonly #units = new Map<string, { default: Stage | undefined; types: Map<string, Stage> }>();
  readonly #unitOf: (ctx: C) => string;

  /**
   * @param options - The default stage, stages per unit, and the unit function.
   * @throws {@link ConfigurationError} naming the option when a stage name or `unitOf` is invalid.
   */
  constructor(options: CutoverPlanOptions<C>) {
    if (typeof options !== 'object')
      throw new ConfigurationError('plan', options, 'must be an options object');
    if (!isStage(options.default))
      throw new ConfigurationError('plan.default', options.default, stageProblem);
    if (typeof options.unitOf !== 'function')
      throw new ConfigurationError('plan.unitOf', options.unitOf, 'must be a function (ctx) => unit');
    this.#default = options.default;
    this.#unitOf = options.unitOf;
    for (const [unit, stages] of Object.entries(options.units ?? {})) {
      if (typeof stages === 'string') {
        if (!isStage(stages)) throw new ConfigurationError(`plan.units.${unit}`, stages, stageProblem);
        this.set(unit, stages);
        continue;
      }
      if (stages.default !== undefined) {
        if (!isStage(stages.default))
          throw new ConfigurationError(`plan.units.${unit}.default`, stages.default, stageProblem);
        this.set(unit, stages.default);
      }
      for (const [type, stage] of Object.entries(stages.resourceTypes)) {
        if (!isStage(stage))
          throw new ConfigurationError(`plan.units.${unit}.resourceTypes.${type}`, stage, stageProblem);
        this.set(unit, stage, { resourceType: type });
      }
    }
  }

  /**
   * The unit a call belongs to.
   *
   * @param ctx - The call's context.
   * @returns The unit name.
   * @throws {@link InvalidInputError} naming `ctx` when `unitOf` throws or returns no unit.
   * @example
   * ```ts
   * plan.unitOf({ clinic: 'north' }); // 'north'
   * ```
   */
  unitOf(ctx: C): string {
    let unit: unknown;
    try {
      unit = this.#unitOf(ctx);
    } catch (err) {
      throw new InvalidInputError('ctx', 'unitOf(ctx) threw', { cause: err });
    }
    if (typeof unit !== 'string' || unit === '') {
      throw new InvalidInputError(
        'ctx',
        `unitOf(ctx) must return a non-empty string, returned ${unit === '' ? 'an empty string' : typeof unit}`,
      );
    }
    return unit;
  }

  /**
   * The stage of a unit for a resource type: the unit's override for the type, else the
   * unit's default, else the plan's default.
   *
   * @param unit - The unit.
   * @param resourceType - The FHIR resource type.
   * @returns The stage.
   * @example
   * ```ts
   * plan.stageOf('north', 'Patient');
   * ```
   */
  stageOf(unit: string, resourceType: string): Stage {
    const entry = this.#units.get(unit);
    return entry?.types.get(resourceType) ?? entry?.default ?? this.#default;
  }

  /**
   * The routing of a unit and resource type: authority, mirror target and read side.
   *
   * @param unit - The unit.
   * @param resourceType - The FHIR resource type.
   * @returns The stage and its route.
   * @example
   * ```ts
   * plan.routeOf('north', 'Patient').authority; // 'legacy'
   * ```
   */
  routeOf(unit: string, resourceType: string): StageRoute & { readonly stage: Stage } {
    const stage = this.stageOf(unit, resourceType);
    return { stage, ...routeOf(stage) };
  }

  /**
   * Moves a unit (or one resource type within it) to a stage. Takes effect for the next call.
   *
   * @param unit - The unit.
   * @param stage - The new stage.
   * @param options - `resourceType` limits the change to one type.
   * @throws {@link InvalidInputError} naming `stage` or `unit` when invalid.
   * @example
   * ```ts
   * plan.set('north', 'live');
   * plan.set('north', 'dual-write', { resourceType: 'Observation' });
   * ```
   */
  set(unit: string, stage: Stage, options: { readonly resourceType?: string } = {}): void {
    if (typeof unit !== 'string' || unit === '')
      throw new InvalidInputError('unit', 'must be a non-empty string');
    if (!isStage(stage))
      throw new InvalidInputError('stage', `${stageProblem} (got ${JSON.stringify(stage)})`);
    let entry = this.#units.get(unit);
    if (entry === undefined) {
      entry = { default: undefined, types: new Map() };
      this.#units.set(unit, entry);
    }
    if (options.resourceType === undefined) entry.default = stage;
    else entry.types.set(options.resourceType, stage);
  }
}

const stageProblem = 'must be one of legacy-only, dual-write, shadow, live, rampdown, medplum-only';
