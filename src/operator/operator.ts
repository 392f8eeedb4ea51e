import type { MedplumClient } from '@medplum/core';
import type { Resolution } from '../conflict/conflict-context.ts';
import { operatorResolution, resolveConflict } from '../conflict/resolve-conflict.ts';
import { authorityWins } from '../conflict/resolvers.ts';
import { EventPublisher } from '../events/event-publisher.ts';
import type { EventSink } from '../events/event-sink.ts';
import {
  ConfigurationError,
  DeadLetterNotFoundError,
  InvalidInputError,
  JobNotFoundError,
} from '../errors.ts';
import { retryPolicyOf } from '../mirror/retry-policy.ts';
import { backfill as runBackfill, type BackfillOptions } from '../jobs/backfill.ts';
import type { JobContext } from '../jobs/job-context.ts';
import { reconcile as runReconcile, type ReconcileOptions } from '../jobs/reconcile.ts';
import { OPEN_JOB_STATES, type Job, type JobFilter } from '../journal/job.ts';
import type { DeadLetter, DeadLetterFilter, OutboxCounts } from '../journal/outbox.ts';
import type { StoredPlan } from '../journal/stored-plan.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { UnitPause } from '../journal/housekeeping.ts';
import {
  pruneJournal,
  retentionPolicyOf,
  type PruneReport,
  type RetentionOptions,
} from '../journal/retention.ts';
import { drainUnit, type UnitDrained } from '../mirror/drain-unit.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { resolveContextOf, resolved, type MirrorContext } from '../mirror/mirror-entry.ts';
import { RecordLocks } from '../mirror/record-locks.ts';
import {
  anObject,
  aFunction,
  checkOptions,
  checkValue,
  kindOf,
  MAX_TEXT_LENGTH,
  nonEmptyString,
  storedText,
  unitName,
  oneOf,
  positiveInteger,
  positiveMs,
  resourceTypeName,
} from '../option-checks.ts';
import type { QuotaPacer } from '../pacing/quota-pacer.ts';
import type { CutoverPlan, StageChange, StageChangeOptions } from '../plan/cutover-plan.ts';
import { validateReadinessOptions, type Readiness, type ReadinessOptions } from '../plan/readiness.ts';
import type { Stage } from '../plan/stage.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import { MedplumSide } from '../sides/medplum-side.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../sides/request-deadline.ts';
import { timedLegacyAdapter } from '../sides/timed-legacy-adapter.ts';
import {
  deadLetterView,
  type BacklogLine,
  type BulkOutcome,
  type ConflictCounts,
  type ConflictView,
  type DeadLetterView,
  type OperatorStatus,
  type UnitStatus,
} from './operator-views.ts';
import { readinessPolicyOf, unitReadiness, type ReadinessPolicy } from './unit-readiness.ts';

/**
 * What an {@link Operator} works from. Only `store`, `mappings` and `plan` are required: the
 * calls that read or change the journal and the plan need nothing else. The two systems'
 * clients are needed only by the calls that touch records (see each call).
 *
 * @typeParam C - The per-call context type of the plan.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const options: OperatorOptions<{ clinic: string }, PostgresTableRow> = { store, mappings: [patients], plan, legacy, medplum };
 * ```
 */
export interface OperatorOptions<C, L> {
  /** The journal every instance of the application shares. */
  readonly store: SyncStore;
  /** The mappings, one per resource type (the application's own). */
  readonly mappings: readonly ResourceMapping<L>[];
  /**
   * The cutover plan as the application configures it. The operator attaches it to `store`
   * on first use (the stored plan wins; see `CutoverPlan.attach`) unless it is attached already.
   */
  readonly plan: CutoverPlan<C>;
  /** The legacy system: needed by `resolveDeadLetter(s)`, `backfill` and `reconcile`. */
  readonly legacy?: LegacyAdapter<L> | undefined;
  /** A Medplum client: needed by `resolveDeadLetter(s)`, `backfill` and `reconcile`. */
  readonly medplum?: MedplumClient | undefined;
  /** The readiness window and gates, as the application's writer has them. */
  readonly readiness?: ReadinessOptions | undefined;
  /** The unit of a record a job reads (the writer's `feeds.unitOf`); without it, give jobs a `unit`. */
  readonly unitOf?: JobContext<L>['unitOf'];
  /** The quota pacer of the Medplum client's user, when the client is shared. */
  readonly pacer?: QuotaPacer | undefined;
  /**
   * How long one request to either system (a job's search or scan, a resolution's read or
   * write) may go unanswered before it is abandoned with a `RequestTimeoutError` and retried,
   * as the writer's option of that name does. @default 10000
   */
  readonly requestTimeoutMs?: number | undefined;
  /** How `backfill` and `reconcile` retry a Medplum request that failed transiently. @default the library's */
  readonly retry?: JobContext<L>['retry'];
  /** Where the events of operator actions (`resolved`) go besides the store. @default [] */
  readonly sinks?: readonly EventSink[] | undefined;
}

/**
 * The parts a `DualWriter` shares with its operator, so that its operator calls are this
 * class's (one mechanism): its mirror context, locks, link cache, events and drainer. Handed
 * over by {@link wiredOperator}, never through the public constructor: a user has no such parts.
 *
 * @internal
 */
export interface OperatorWiring<L> {
  readonly mirror: MirrorContext<L>;
  readonly jobs: JobContext<L>;
  readonly events: EventPublisher;
  readonly locks: RecordLocks;
  /** Forgets a cached link after a resolution changed it. */
  readonly evict: (resourceType: string, legacyId: string) => void;
  /** Runs before readiness reads the store (flushes buffered samples). */
  readonly beforeReadiness: () => Promise<void>;
  /** Called when a record was queued again (wakes the drainer). */
  readonly queued: () => void;
  /** Applies queued mirrors (a backfill's back-pressure). */
  readonly drain: () => Promise<unknown>;
  /**
   * What `drainUnit` may run between its looks: the writer's drain while its drainer is not
   * running (so the unit drains without `start()`), else `undefined` (the drainers do the work).
   */
  readonly unitWork?: (() => ((untilMs: number) => Promise<unknown>) | undefined) | undefined;
}

/**
 * The wiring {@link wiredOperator} hands to the constructor it calls, taken by the constructor
 * at once: construction is synchronous, so no other operator can see it.
 */
let handedWiring: OperatorWiring<unknown> | undefined;

/**
 * An operator over a writer's own parts (see {@link OperatorWiring}); `DualWriter` makes its
 * operator so. Not exported from the package: the public constructor takes options only.
 *
 * @param options - The store, mappings and plan.
 * @param wiring - The writer's parts.
 * @returns The operator.
 * @example
 * ```ts
 * const operator = wiredOperator({ store, mappings, plan }, { mirror, jobs, events, locks, evict, beforeReadiness, queued, drain });
 * ```
 */
export function wiredOperator<C, L>(
  options: OperatorOptions<C, L>,
  wiring: OperatorWiring<L>,
): Operator<C, L> {
  handedWiring = wiring as OperatorWiring<unknown>;
  try {
    return new Operator<C, L>(options);
  } finally {
    handedWiring = undefined;
  }
}

/**
 * Which dead letters a bulk action takes; at least one filter is required.
 *
 * @example
 * ```ts
 * const filter: DeadLetterSelection = { reason: 'UnavailableError', unit: 'north' };
 * ```
 */
export type DeadLetterSelection = Omit<DeadLetterFilter, 'status'>;

const DEAD_LETTER_FILTER = {
  status: oneOf('open', 'retried', 'discarded', 'resolved', 'all'),
  unit: nonEmptyString,
  resourceType: resourceTypeName,
  target: oneOf('legacy', 'medplum'),
  reason: nonEmptyString,
  limit: positiveInteger,
};

const { status: _status, ...BULK_FILTER } = DEAD_LETTER_FILTER;

const OPERATOR_OPTIONS = {
  store: anObject,
  mappings: { test: Array.isArray, problem: 'must be an array of mappings' },
  plan: {
    test: (value: unknown): value is CutoverPlan<unknown> =>
      typeof (value as { routeOf?: unknown } | null)?.routeOf === 'function',
    problem: 'must be a CutoverPlan',
  },
  legacy: anObject,
  medplum: anObject,
  readiness: anObject,
  unitOf: aFunction,
  pacer: anObject,
  requestTimeoutMs: positiveMs,
  retry: anObject,
  sinks: { test: Array.isArray, problem: 'must be an array of event sinks' },
};

/**
 * The operator side of a migration: status, the plan, the backlog, dead letters, conflicts,
 * readiness and jobs, from the store, the mappings and the plan — with no `DualWriter` and
 * nothing started (no drainer, no feeds, no timer but the plan's refresh). A CLI, a console
 * or a script uses it beside the running application; `DualWriter`'s operator calls are this
 * class's.
 *
 * Which parts a call needs:
 * - store, mappings and plan only: `status`, `plan`, `setStage`, `planHistory`, `outbox`,
 *   `outboxCounts`, `deadLetters`, `deadLetter`, `retryDeadLetter(s)`, `discardDeadLetter(s)`, `conflicts`,
 *   `conflictCounts`, `readiness`, `jobs`, `job`, `pauseJob`, `resumeJob`, `cancelJob`;
 * - also `legacy` and `medplum`: `resolveDeadLetter(s)` (writes both sides), `backfill`,
 *   `reconcile` (read and queue records). Without them these reject with a
 *   {@link ConfigurationError} naming the missing option.
 *
 * Every result is plain JSON-serialisable data with stable field names, free of record values.
 * Bad input is an {@link InvalidInputError} naming the field; an id that names nothing is a
 * {@link DeadLetterNotFoundError} or a {@link JobNotFoundError}.
 *
 * A retried dead letter is queued in the journal: the application's drainer (any instance)
 * applies it.
 *
 * @typeParam C - The per-call context type of the plan.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const operator = new Operator({ store, mappings: [patients], plan });
 * const status = await operator.status();
 * console.log(JSON.stringify(status.totals));
 * await operator.retryDeadLetters({ reason: 'UnavailableError' });
 * await operator.close();
 * ```
 */
export class Operator<C, L> {
  readonly #store: SyncStore;
  readonly #plan: CutoverPlan<C>;
  readonly #mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly #policy: ReadinessPolicy;
  readonly #wiring: OperatorWiring<L> | undefined;
  readonly #options: OperatorOptions<C, L>;
  #parts:
    | {
        readonly events: EventPublisher;
        readonly locks: RecordLocks;
        readonly legacy: LegacyAdapter<L> | undefined;
      }
    | undefined;
  #attached: Promise<void> | undefined;
  #attachedHere = false;

  /**
   * @param options - The store, mappings and plan; the two systems' clients for the calls
   *   that touch records.
   * @throws {@link ConfigurationError} naming the option when one is missing or invalid.
   */
  constructor(options: OperatorOptions<C, L>) {
    const wiring = handedWiring as OperatorWiring<L> | undefined;
    handedWiring = undefined;
    checkOptions(options, 'options', 'configuration', OPERATOR_OPTIONS);
    for (const required of ['store', 'mappings', 'plan'] as const)
      if ((options as unknown as Record<string, unknown>)[required] === undefined)
        throw new ConfigurationError(required, undefined, 'is required by the operator');
    validateReadinessOptions(options.readiness, 'readiness');
    retryPolicyOf(options.retry);
    const mappings = new Map<string, ResourceMapping<L>>();
    options.mappings.forEach((mapping, i) => {
      checkValue(mapping, anObject, `mappings[${String(i)}]`, 'configuration');
      checkValue(
        mapping.resourceType,
        resourceTypeName,
        `mappings[${String(i)}].resourceType`,
        'configuration',
      );
      mappings.set(mapping.resourceType, mapping);
    });
    this.#options = options;
    this.#store = options.store;
    this.#plan = options.plan;
    this.#mappings = mappings;
    this.#policy = readinessPolicyOf(options.readiness);
    this.#wiring = wiring;
    // Forward moves are checked against readiness, as a writer's are (a writer registers its own).
    if (wiring === undefined) this.#plan.useReadiness((unit) => this.readiness(unit));
  }

  /**
   * Every unit at a glance: the plan, each unit's stages per mapped type, its pause (see
   * {@link Operator.pauseUnit}) and backlog (pending, waiting, leased, dead, the oldest mirror's
   * age), the totals, and the open jobs. Needs the store and plan only.
   *
   * @returns The status.
   * @example
   * ```ts
   * const { units, totals } = await operator.status();
   * for (const u of units) console.log(u.unit, u.stages, u.paused?.since, u.pending, u.dead);
   * ```
   */
  async status(): Promise<OperatorStatus> {
    await this.#followPlan();
    const now = Date.now();
    const [lines, running, paused, pauses] = await Promise.all([
      this.#store.outboxBacklog(),
      this.#store.listJobs({ state: 'running' }),
      this.#store.listJobs({ state: 'paused' }),
      this.#store.unitPauses(),
    ]);
    const plan = this.#plan.toJSON();
    const pauseOf = new Map(pauses.map(({ unit, ...pause }) => [unit, pause]));
    const names = new Set([...Object.keys(plan.units), ...lines.map((line) => line.unit), ...pauseOf.keys()]);
    const units: UnitStatus[] = [...names].sort().map((unit) => {
      const mine = lines.filter((line) => line.unit === unit);
      return {
        unit,
        stages: Object.fromEntries(
          [...this.#mappings.keys()].map((type) => [type, this.#plan.stageOf(unit, type)]),
        ),
        paused: pauseOf.get(unit),
        ...sums(mine, now),
      };
    });
    const openJobs = [...running, ...paused].sort((a, b) => Number(b.id) - Number(a.id));
    return { at: new Date(now).toISOString(), plan, units, totals: sums(lines, now), openJobs };
  }

  /**
   * The plan as stored: the default stage, the stages per unit (and resource type) and the
   * revision. Needs the store and plan only.
   *
   * @returns The stored plan.
   * @example
   * ```ts
   * const { revision, units } = await operator.plan();
   * ```
   */
  async plan(): Promise<StoredPlan> {
    await this.#followPlan();
    return this.#plan.toJSON();
  }

  /**
   * Moves a unit (or one resource type of it) to a stage, for every instance sharing the store,
   * with the checks of `CutoverPlan.set`: one stage forward at a time, and only when the unit
   * is ready (unless `force`). Needs the store and plan only.
   *
   * @param unit - The unit.
   * @param stage - The new stage.
   * @param options - `resourceType` (a mapped one), `reason`, `by`, `force`.
   * @returns The change as recorded.
   * @throws {@link InvalidInputError} (a rejection) naming `unit`, `stage` or the option at fault.
   * @throws {@link StageChangeRefusedError} when the move skips a stage or the unit is not ready.
   * @example
   * ```ts
   * await operator.setStage('north', 'shadow', { reason: 'two weeks clean', by: 'ops:maria' });
   * ```
   */
  async setStage(unit: string, stage: Stage, options: StageChangeOptions = {}): Promise<StageChange> {
    const type = (options as { resourceType?: unknown } | undefined)?.resourceType;
    if (type !== undefined) this.#requireMapped(type, 'resourceType');
    await this.#followPlan();
    return this.#plan.set(unit, stage, options);
  }

  /**
   * The recorded stage changes, newest first. Needs the store and plan only.
   *
   * @param options - Only one unit's; at most `limit`.
   * @returns The changes.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault.
   * @example
   * ```ts
   * for (const change of await operator.planHistory({ unit: 'north' })) console.log(change.at, change.from, change.to);
   * ```
   */
  async planHistory(
    options: { readonly unit?: string; readonly limit?: number } = {},
  ): Promise<StageChange[]> {
    await this.#followPlan();
    return this.#plan.history(options);
  }

  /**
   * The backlog per unit, resource type and target: mirrors pending, waiting for a reference,
   * leased, dead-lettered, and how long the oldest has been owed. Needs the store only.
   *
   * @param filter - Only one unit's, or one resource type's.
   * @returns The lines, by unit, type and target.
   * @throws {@link InvalidInputError} (a rejection) naming `unit` or `resourceType` when it
   *   names no known unit or no mapped type.
   * @example
   * ```ts
   * const lines = await operator.outbox({ unit: 'north' });
   * const oldest = Math.max(...lines.map((l) => l.oldestAgeMs ?? 0));
   * ```
   */
  async outbox(
    filter: { readonly unit?: string | undefined; readonly resourceType?: string | undefined } = {},
  ): Promise<BacklogLine[]> {
    const given = checkOptions(filter, 'filter', 'input', {
      unit: nonEmptyString,
      resourceType: resourceTypeName,
    });
    if (given.resourceType !== undefined) this.#requireMapped(given.resourceType, 'resourceType');
    const now = Date.now();
    const lines = await this.#store.outboxBacklog();
    if (given.unit !== undefined) await this.#requireUnit(given.unit as string, lines);
    return lines
      .filter(
        (line) =>
          (given.unit === undefined || line.unit === given.unit) &&
          (given.resourceType === undefined || line.resourceType === given.resourceType),
      )
      .map((line) => ({ ...line, oldestAgeMs: ageOf(line.oldestAt, now) }));
  }

  /**
   * Counts of the whole outbox (or one unit's): mirrors pending, waiting for a reference,
   * held by a paused unit, leased, and open dead letters. Needs the store only.
   *
   * @param filter - Only one unit's.
   * @returns The counts.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * const { pending, paused, leased, dead } = await operator.outboxCounts({ unit: 'north' });
   * ```
   */
  async outboxCounts(filter: { readonly unit?: string | undefined } = {}): Promise<OutboxCounts> {
    const given = checkOptions(filter, 'filter', 'input', { unit: nonEmptyString });
    return this.#store.outboxCounts({ unit: given.unit as string | undefined });
  }

  /**
   * Dead letters, oldest first: open ones unless `status` says otherwise, filtered by unit,
   * resource type, target and reason (the error's name). Needs the store only.
   *
   * @param filter - `status` (`open`, `retried`, `discarded`, `resolved`, `all`), `unit`,
   *   `resourceType`, `target`, `reason`, `limit`.
   * @returns The letters, without the record copies they may keep.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * for (const letter of await operator.deadLetters({ reason: 'RejectedError' })) console.log(letter.id, letter.reason.status);
   * ```
   */
  async deadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetterView[]> {
    return (await this.#letters(filter, false)).map(deadLetterView);
  }

  /**
   * One dead letter, whatever its status. Needs the store only.
   *
   * @param id - The dead letter's id.
   * @returns The letter, without the record copy it may keep.
   * @throws {@link DeadLetterNotFoundError} (a rejection) when no dead letter has that id.
   * @example
   * ```ts
   * const letter = await operator.deadLetter('42');
   * ```
   */
  async deadLetter(id: string): Promise<DeadLetterView> {
    checkValue(id, nonEmptyString, 'id', 'input');
    return deadLetterView(await this.#requireDeadLetter(id));
  }

  /**
   * Queues a dead letter's record again (after the cause was fixed); the mirror reads both
   * sides afresh. The letter is kept, marked `retried`. Needs the store only.
   *
   * @param id - The dead letter's id.
   * @returns `true` when it was open and is queued again, `false` when it was closed already.
   * @throws {@link DeadLetterNotFoundError} (a rejection) when no dead letter has that id.
   * @example
   * ```ts
   * await operator.retryDeadLetter('42');
   * ```
   */
  async retryDeadLetter(id: string): Promise<boolean> {
    checkValue(id, nonEmptyString, 'id', 'input');
    await this.#requireDeadLetter(id);
    const ticket = await this.#store.retryDeadLetter(id);
    this.#wiring?.queued();
    return ticket !== undefined;
  }

  /**
   * {@link Operator.retryDeadLetter} for every open letter the filter matches.
   *
   * @param filter - At least one of `unit`, `resourceType`, `target`, `reason`; `limit` optional.
   * @returns The letters matched, retried, and found closed meanwhile.
   * @throws {@link InvalidInputError} (a rejection) naming `filter` when it is empty, or the
   *   filter at fault.
   * @example
   * ```ts
   * const { done } = await operator.retryDeadLetters({ reason: 'UnavailableError', unit: 'north' });
   * ```
   */
  async retryDeadLetters(filter: DeadLetterSelection): Promise<BulkOutcome> {
    const letters = await this.#letters(filter, true);
    const outcome = await bulk(
      letters,
      async (letter) => (await this.#store.retryDeadLetter(letter.id)) !== undefined,
    );
    if (outcome.done.length > 0) this.#wiring?.queued();
    return outcome;
  }

  /**
   * Closes a dead letter without retrying it; it is kept, marked `discarded`, with the note.
   * Needs the store only.
   *
   * @param id - The dead letter's id.
   * @param note - Why (for the audit trail; no PHI).
   * @returns `true` when it was open, `false` when it was closed already.
   * @throws {@link InvalidInputError} (a rejection) naming `id` or `note`;
   *   {@link DeadLetterNotFoundError} when no dead letter has that id.
   * @example
   * ```ts
   * await operator.discardDeadLetter('42', 'record merged by hand in both systems');
   * ```
   */
  async discardDeadLetter(id: string, note: string): Promise<boolean> {
    checkValue(id, nonEmptyString, 'id', 'input');
    requireNote(note);
    await this.#requireDeadLetter(id);
    return this.#store.discardDeadLetter(id, note);
  }

  /**
   * {@link Operator.discardDeadLetter} for every open letter the filter matches.
   *
   * @param filter - At least one of `unit`, `resourceType`, `target`, `reason`; `limit` optional.
   * @param note - Why (for the audit trail; no PHI).
   * @returns The letters matched, discarded, and found closed meanwhile.
   * @throws {@link InvalidInputError} (a rejection) naming `filter`, the filter at fault or `note`.
   * @example
   * ```ts
   * await operator.discardDeadLetters({ resourceType: 'Observation', unit: 'south' }, 'test data, not migrated');
   * ```
   */
  async discardDeadLetters(filter: DeadLetterSelection, note: string): Promise<BulkOutcome> {
    requireNote(note);
    const letters = await this.#letters(filter, true);
    return bulk(letters, (letter) => this.#store.discardDeadLetter(letter.id, note));
  }

  /**
   * Decides a conflict an operator was asked to review (a dead letter whose reason is a
   * `ReviewRequiredError`, or any dead letter whose record both systems changed): writes the
   * decision to both sides, links them, and closes the dead letter as `resolved` with the
   * note and the resolution (`legacy`, `medplum` or `merged`). Each side's write is guarded by
   * the version read just before, so a change made meanwhile fails the call rather than being
   * overwritten. Needs `legacy` and `medplum`.
   *
   * @param id - The dead letter's id.
   * @param resolution - `{ winner: 'legacy' | 'medplum' }` or `{ merged: resource }`.
   * @param note - For the audit trail (no PHI).
   * @returns `false` when the dead letter was closed already.
   * @throws {@link DeadLetterNotFoundError} (a rejection) when no dead letter has that id.
   * @throws {@link InvalidInputError} for a resolution that decides nothing.
   * @throws {@link ConfigurationError} when the operator has no `legacy` or `medplum`.
   * @example
   * ```ts
   * await operator.resolveDeadLetter('42', { winner: 'medplum' }, 'front desk confirmed the new address');
   * ```
   */
  async resolveDeadLetter(
    id: string,
    resolution: Resolution,
    note = 'resolved by an operator',
  ): Promise<boolean> {
    checkValue(id, nonEmptyString, 'id', 'input');
    const decided = operatorResolution(resolution);
    checkValue(note, storedText, 'note', 'input');
    const letter = await this.#requireDeadLetter(id);
    if (letter.status !== 'open') return false;
    return this.#resolve(letter, decided, note);
  }

  /**
   * {@link Operator.resolveDeadLetter} with one winner for every open letter the filter
   * matches (a merged resource decides one record only, so it is refused here). Letters are
   * resolved one by one; the first failure stops the call (those before it stay resolved).
   *
   * @param filter - At least one of `unit`, `resourceType`, `target`, `reason`; `limit` optional.
   * @param resolution - `{ winner: 'legacy' | 'medplum' }`.
   * @param note - For the audit trail (no PHI).
   * @returns The letters matched, resolved, and found closed meanwhile.
   * @throws {@link InvalidInputError} (a rejection) naming `filter`, `resolution` or `note`.
   * @example
   * ```ts
   * await operator.resolveDeadLetters({ reason: 'ReviewRequiredError', unit: 'north' }, { winner: 'legacy' }, 'legacy is the record of truth');
   * ```
   */
  async resolveDeadLetters(
    filter: DeadLetterSelection,
    resolution: { readonly winner: 'legacy' | 'medplum' },
    note = 'resolved by an operator',
  ): Promise<BulkOutcome> {
    const decided = operatorResolution(resolution);
    if ('merged' in decided)
      throw new InvalidInputError(
        'resolution',
        'must name a winner in bulk (a merged resource decides one record)',
      );
    checkValue(note, storedText, 'note', 'input');
    const letters = await this.#letters(filter, true);
    return bulk(letters, (letter) => this.#resolve(letter, decided, note));
  }

  /**
   * Recent conflicts, newest first: which record, which resolver decided what, and the paths
   * each side changed (paths only). Needs the store only.
   *
   * @param filter - `unit`, `resolver` (a resolver's name, e.g. `authority-wins`), `since`
   *   (ISO 8601), `limit` (default 50).
   * @returns The conflicts.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * const recent = await operator.conflicts({ unit: 'north', resolver: 'three-way-merge', limit: 20 });
   * ```
   */
  async conflicts(
    filter: {
      readonly unit?: string | undefined;
      readonly resolver?: string | undefined;
      readonly since?: string | undefined;
      readonly limit?: number | undefined;
    } = {},
  ): Promise<ConflictView[]> {
    const given = checkOptions(filter, 'filter', 'input', {
      unit: nonEmptyString,
      resolver: nonEmptyString,
      since: anInstant,
      limit: positiveInteger,
    });
    if (given.unit !== undefined) await this.#requireUnit(given.unit as string);
    const events = await this.#store.listEvents({
      type: 'conflict',
      unit: given.unit as string | undefined,
      since: given.since as string | undefined,
      data: given.resolver === undefined ? undefined : { resolvedBy: given.resolver as string },
      limit: (given.limit as number | undefined) ?? 50,
    });
    return events.map((event) => {
      const data = event.data ?? {};
      const text = (key: string) => (typeof data[key] === 'string' ? data[key] : undefined);
      const changes = (data.changes ?? {}) as { legacy?: unknown; medplum?: unknown };
      return {
        id: event.id,
        at: event.at,
        resourceType: event.resourceType,
        legacyId: event.legacyId,
        medplumId: text('medplumId'),
        unit: event.unit,
        stage: text('stage'),
        target: text('target'),
        resolvedBy: text('resolvedBy'),
        resolution: text('resolution'),
        changedPaths: { legacy: pathsOf(changes.legacy), medplum: pathsOf(changes.medplum) },
      };
    });
  }

  /**
   * Conflicts recorded since an instant, counted by the resolver that decided them. Needs the
   * store only.
   *
   * @param filter - `unit`; `since` (ISO 8601, default: the readiness window's start).
   * @returns The counts.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * const { byResolver, total } = await operator.conflictCounts({ unit: 'north' });
   * ```
   */
  async conflictCounts(
    filter: { readonly unit?: string | undefined; readonly since?: string | undefined } = {},
  ): Promise<ConflictCounts> {
    const given = checkOptions(filter, 'filter', 'input', { unit: nonEmptyString, since: anInstant });
    const unit = given.unit as string | undefined;
    if (unit !== undefined) await this.#requireUnit(unit);
    const since =
      (given.since as string | undefined) ?? new Date(Date.now() - this.#policy.windowMs).toISOString();
    const byResolver = await this.#store.tallyEvents({ type: 'conflict', key: 'resolvedBy', unit, since });
    return { since, unit, byResolver, total: Object.values(byResolver).reduce((a, b) => a + b, 0) };
  }

  /**
   * A unit's figures over the readiness window — mirror lag (p50, p95), comparisons,
   * conflicts, divergence, open dead letters, pending mirrors, jobs, from every instance
   * sharing the store — and the verdict against the gates: `unknown` when a gate has too
   * little evidence (option `readiness.minSamples`) or the plan is stale. The plan asks it
   * before moving the unit forward, and only `ready` lets it. Needs the store and plan only.
   *
   * @param unit - The unit.
   * @param options - A window other than the configured one.
   * @returns The figures, the gates and the verdict.
   * @throws {@link InvalidInputError} (a rejection) naming `unit`, `options` or the option at fault.
   * @example
   * ```ts
   * const readiness = await operator.readiness('north');
   * console.log(readiness.verdict, readiness.failing);
   * ```
   */
  async readiness(
    unit: string,
    options: { readonly windowMs?: number | undefined } = {},
  ): Promise<Readiness> {
    checkValue(unit, nonEmptyString, 'unit', 'input');
    const given = checkOptions(options, 'options', 'input', { windowMs: positiveMs });
    await this.#followPlan();
    await this.#wiring?.beforeReadiness();
    return unitReadiness(
      {
        store: this.#store,
        plan: this.#plan as CutoverPlan<unknown>,
        resourceTypes: [...this.#mappings.keys()],
      },
      this.#policy,
      unit,
      (given.windowMs as number | undefined) ?? this.#policy.windowMs,
    );
  }

  /**
   * Pauses a unit's mirroring for every instance sharing the store: no drainer claims its
   * mirrors and writes leave them pending; writes and feeds keep journaling them, so nothing is
   * lost, and they are applied once the unit resumes. What is in flight finishes. `readiness`
   * and `status` show the pause.
   *
   * @param unit - The unit.
   * @param note - `by` and `reason`, for the record (no PHI).
   * @returns The pause (the first one, when the unit was paused already).
   * @throws {@link InvalidInputError} (a rejection) naming `unit` or the option at fault.
   * @example
   * ```ts
   * await operator.pauseUnit('north', { by: 'ops:maria', reason: 'legacy database maintenance' });
   * ```
   */
  async pauseUnit(
    unit: string,
    note: { readonly by?: string | undefined; readonly reason?: string | undefined } = {},
  ): Promise<UnitPause> {
    checkValue(unit, unitName, 'unit', 'input');
    const given = checkOptions(note, 'note', 'input', { by: unitName, reason: storedText });
    return this.#store.pauseUnit(unit, given);
  }

  /**
   * Resumes a paused unit: its mirrors are claimed again by every drainer.
   *
   * @param unit - The unit.
   * @returns `false` when it was not paused.
   * @throws {@link InvalidInputError} (a rejection) naming `unit`.
   * @example
   * ```ts
   * await operator.resumeUnit('north');
   * ```
   */
  async resumeUnit(unit: string): Promise<boolean> {
    checkValue(unit, nonEmptyString, 'unit', 'input');
    return this.#store.resumeUnit(unit);
  }

  /**
   * The paused units.
   *
   * @returns Their pauses, by unit.
   * @example
   * ```ts
   * for (const pause of await operator.unitPauses()) console.log(pause.unit, pause.since);
   * ```
   */
  unitPauses(): Promise<UnitPause[]> {
    return this.#store.unitPauses();
  }

  /**
   * Waits until a unit has no mirror owed (see {@link drainUnit}), for use before a stage
   * change, while the drainers of the application's instances apply them (a writer's operator,
   * whose drainer is not running, applies them itself meanwhile).
   *
   * @param unit - The unit.
   * @param options - `timeoutMs` (default 60000) and `signal`.
   * @returns The unit's counts once drained.
   * @throws {@link UnitNotDrainedError} at the time limit, or for a paused unit with mirrors owed.
   * @example
   * ```ts
   * await operator.drainUnit('north', { timeoutMs: 120_000 });
   * await operator.setStage('north', 'live', { by: 'ops' });
   * ```
   */
  async drainUnit(
    unit: string,
    options: { readonly timeoutMs?: number | undefined; readonly signal?: AbortSignal | undefined } = {},
  ): Promise<UnitDrained> {
    checkValue(unit, nonEmptyString, 'unit', 'input');
    const given = checkOptions(options, 'options', 'input', { timeoutMs: positiveMs, signal: anObject });
    return drainUnit(this.#store, unit, {
      timeoutMs: given.timeoutMs as number | undefined,
      signal: options.signal,
      work: this.#wiring?.unitWork?.(),
    });
  }

  /**
   * Deletes what the retention rules do not keep (see {@link RetentionOptions}), a batch at a
   * time, until nothing is left to delete.
   *
   * @param options - The rules and batch size; the defaults of {@link RetentionOptions}.
   * @returns What was deleted.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault.
   * @example
   * ```ts
   * const { events, deadLetters, samples } = await operator.prune({ events: { maxAgeMs: 30 * 86_400_000 } });
   * ```
   */
  async prune(options: RetentionOptions = {}): Promise<PruneReport> {
    const policy = retentionPolicyOf(options, this.#policy.windowMs);
    if (policy === undefined) return { events: 0, deadLetters: 0, samples: 0, batches: 0, complete: true };
    return pruneJournal(this.#store, policy.rules, { batchSize: policy.batchSize });
  }

  /**
   * Runs a backfill of one resource type in this process (see {@link backfill}): a new job, or
   * an existing one joined with `jobId`. Without a writer here, queued mirrors are applied by
   * the application's drainer (the backfill waits for it while the outbox is full). Needs
   * `legacy` and `medplum`.
   *
   * @param options - What to backfill and how this worker runs (`signal` stops it resumably,
   *   `onProgress` reports each page).
   * @returns The job as stored when this worker stopped.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault; `unit` when
   *   there is no `unitOf` to tell a record's unit and the plan has other units.
   * @throws {@link ConfigurationError} when the operator has no `legacy` or `medplum`.
   * @example
   * ```ts
   * const job = await operator.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
   * ```
   */
  async backfill(options: BackfillOptions): Promise<Job> {
    // A job routes each record by its unit's stage: the stored plan's, never the code's default.
    await this.#followPlan();
    const drain = this.#wiring?.drain;
    const ctx = this.#jobContext('backfill');
    this.#checkUnitScope(ctx, options);
    return runBackfill(ctx, drain === undefined ? options : { drain, ...options });
  }

  /**
   * Runs a reconciliation of one resource type in this process (see {@link reconcile});
   * `direction` defaults to the unit's authority now (`to-medplum` while the legacy system is
   * the authority). Needs `legacy` and `medplum`.
   *
   * @param options - What to compare and repair; `direction` optional when `unit` is given.
   * @returns The report: the job as stored when this worker stopped.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault; `unit` when
   *   there is no `unitOf` to tell a record's unit and the plan has other units.
   * @throws {@link ConfigurationError} when the operator has no `legacy` or `medplum`.
   * @example
   * ```ts
   * const report = await operator.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
   * console.log(report.counts.divergent);
   * ```
   */
  async reconcile(
    options: Omit<ReconcileOptions, 'direction'> & { readonly direction?: ReconcileOptions['direction'] },
  ): Promise<Job> {
    await this.#followPlan();
    const ctx = this.#jobContext('reconcile');
    this.#checkUnitScope(ctx, options);
    const unit = (options as { unit?: unknown }).unit;
    const type = (options as { resourceType?: unknown }).resourceType;
    const direction =
      options.direction ??
      (typeof unit === 'string' && typeof type === 'string' && this.#mappings.has(type)
        ? this.#plan.routeOf(unit, type).authority === 'legacy'
          ? 'to-medplum'
          : 'to-legacy'
        : undefined);
    return runReconcile(ctx, { ...options, direction } as ReconcileOptions);
  }

  /**
   * Backfill and reconcile jobs, newest first. Needs the store only.
   *
   * @param filter - `kind`, `resourceType`, `unit`, `state`, `limit` (default 50).
   * @returns The jobs.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * const running = await operator.jobs({ state: 'running' });
   * ```
   */
  async jobs(filter: JobFilter = {}): Promise<Job[]> {
    const given = checkOptions(filter, 'filter', 'input', {
      kind: oneOf('backfill', 'reconcile'),
      resourceType: resourceTypeName,
      unit: nonEmptyString,
      state: oneOf('running', 'paused', 'done', 'failed', 'cancelled'),
      limit: positiveInteger,
    });
    return this.#store.listJobs({
      ...(given as JobFilter),
      limit: (given.limit as number | undefined) ?? 50,
    });
  }

  /**
   * One job: its state, cursor, pages and counts. Needs the store only.
   *
   * @param id - The job's id.
   * @returns The job.
   * @throws {@link JobNotFoundError} (a rejection) when no job has that id.
   * @example
   * ```ts
   * const { state, counts } = await operator.job('7');
   * ```
   */
  async job(id: string): Promise<Job> {
    checkValue(id, nonEmptyString, 'id', 'input');
    const job = await this.#store.getJob(id);
    if (job === undefined) throw new JobNotFoundError(id);
    return job;
  }

  /**
   * Pauses a running job: every worker stops after the page in hand. Needs the store only.
   *
   * @param id - The job's id.
   * @returns The job after; its state unchanged when it was not running.
   * @throws {@link JobNotFoundError} (a rejection) when no job has that id.
   * @example
   * ```ts
   * await operator.pauseJob('7');
   * ```
   */
  async pauseJob(id: string): Promise<Job> {
    return this.#moveJob(id, 'paused', ['running']);
  }

  /**
   * Lets a paused or failed job run again; a worker then goes on from its cursor
   * (`operator.backfill({ ..., jobId })`, or any worker that joins it). Needs the store only.
   *
   * @param id - The job's id.
   * @returns The job after; its state unchanged when it was neither paused nor failed.
   * @throws {@link JobNotFoundError} (a rejection) when no job has that id.
   * @example
   * ```ts
   * await operator.resumeJob('7');
   * ```
   */
  async resumeJob(id: string): Promise<Job> {
    return this.#moveJob(id, 'running', ['paused', 'failed']);
  }

  /**
   * Cancels a running or paused job for good, with a reason (no PHI). Needs the store only.
   *
   * @param id - The job's id.
   * @param reason - Why, kept with the job. @default 'cancelled by an operator'
   * @returns The job after; its state unchanged when it was final already.
   * @throws {@link JobNotFoundError} (a rejection) when no job has that id.
   * @example
   * ```ts
   * await operator.cancelJob('7', 'wrong unit');
   * ```
   */
  async cancelJob(id: string, reason = 'cancelled by an operator'): Promise<Job> {
    checkValue(reason, storedText, 'reason', 'input');
    return this.#moveJob(id, 'cancelled', OPEN_JOB_STATES, reason);
  }

  /**
   * Stops following the store's plan when this operator attached it (the plan's refresh
   * timer); everything else holds nothing to release.
   *
   * @example
   * ```ts
   * await operator.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#attachedHere) this.#plan.detach();
    this.#attachedHere = false;
    this.#attached = undefined;
    return Promise.resolve();
  }

  /**
   * {@link Operator.close}, for `await using`.
   *
   * @example
   * ```ts
   * await using operator = new Operator({ store, mappings, plan });
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #moveJob(
    id: string,
    state: Job['state'],
    from: readonly Job['state'][],
    reason?: string,
  ): Promise<Job> {
    const job = await this.job(id);
    const moved = await this.#store.setJobState(job.id, state, { from, reason });
    return moved ?? (await this.job(id));
  }

  /** Attaches the plan to the store once, unless a writer or the application did. */
  #followPlan(): Promise<void> {
    if (this.#wiring !== undefined || this.#plan.status().attached) return Promise.resolve();
    this.#attached ??= this.#plan.attach(this.#store).then(
      () => {
        this.#attachedHere = true;
      },
      (err: unknown) => {
        this.#attached = undefined;
        throw err;
      },
    );
    return this.#attached;
  }

  async #letters(filter: DeadLetterFilter, selection: boolean): Promise<DeadLetter[]> {
    const given = checkOptions(
      filter,
      'filter',
      'input',
      // A bulk action takes open letters only: `status` is not one of its filters.
      selection ? BULK_FILTER : DEAD_LETTER_FILTER,
    ) as DeadLetterFilter;
    if (
      selection &&
      [given.unit, given.resourceType, given.target, given.reason].every((f) => f === undefined)
    )
      throw new InvalidInputError(
        'filter',
        'must name at least one of unit, resourceType, target, reason (a bulk action never takes every letter by default)',
      );
    if (given.resourceType !== undefined) this.#requireMapped(given.resourceType, 'resourceType');
    if (given.unit !== undefined) await this.#requireUnit(given.unit);
    return this.#store.listDeadLetters(selection ? { ...given, status: 'open' } : given);
  }

  async #requireDeadLetter(id: string): Promise<DeadLetter> {
    const letter = await this.#store.getDeadLetter(id);
    if (letter === undefined) throw new DeadLetterNotFoundError(id);
    return letter;
  }

  #requireMapped(type: unknown, field: string): void {
    if (typeof type !== 'string' || !this.#mappings.has(type))
      throw new InvalidInputError(
        field,
        `has no mapping, got ${kindOf(type)}; mapped types: ${[...this.#mappings.keys()].join(', ')}`,
      );
  }

  /** A unit must be one the plan lists or the journal holds mirrors or dead letters for. */
  async #requireUnit(unit: string, lines?: readonly { readonly unit: string }[]): Promise<void> {
    await this.#followPlan();
    // Own keys only: `toString` is `in` every object.
    if (Object.hasOwn(this.#plan.toJSON().units, unit)) return;
    const known = (lines ?? (await this.#store.outboxBacklog())).map((line) => line.unit);
    if (known.includes(unit)) return;
    const names = [...new Set([...Object.keys(this.#plan.toJSON().units), ...known])].sort();
    throw new InvalidInputError(
      'unit',
      `is not a unit of the plan or the journal (units: ${names.length === 0 ? 'none' : names.join(', ')})`,
    );
  }

  async #resolve(
    letter: DeadLetter,
    decided: ReturnType<typeof operatorResolution>,
    note: string,
  ): Promise<boolean> {
    const { mirror, events, locks } = this.#recordParts();
    const { id, resourceType, legacyId, unit } = letter;
    const mapping = this.#mappings.get(resourceType);
    if (mapping === undefined)
      throw new InvalidInputError('id', `dead letter ${id} is a ${resourceType}, which has no mapping`);
    if ('merged' in decided && decided.merged.resourceType !== resourceType) {
      throw new InvalidInputError(
        'resolution.merged.resourceType',
        `must be ${resourceType}, the dead letter's type (got ${decided.merged.resourceType})`,
      );
    }
    return locks.run(`${resourceType}/${legacyId}`, async () => {
      const link = await this.#store.getLink(resourceType, legacyId);
      const copies = await resolveConflict(
        resolveContextOf(mirror),
        mapping,
        letter,
        link,
        undefined,
        undefined,
        decided,
      );
      const outcome = resolved(mirror, copies);
      if (outcome.link === null) await this.#store.deleteLink(resourceType, legacyId);
      else if (outcome.link !== undefined) await this.#store.saveLink(outcome.link);
      this.#wiring?.evict(resourceType, legacyId);
      const closed = await this.#store.resolveDeadLetter(
        id,
        note,
        'merged' in decided ? 'merged' : decided.winner,
      );
      await events.publish({
        type: 'resolved',
        resourceType,
        legacyId,
        medplumId: outcome.resource?.id,
        unit,
        resolvedBy: 'operator',
        resolution: 'merged' in decided ? 'merged' : decided.winner,
      });
      return closed;
    });
  }

  /** The parts that touch records: the writer's, or made once from the clients given. */
  #recordParts(): { mirror: MirrorContext<L>; events: EventPublisher; locks: RecordLocks } {
    if (this.#wiring !== undefined) return this.#wiring;
    const { legacy, medplum } = this.#clients('resolveDeadLetter');
    const { events, locks } = this.#standalone;
    return {
      events,
      locks,
      mirror: {
        legacy,
        medplum: new MedplumSide(
          medplum,
          1,
          { pacer: this.#options.pacer, lane: 'live' },
          this.#requestTimeoutMs,
        ),
        mappings: this.#mappings,
        store: this.#store,
        resolver: authorityWins,
        stageOf: (unit, resourceType) => this.#plan.stageOf(unit, resourceType),
        baseSnapshot: 'full',
      },
    };
  }

  /**
   * Without a `unitOf`, a job takes every record it reads for its `unit`'s: right when the
   * application has one unit, wrong when the plan has others (reconciling `north` counted
   * `south`'s records, and its repair queued them under `north`'s stage). Refused then.
   */
  #checkUnitScope(ctx: JobContext<L>, options: { readonly unit?: unknown }): void {
    const { unit } = options;
    if (ctx.unitOf !== undefined || typeof unit !== 'string') return;
    const others = Object.keys(this.#plan.toJSON().units).filter((name) => name !== unit);
    if (others.length > 0) {
      throw new InvalidInputError(
        'unit',
        `cannot be told record by record without unitOf (the writer's feeds.unitOf), and the plan has ${String(others.length)} other unit(s): the job would take their records for this unit's`,
      );
    }
  }

  #jobContext(call: string): JobContext<L> {
    if (this.#wiring !== undefined) return this.#wiring.jobs;
    const { legacy, medplum } = this.#clients(call);
    return {
      store: this.#store,
      legacy,
      medplum,
      mappings: [...this.#mappings.values()],
      unitOf: this.#options.unitOf,
      pacer: this.#options.pacer,
      requestTimeoutMs: this.#requestTimeoutMs,
      retry: this.#options.retry,
    };
  }

  /** The parts a stand-alone operator makes once: its events, locks and timed legacy adapter. */
  get #standalone(): {
    readonly events: EventPublisher;
    readonly locks: RecordLocks;
    readonly legacy: LegacyAdapter<L> | undefined;
  } {
    const legacy = this.#options.legacy;
    this.#parts ??= {
      events: new EventPublisher(this.#store, this.#options.sinks ?? [], undefined),
      locks: new RecordLocks(),
      // Every call to the legacy system has the time limit, as a writer's has.
      legacy: legacy === undefined ? undefined : timedLegacyAdapter(legacy, this.#requestTimeoutMs),
    };
    return this.#parts;
  }

  get #requestTimeoutMs(): number {
    return this.#options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  #clients(call: string): { legacy: LegacyAdapter<L>; medplum: MedplumClient } {
    const { medplum } = this.#options;
    const { legacy } = this.#standalone;
    if (legacy === undefined)
      throw new ConfigurationError(
        'legacy',
        undefined,
        `is needed by ${call}: give the operator the legacy adapter`,
      );
    if (medplum === undefined)
      throw new ConfigurationError(
        'medplum',
        undefined,
        `is needed by ${call}: give the operator a Medplum client`,
      );
    return { legacy, medplum };
  }
}

/** An ISO 8601 instant. */
const anInstant = {
  test: (value: unknown): value is string => typeof value === 'string' && !Number.isNaN(Date.parse(value)),
  problem: 'must be an ISO 8601 instant',
};

function requireNote(note: unknown): void {
  if (!storedText.test(note))
    throw new InvalidInputError(
      'note',
      `must say why the dead letter is discarded, in at most ${MAX_TEXT_LENGTH} characters, got ${kindOf(note)}`,
    );
}

function ageOf(at: string | undefined, now: number): number | undefined {
  return at === undefined ? undefined : Math.max(0, now - Date.parse(at));
}

function sums(
  lines: readonly {
    pending: number;
    waiting: number;
    leased: number;
    dead: number;
    oldestAt: string | undefined;
  }[],
  now: number,
): Omit<UnitStatus, 'unit' | 'stages' | 'paused'> {
  let oldest: string | undefined;
  for (const line of lines)
    if (line.oldestAt !== undefined && (oldest === undefined || line.oldestAt < oldest))
      oldest = line.oldestAt;
  const total = (key: 'pending' | 'waiting' | 'leased' | 'dead') =>
    lines.reduce((n, line) => n + line[key], 0);
  return {
    pending: total('pending'),
    waiting: total('waiting'),
    leased: total('leased'),
    dead: total('dead'),
    oldestAgeMs: ageOf(oldest, now),
  };
}

function pathsOf(entries: unknown): string[] | undefined {
  if (!Array.isArray(entries)) return undefined;
  return entries
    .map((entry) => (entry as { path?: unknown } | null)?.path)
    .filter((path): path is string => typeof path === 'string');
}

async function bulk(
  letters: readonly DeadLetter[],
  act: (letter: DeadLetter) => Promise<boolean>,
): Promise<BulkOutcome> {
  const done: string[] = [];
  const skipped: string[] = [];
  for (const letter of letters) ((await act(letter)) ? done : skipped).push(letter.id);
  return { matched: letters.length, done, skipped };
}
