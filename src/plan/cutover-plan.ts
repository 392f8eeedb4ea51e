import { namedRecord } from '../named-record.ts';
import { valueFreeError } from '../error-values.ts';
import { ConfigurationError, DualWriteError, InvalidInputError } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { storedStageOf, type PlanSeed, type StoredPlan } from '../journal/stored-plan.ts';
import type { Readiness } from './readiness.ts';
import { isStage, routeOf, STAGES, type Stage, type StageRoute } from './stage.ts';
import {
  aFunction,
  anObject,
  checkOptions,
  checkValue,
  kindOf,
  MAX_NAME_LENGTH,
  nonEmptyString,
  storedText,
  unitName,
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
  #default: Stage;
  readonly #units = new Map<string, { default: Stage | undefined; types: Map<string, Stage> }>();
  readonly #unitOf: (ctx: C) => string;
  #revision: number | undefined;
  #store: SyncStore | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshMs = DEFAULT_REFRESH_MS;
  /** When the stored plan was last read successfully (epoch ms). */
  #refreshedAt: number | undefined;
  /** The last refresh's failure, until a refresh succeeds. */
  #failure: { readonly since: number; readonly error: unknown } | undefined;
  #onRefreshError: ((error: unknown) => void) | undefined;
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
      throw new InvalidInputError('ctx', 'unitOf(ctx) threw', { cause: valueFreeError(err) });
    }
    if (!unitName.test(unit)) {
      throw new InvalidInputError(
        'ctx',
        `unitOf(ctx) must return a non-empty string of at most ${MAX_NAME_LENGTH} characters, returned ${kindOf(unit)}`,
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
    checkValue(unit, unitName, 'unit', 'input');
    if (!isStage(stage)) throw new InvalidInputError('stage', stageProblem);
    const given = checkOptions(options, 'options', 'input', CHANGE_OPTIONS);
    const resourceType = given.resourceType as string | undefined;
    const force = given.force === true;
    // A compare-and-set that finds another stage stored reloads the plan and decides again
    // from there: the checks below must judge the move from the stage the store holds.
    let stored: StoredPlan | undefined;
    for (let attempt = 1; ; attempt++) {
      const from =
        stored !== undefined
          ? storedStageOf(stored, unit, resourceType)
          : resourceType === undefined
            ? this.#unitStage(unit)
            : this.stageOf(unit, resourceType);
      await this.#check(unit, from, stage, force);
      const change: StageChange = {
        unit,
        resourceType,
        from,
        to: stage,
        reason: options.reason,
        by: options.by,
        forced: force && STAGES.indexOf(stage) > STAGES.indexOf(from),
        at: new Date().toISOString(),
      };
      const store = this.#store;
      if (store === undefined) {
        this.#apply(unit, stage, resourceType);
        return change;
      }
      const outcome = await store.changePlan(
        { unit, resourceType, from, to: stage },
        { type: 'stage-change', unit, resourceType, data: { ...change } },
      );
      // Only what the store holds is applied here: a failed change leaves this instance on the
      // stored plan, never on a stage nobody stored. An answer older than the copy (another
      // call's, or the refresh's, landed first) is not applied over it.
      if (this.#store === store && outcome.plan.revision > (this.#revision ?? -1))
        this.#replace(outcome.plan);
      if (outcome.applied) return change;
      stored = outcome.plan;
      if (attempt >= MAX_CHANGE_ATTEMPTS)
        throw new StageChangeRefusedError(
          unit,
          from,
          stage,
          `the stored plan changed under ${String(MAX_CHANGE_ATTEMPTS)} attempts in a row; try again`,
          undefined,
        );
    }
  }

  async #check(unit: string, from: Stage, stage: Stage, force: boolean): Promise<void> {
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
        const failing = [
          ...readiness.failing.map((f) => `${f.gate} ${String(f.value)} > ${String(f.limit)}`),
          // A readiness function of the caller's may predate `unknown` and `plan`.
          ...((readiness.unknown as Readiness['unknown'] | undefined) ?? []).map(
            (u) => `${u.gate} unknown (${String(u.samples)} of ${String(u.needed)} samples)`,
          ),
          ...((readiness.plan as Readiness['plan'] | undefined)?.stale === true
            ? ['the plan is stale on this instance']
            : []),
        ].join(', ');
        throw new StageChangeRefusedError(
          unit,
          from,
          stage,
          `the unit is not ready: ${failing === '' ? readiness.verdict : failing}`,
          readiness,
        );
      }
    }
  }

  /**
   * Shares the plan through a store every service instance attaches to, and follows it.
   *
   * **The store wins.** On attach, the default and the stages this plan was configured with are
   * stored only where the store holds none yet (the first instance seeds the plan; a unit added
   * to the code later is added); from then on the stored plan is the plan, whatever an
   * instance's code says, and it changes only through {@link CutoverPlan.set}.
   *
   * Each instance re-reads the stored revision every `refreshMs` and reloads the plan when the
   * revision differs from its own, so a change made through any instance routes every other
   * instance's calls within `refreshMs` plus one query. A failed re-read is reported to the
   * listener given to {@link CutoverPlan.onRefreshError} and makes {@link CutoverPlan.status}
   * say `stale` until a re-read succeeds.
   *
   * @param store - The store every service instance shares.
   * @param options - How often to re-read the stored revision.
   * @returns When the stored plan has been loaded (seeded first, where the store held nothing).
   * @throws {@link ConfigurationError} (a rejection) naming the store method or the option at fault.
   * @example
   * ```ts
   * await plan.attach(store, { refreshMs: 1000 });
   * ```
   */
  async attach(store: SyncStore, options: { readonly refreshMs?: number | undefined } = {}): Promise<void> {
    const methods = store as unknown as Record<string, unknown> | null | undefined;
    for (const method of ['loadPlan', 'planRevision', 'seedPlan', 'changePlan', 'listEvents']) {
      if (typeof methods?.[method] !== 'function')
        throw new ConfigurationError(
          `store.${method}`,
          methods?.[method],
          'must be a function (a SyncStore)',
        );
    }
    const given = checkOptions(options, 'options', 'configuration', { refreshMs: positiveMs });
    this.detach();
    const stored = await store.seedPlan(this.#seed());
    this.#store = store;
    this.#refreshMs = (given.refreshMs as number | undefined) ?? DEFAULT_REFRESH_MS;
    this.#replace(stored);
    this.#refreshedAt = Date.now();
    this.#failure = undefined;
    this.#timer = setInterval(() => {
      // Reported through onRefreshError and status(); the next tick tries again.
      this.refresh().catch(() => undefined);
    }, this.#refreshMs);
    this.#timer.unref();
  }

  /**
   * Re-reads the stored plan now (what the refresh timer does): reloads it when the stored
   * revision differs from this instance's.
   *
   * @returns When the stored plan is applied; rejects with the store's error (also reported
   *   to the {@link CutoverPlan.onRefreshError} listener).
   * @example
   * ```ts
   * await plan.refresh();
   * ```
   */
  async refresh(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    try {
      const revision = await store.planRevision();
      if (revision !== this.#revision) {
        const stored = await store.loadPlan();
        if (stored !== undefined && this.#store === store) this.#replace(stored);
      }
      this.#refreshedAt = Date.now();
      this.#failure = undefined;
    } catch (err) {
      this.#failure ??= { since: Date.now(), error: err };
      this.#onRefreshError?.(err);
      throw err;
    }
  }

  /**
   * Where this instance stands with the stored plan: the revision it routes by, when it last
   * read the store, and whether its copy is `stale` — its last re-read failed, or none
   * succeeded for three refresh intervals — so other instances may route by a newer plan.
   *
   * @returns The status; `attached: false` for a plan that follows no store (never stale).
   * @example
   * ```ts
   * const { stale, revision } = plan.status();
   * ```
   */
  status(): PlanStatus {
    if (this.#store === undefined)
      return { attached: false, revision: this.#revision, refreshedAt: undefined, stale: false };
    const refreshedAt = this.#refreshedAt;
    const late = refreshedAt === undefined || Date.now() - refreshedAt > 3 * this.#refreshMs;
    return {
      attached: true,
      revision: this.#revision,
      refreshedAt: refreshedAt === undefined ? undefined : new Date(refreshedAt).toISOString(),
      stale: this.#failure !== undefined || late,
    };
  }

  /**
   * Calls `listener` with the error of every failed re-read of the stored plan (a `DualWriter`
   * registers itself and publishes a `plan-stale` event).
   *
   * @param listener - Called with the store's error; `undefined` removes it.
   * @throws {@link ConfigurationError} naming `listener` when it is not a function.
   * @example
   * ```ts
   * plan.onRefreshError((error) => logger.warn({ error }, 'cutover plan is stale'));
   * ```
   */
  onRefreshError(listener: ((error: unknown) => void) | undefined): void {
    if (listener !== undefined) checkValue(listener, aFunction, 'listener', 'configuration');
    this.#onRefreshError = listener;
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
   * The plan as this instance routes by it: default, stages per unit, and the stored revision
   * it was loaded at (`0` when it follows no store).
   *
   * @returns The JSON document.
   * @example
   * ```ts
   * console.log(JSON.stringify(plan.toJSON()));
   * ```
   */
  toJSON(): StoredPlan {
    return { revision: this.#revision ?? 0, ...this.#seed() };
  }

  #seed(): PlanSeed {
    // Without a prototype: a unit named `__proto__` is a key like any other.
    const units = namedRecord<{ default?: Stage; resourceTypes: Record<string, Stage> }>();
    for (const [unit, entry] of this.#units) {
      units[unit] = {
        ...(entry.default === undefined ? {} : { default: entry.default }),
        resourceTypes: namedRecord(entry.types),
      };
    }
    return { default: this.#default, units };
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

  /** Routes by a stored plan from now on (a newer or an older one: any difference reloads). */
  #replace(stored: StoredPlan): void {
    this.#units.clear();
    for (const [unit, stages] of Object.entries(stored.units)) {
      if (isStage(stages.default)) this.#apply(unit, stages.default, undefined);
      for (const [type, stage] of Object.entries(stages.resourceTypes)) {
        if (isStage(stage)) this.#apply(unit, stage, type);
      }
    }
    this.#default = stored.default;
    this.#revision = stored.revision;
  }
}

/**
 * Where an instance stands with the stored plan ({@link CutoverPlan.status}).
 *
 * @example
 * ```ts
 * const status: PlanStatus = plan.status();
 * if (status.stale) console.warn(`routing by plan revision ${String(status.revision)}, last read ${status.refreshedAt ?? 'never'}`);
 * ```
 */
export interface PlanStatus {
  /** Whether the plan follows a store. */
  readonly attached: boolean;
  /** The stored revision this instance routes by (`undefined` before the first load). */
  readonly revision: number | undefined;
  /** When the stored plan was last read successfully (ISO 8601). */
  readonly refreshedAt: string | undefined;
  /** Whether other instances may route by a newer plan than this one. */
  readonly stale: boolean;
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
  reason: storedText,
  by: unitName,
  force: trueOrFalse,
} satisfies Record<keyof StageChangeOptions, Rule>;

/** How often an attached plan re-reads the stored revision, by default. */
const DEFAULT_REFRESH_MS = 1000;

/** Compare-and-set attempts of one change before giving up (each lost to another change). */
const MAX_CHANGE_ATTEMPTS = 10;

const stageProblem = 'must be one of legacy-only, dual-write, shadow, live, rampdown, medplum-only';

const aStage: Rule<Stage> = { test: isStage, problem: stageProblem };
