import { ConfigurationError, DualWriteError, InvalidInputError } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { Readiness } from './readiness.ts';
import { isStage, routeOf, STAGES, type Stage, type StageRoute } from './stage.ts';
import {
  aFunction,
  anObject,
  checkOptions,
  checkValue,
  nonEmptyString,
  positiveInteger,
  positiveMs,
  refuseUnknownKeys,
  resourceTypeName,
  trueOrFalse,
  type Rule,
} from '../option-checks.ts';

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
 * call reads the plan afresh. Attached to a store ({@link CutoverPlan.attach}), the plan is
 * shared by every service instance and its changes are recorded.
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
 * await plan.set('north', 'shadow', { reason: 'dual-write clean for two weeks', by: 'ops:maria' });
 * ```
 */
export class CutoverPlan<C> {
  readonly #default: Stage;
  readonly #units = new Map<string, { default: Stage | undefined; types: Map<string, Stage> }>();
  readonly #unitOf: (ctx: C) => string;
  #revision = 0;
  #store: SyncStore | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #readiness: ((unit: string) => Promise<Readiness>) | undefined;

  /**
   * @param options - The default stage, stages per unit, and the unit function.
   * @throws {@link ConfigurationError} naming the option when a stage name, a resource type
   *   name or `unitOf` is invalid, or an option is unknown.
   */
  constructor(options: CutoverPlanOptions<C>) {
    checkValue(options, anObject, 'plan', 'configuration');
    refuseUnknownKeys(options, 'configuration', ['default', 'units', 'unitOf'], 'plan.');
    checkValue(options.default, aStage, 'plan.default', 'configuration');
    if (typeof options.unitOf !== 'function')
      throw new ConfigurationError('plan.unitOf', options.unitOf, 'must be a function (ctx) => unit');
    this.#default = options.default;
    this.#unitOf = options.unitOf;
    if (options.units !== undefined) checkValue(options.units, anObject, 'plan.units', 'configuration');
    for (const [unit, stages] of Object.entries(options.units ?? {})) {
      const field = `plan.units.${unit}`;
      if (typeof stages === 'string') {
        checkValue(stages, aStage, field, 'configuration');
        this.#apply(unit, stages, undefined);
        continue;
      }
      if (!anObject.test(stages))
        throw new ConfigurationError(
          field,
          stages,
          `${stageProblem}, or an object such as { default, resourceTypes }`,
        );
      const given = checkOptions(
        stages,
        field,
        'configuration',
        { default: aStage, resourceTypes: anObject },
        `${field}.`,
      );
      if (given.resourceTypes === undefined)
        throw new ConfigurationError(
          `${field}.resourceTypes`,
          undefined,
          'must be an object of stages by resource type (or give the unit one stage)',
        );
      if (stages.default !== undefined) this.#apply(unit, stages.default, undefined);
      for (const [type, stage] of Object.entries(stages.resourceTypes)) {
        checkValue(type, resourceTypeName, `${field}.resourceTypes.${type}`, 'configuration');
        checkValue(stage, aStage, `${field}.resourceTypes.${type}`, 'configuration');
        this.#apply(unit, stage, type);
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
   * Moves a unit (or one resource type within it) to a stage, for every call from now on, and —
   * when the plan is attached to a store — for every service instance within its refresh
   * interval. The change is recorded (`stage-change` event: from, to, reason, by, forced).
   *
   * Stepping back is always allowed and loses nothing: the stage that comes back has received
   * every write's mirror all along. Moving forward more than one stage at once, or forward while
   * the unit fails its readiness gates (when a writer provides readiness), is refused with a
   * {@link StageChangeRefusedError} unless `force` is set.
   *
   * @param unit - The unit.
   * @param stage - The new stage.
   * @param options - `resourceType` limits the change to one type; `reason` and `by` are recorded; `force` skips the checks.
   * @returns The change as recorded.
   * @throws {@link InvalidInputError} naming `stage`, `unit` or the option when invalid, or an
   *   unknown option (nothing is changed).
   * @throws {@link StageChangeRefusedError} when a forward move skips a stage or the unit is not ready.
   * @example
   * ```ts
   * await plan.set('north', 'shadow', { reason: 'two weeks clean in dual-write', by: 'ops:maria' });
   * await plan.set('north', 'dual-write', { reason: 'divergence in shadow reads', by: 'ops:maria' });
   * ```
   */
  async set(unit: string, stage: Stage, options: StageChangeOptions = {}): Promise<StageChange> {
    if (typeof unit !== 'string' || unit === '')
      throw new InvalidInputError('unit', 'must be a non-empty string');
    if (!isStage(stage)) throw new InvalidInputError('stage', stageProblem);
    const given = checkOptions(options, 'options', 'input', CHANGE_OPTIONS);
    const resourceType = given.resourceType as string | undefined;
    const force = given.force === true;
    const from = resourceType === undefined ? this.#unitStage(unit) : this.stageOf(unit, resourceType);
    const step = STAGES.indexOf(stage) - STAGES.indexOf(from);
    if (!force && step > 1) {
      throw new StageChangeRefusedError(
        unit,
        from,
        stage,
        `moves ${String(step)} stages forward at once (next is ${STAGES[STAGES.indexOf(from) + 1] ?? from}); pass { force: true } to do it anyway`,
        undefined,
      );
    }
    if (!force && step > 0 && this.#readiness !== undefined) {
      const readiness = await this.#readiness(unit);
      if (readiness.verdict !== 'ready') {
        const failing = readiness.failing
          .map((f) => `${f.gate} ${String(f.value)} > ${String(f.limit)}`)
          .join(', ');
        throw new StageChangeRefusedError(
          unit,
          from,
          stage,
          `the unit fails its readiness gates: ${failing}`,
          readiness,
        );
      }
    }
    this.#apply(unit, stage, resourceType);
    this.#revision++;
    const change: StageChange = {
      unit,
      resourceType,
      from,
      to: stage,
      reason: options.reason,
      by: options.by,
      forced: force && step > 0,
      at: new Date().toISOString(),
    };
    if (this.#store !== undefined) {
      await this.#store.savePlan(this.toJSON());
      await this.#store.appendEvent({ type: 'stage-change', unit, resourceType, data: { ...change } });
    }
    return change;
  }

  /**
   * Stores the plan in a store and follows it: the stored plan (if any) replaces this one's
   * stages, changes made through any instance's {@link CutoverPlan.set} are picked up within
   * `refreshMs`, and this plan's changes are saved there. Call {@link CutoverPlan.detach} to stop
   * following.
   *
   * @param store - The store every service instance shares.
   * @param options - How often to re-read the stored plan.
   * @returns When the stored plan has been loaded (or this one saved, when none was stored).
   * @throws {@link ConfigurationError} (a rejection) naming the store method or the option at fault.
   * @example
   * ```ts
   * await plan.attach(store, { refreshMs: 1000 });
   * ```
   */
  async attach(store: SyncStore, options: { readonly refreshMs?: number | undefined } = {}): Promise<void> {
    const methods = store as unknown as Record<string, unknown> | null | undefined;
    for (const method of ['loadPlan', 'savePlan', 'appendEvent', 'listEvents']) {
      if (typeof methods?.[method] !== 'function')
        throw new ConfigurationError(
          `store.${method}`,
          methods?.[method],
          'must be a function (a SyncStore)',
        );
    }
    const given = checkOptions(options, 'options', 'configuration', { refreshMs: positiveMs });
    const refreshMs = (given.refreshMs as number | undefined) ?? 1000;
    this.detach();
    this.#store = store;
    const stored = await store.loadPlan();
    if (stored === undefined || stored === null) await store.savePlan(this.toJSON());
    else this.#load(stored, true);
    this.#timer = setInterval(() => {
      void this.refresh().catch(() => undefined);
    }, refreshMs);
    this.#timer.unref();
  }

  /**
   * Re-reads the stored plan now (what the refresh timer does).
   *
   * @returns When the stored plan is applied.
   * @example
   * ```ts
   * await plan.refresh();
   * ```
   */
  async refresh(): Promise<void> {
    if (this.#store === undefined) return;
    const stored = await this.#store.loadPlan();
    if (stored !== undefined && stored !== null) this.#load(stored, false);
  }

  /**
   * Stops following the store (the stages stay as they are).
   *
   * @example
   * ```ts
   * plan.detach();
   * ```
   */
  detach(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#store = undefined;
  }

  /**
   * The recorded stage changes, newest first (from the attached store).
   *
   * @param options - Only one unit's; at most `limit`.
   * @returns The changes.
   * @throws {@link InvalidInputError} (a rejection) naming `options` or the option at fault.
   * @example
   * ```ts
   * for (const change of await plan.history({ unit: 'north' })) console.log(change.at, change.from, change.to, change.by, change.reason);
   * ```
   */
  async history(options: { readonly unit?: string; readonly limit?: number } = {}): Promise<StageChange[]> {
    const given = checkOptions(options, 'options', 'input', { unit: nonEmptyString, limit: positiveInteger });
    const unit = given.unit as string | undefined;
    if (this.#store === undefined) return [];
    const events = await this.#store.listEvents({
      type: 'stage-change',
      unit,
      limit: (given.limit as number | undefined) ?? 1000,
    });
    return events.map((event) => event.data as unknown as StageChange);
  }

  /**
   * Lets forward moves be checked against a unit's readiness (a `DualWriter` registers itself).
   *
   * @param readiness - The unit's readiness now.
   * @throws {@link ConfigurationError} naming `readiness` when it is not a function.
   * @example
   * ```ts
   * plan.useReadiness((unit) => writer.readiness(unit));
   * ```
   */
  useReadiness(readiness: ((unit: string) => Promise<Readiness>) | undefined): void {
    if (readiness !== undefined) checkValue(readiness, aFunction, 'readiness', 'configuration');
    this.#readiness = readiness;
  }

  /**
   * The plan as stored: default, stages per unit, and a revision that counts changes.
   *
   * @returns The JSON document.
   * @example
   * ```ts
   * await store.savePlan(plan.toJSON());
   * ```
   */
  toJSON(): StoredPlan {
    const units: Record<string, { default?: Stage; resourceTypes: Record<string, Stage> }> = {};
    for (const [unit, entry] of this.#units) {
      units[unit] = {
        ...(entry.default === undefined ? {} : { default: entry.default }),
        resourceTypes: Object.fromEntries(entry.types),
      };
    }
    return { revision: this.#revision, default: this.#default, units };
  }

  #unitStage(unit: string): Stage {
    return this.#units.get(unit)?.default ?? this.#default;
  }

  #apply(unit: string, stage: Stage, resourceType: string | undefined): void {
    let entry = this.#units.get(unit);
    if (entry === undefined) {
      entry = { default: undefined, types: new Map() };
      this.#units.set(unit, entry);
    }
    if (resourceType === undefined) entry.default = stage;
    else entry.types.set(resourceType, stage);
  }

  #load(stored: unknown, always: boolean): void {
    const plan = stored as Partial<StoredPlan>;
    if (typeof plan.revision !== 'number' || (!always && plan.revision === this.#revision)) return;
    this.#units.clear();
    for (const [unit, stages] of Object.entries(plan.units ?? {})) {
      if (isStage(stages.default)) this.#apply(unit, stages.default, undefined);
      for (const [type, stage] of Object.entries(stages.resourceTypes)) {
        if (isStage(stage)) this.#apply(unit, stage, type);
      }
    }
    this.#revision = plan.revision;
  }
}

/**
 * Options of {@link CutoverPlan.set}.
 *
 * @example
 * ```ts
 * const options: StageChangeOptions = { reason: 'gates green for 14 days', by: 'ops:maria' };
 * ```
 */
export interface StageChangeOptions {
  /** Limit the change to one resource type of the unit. */
  readonly resourceType?: string | undefined;
  /** Why (recorded; no PHI). */
  readonly reason?: string | undefined;
  /** Who (recorded). */
  readonly by?: string | undefined;
  /**
   * Move forward more than one stage, or while the unit fails its readiness gates.
   * @default false
   */
  readonly force?: boolean | undefined;
}

/**
 * One recorded stage change.
 *
 * @example
 * ```ts
 * const change: StageChange = await plan.set('north', 'shadow', { by: 'ops:maria' });
 * ```
 */
export interface StageChange {
  readonly unit: string;
  readonly resourceType: string | undefined;
  readonly from: Stage;
  readonly to: Stage;
  readonly reason: string | undefined;
  readonly by: string | undefined;
  /** Whether `force` overrode a check. */
  readonly forced: boolean;
  readonly at: string;
}

/**
 * The stored form of a plan.
 *
 * @example
 * ```ts
 * const stored: StoredPlan = { revision: 3, default: 'legacy-only', units: { north: { default: 'shadow', resourceTypes: {} } } };
 * ```
 */
export interface StoredPlan {
  /** Counts changes; an instance re-applies the stored plan when it differs from its own. */
  readonly revision: number;
  readonly default: Stage;
  readonly units: Readonly<
    Record<string, { readonly default?: Stage; readonly resourceTypes: Readonly<Record<string, Stage>> }>
  >;
}

/**
 * A stage change the plan refused: a forward move that skips a stage, or one while the unit
 * fails its readiness gates. Not retryable as is: pass `force` or wait until the unit is ready.
 *
 * @example
 * ```ts
 * try { await plan.set('north', 'live'); } catch (err) { if (err instanceof StageChangeRefusedError) console.log(err.readiness?.failing); }
 * ```
 */
export class StageChangeRefusedError extends DualWriteError {
  override readonly name = 'StageChangeRefusedError' as const;
  readonly retryable = false as const;
  readonly unit: string;
  readonly from: Stage;
  readonly to: Stage;
  /** The readiness that failed, when the gates refused. */
  readonly readiness: Readiness | undefined;
  /**
   * @param unit - The unit.
   * @param from - Its stage.
   * @param to - The stage asked for.
   * @param problem - Why it was refused.
   * @param readiness - The failing readiness, if that was why.
   */
  constructor(unit: string, from: Stage, to: Stage, problem: string, readiness: Readiness | undefined) {
    super(`${unit}: ${from} → ${to} refused: ${problem}`);
    this.unit = unit;
    this.from = from;
    this.to = to;
    this.readiness = readiness;
  }
}

/** The options of {@link CutoverPlan.set}; a key not listed is refused (a typo must not move the whole unit). */
const CHANGE_OPTIONS = {
  resourceType: resourceTypeName,
  reason: nonEmptyString,
  by: nonEmptyString,
  force: trueOrFalse,
} satisfies Record<keyof StageChangeOptions, Rule>;

const stageProblem = 'must be one of legacy-only, dual-write, shadow, live, rampdown, medplum-only';

const aStage: Rule<Stage> = { test: isStage, problem: stageProblem };
