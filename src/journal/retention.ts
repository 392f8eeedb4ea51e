import { setTimeout as sleep } from 'node:timers/promises';
import {
  anObject,
  checkOptions,
  nonNegativeNumber,
  positiveInteger,
  positiveMs,
  type Rule,
} from '../option-checks.ts';
import { ConfigurationError } from '../errors.ts';
import type { RetentionRule, RetentionRules } from './housekeeping.ts';
import type { SyncStore } from './sync-store.ts';

const DAY_MS = 86_400_000;

/**
 * Retention of the journal's ever-growing rows, run by the drainer's runtime (`writer.start()`
 * with the drainer role) every `intervalMs`, and callable directly (`writer.prune()`,
 * {@link pruneJournal}). A kind set to `false` is kept whole.
 *
 * @example
 * ```ts
 * const retention: RetentionOptions = { events: { maxAgeMs: 30 * 86_400_000, maxCount: 5_000_000 }, deadLetters: false };
 * ```
 */
export interface RetentionOptions {
  /**
   * Events (conflicts, divergence, dead letters, held deletes…); stage changes are never
   * deleted. `maxAgeMs` must cover `readiness.windowMs`, which counts conflicts and divergence.
   * @default { maxAgeMs: 90 days }
   */
  readonly events?: RetentionRule | false | undefined;
  /**
   * Closed dead letters (retried, discarded), by when they were closed; open ones always stay.
   * @default { maxAgeMs: 90 days }
   */
  readonly deadLetters?: RetentionRule | false | undefined;
  /**
   * Readiness samples (one per applied mirror and per comparison: the fastest-growing table).
   * `maxAgeMs` must cover `readiness.windowMs`.
   * @default { maxAgeMs: 7 days, or readiness.windowMs when longer }
   */
  readonly samples?: RetentionRule | false | undefined;
  /**
   * Most rows deleted per kind by one statement (one short transaction).
   * @default 1000
   */
  readonly batchSize?: number | undefined;
  /**
   * Most batches per kind in one scheduled run: a run deletes at most `batchSize` ×
   * `maxBatchesPerRun` rows of each kind, and the rest waits for the next run.
   * @default 20
   */
  readonly maxBatchesPerRun?: number | undefined;
  /**
   * Time between scheduled runs. One instance runs each (a lease in the journal).
   * @default 3600000
   */
  readonly intervalMs?: number | undefined;
}

/** {@link RetentionOptions} with defaults applied. */
export interface RetentionPolicy {
  readonly rules: RetentionRules;
  readonly batchSize: number;
  readonly maxBatchesPerRun: number;
  readonly intervalMs: number;
}

const RULE_SHAPE = { maxAgeMs: positiveMs, maxCount: nonNegativeNumber } satisfies Record<
  keyof RetentionRule,
  Rule
>;

const RETENTION_SHAPE = {
  events: anObject,
  deadLetters: anObject,
  samples: anObject,
  batchSize: positiveInteger,
  maxBatchesPerRun: positiveInteger,
  intervalMs: positiveMs,
} satisfies Record<keyof RetentionOptions, Rule>;

/**
 * Validates retention options and applies defaults.
 *
 * @param options - The user's options; `false` turns retention off.
 * @param windowMs - The readiness window, which the ages of events and samples must cover.
 * @returns The policy; `undefined` when off.
 * @throws {@link ConfigurationError} naming the field at fault.
 * @example
 * ```ts
 * const policy = retentionPolicyOf({ events: { maxAgeMs: 30 * 86_400_000 } }, 3_600_000);
 * ```
 */
export function retentionPolicyOf(
  options: RetentionOptions | false | undefined,
  windowMs: number,
): RetentionPolicy | undefined {
  if (options === false) return undefined;
  const kinds = ['events', 'deadLetters', 'samples'] as const;
  const shape = Object.fromEntries(
    Object.entries(RETENTION_SHAPE).filter(([key]) => !(kinds as readonly string[]).includes(key)),
  );
  const given = checkOptions(
    options === undefined ? undefined : dropKinds(options),
    'retention',
    'configuration',
    shape,
    'retention.',
  );
  const rule = (kind: (typeof kinds)[number], fallback: RetentionRule): RetentionRule | undefined => {
    const value = options?.[kind];
    if (value === false) return undefined;
    if (value === undefined) return fallback;
    const checked = checkOptions(
      value,
      `retention.${kind}`,
      'configuration',
      RULE_SHAPE,
      `retention.${kind}.`,
    );
    if (checked.maxCount !== undefined && !Number.isInteger(checked.maxCount))
      throw new ConfigurationError(`retention.${kind}.maxCount`, checked.maxCount, 'must be an integer >= 0');
    if (kind !== 'deadLetters' && value.maxAgeMs !== undefined && value.maxAgeMs < windowMs)
      throw new ConfigurationError(
        `retention.${kind}.maxAgeMs`,
        value.maxAgeMs,
        `must be at least readiness.windowMs (${windowMs}), which readiness reads`,
      );
    return value;
  };
  return {
    rules: {
      events: rule('events', { maxAgeMs: Math.max(90 * DAY_MS, windowMs) }),
      deadLetters: rule('deadLetters', { maxAgeMs: 90 * DAY_MS }),
      samples: rule('samples', { maxAgeMs: Math.max(7 * DAY_MS, windowMs) }),
    },
    batchSize: (given.batchSize as number | undefined) ?? 1000,
    maxBatchesPerRun: (given.maxBatchesPerRun as number | undefined) ?? 20,
    intervalMs: (given.intervalMs as number | undefined) ?? 3_600_000,
  };
}

function dropKinds(options: RetentionOptions): unknown {
  // Options come from JavaScript callers too: anything else is refused by checkOptions.
  if (typeof options !== 'object' || (options as unknown) === null) return options;
  const { events: _e, deadLetters: _d, samples: _s, ...rest } = options;
  return rest;
}

/**
 * What a run of retention deleted.
 *
 * @example
 * ```ts
 * const { events, deadLetters, samples, batches, complete } = await writer.prune();
 * ```
 */
export interface PruneReport {
  /** Events deleted. */
  readonly events: number;
  /** Closed dead letters deleted. */
  readonly deadLetters: number;
  /** Readiness samples deleted. */
  readonly samples: number;
  /** Statements run per kind. */
  readonly batches: number;
  /** Whether nothing beyond the rules remains (`false`: the batch limit or the signal stopped it). */
  readonly complete: boolean;
}

/**
 * Deletes what the retention rules do not keep, a batch at a time, until nothing is left to
 * delete, `maxBatches` batches ran or the signal aborts. Safe to run from several processes
 * at once (each batch deletes rows the others have not).
 *
 * @param store - The journal.
 * @param rules - What to keep.
 * @param options - `batchSize` (default 1000), `maxBatches` (default unlimited), `signal`.
 * @returns What was deleted.
 * @example
 * ```ts
 * const report = await pruneJournal(store, { events: { maxAgeMs: 30 * 86_400_000 } });
 * ```
 */
export async function pruneJournal(
  store: SyncStore,
  rules: RetentionRules,
  options: {
    readonly batchSize?: number | undefined;
    readonly maxBatches?: number | undefined;
    readonly signal?: AbortSignal | undefined;
  } = {},
): Promise<PruneReport> {
  const batchSize = options.batchSize ?? 1000;
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
  const totals = { events: 0, deadLetters: 0, samples: 0, batches: 0 };
  for (;;) {
    if (options.signal?.aborted === true || totals.batches >= maxBatches)
      return { ...totals, complete: false };
    const counts = await store.prune(rules, batchSize);
    totals.events += counts.events;
    totals.deadLetters += counts.deadLetters;
    totals.samples += counts.samples;
    totals.batches += 1;
    if (!counts.more) return { ...totals, complete: true };
  }
}

/**
 * Runs retention every `intervalMs` in the background, on one instance at a time (it holds the
 * journal lease `housekeeping:retention` for the run), each run bounded by `maxBatchesPerRun`.
 * A failing run is reported and tried again at the next interval.
 *
 * @internal
 */
export class RetentionRunner {
  readonly #store: SyncStore;
  readonly #policy: RetentionPolicy;
  readonly #owner: string;
  readonly #onError: (error: unknown) => void;
  #stopping: AbortController | undefined;
  #loop: Promise<void> | undefined;

  /**
   * @param store - The journal.
   * @param policy - Rules, batch sizes and interval.
   * @param owner - This instance's name in the lease.
   * @param onError - Told of a failed run.
   */
  constructor(store: SyncStore, policy: RetentionPolicy, owner: string, onError: (error: unknown) => void) {
    this.#store = store;
    this.#policy = policy;
    this.#owner = owner;
    this.#onError = onError;
  }

  /** Starts the schedule (a run at once, then every interval); a no-op when running. */
  start(): void {
    if (this.#loop !== undefined) return;
    const stopping = new AbortController();
    this.#stopping = stopping;
    this.#loop = (async () => {
      while (!stopping.signal.aborted) {
        await this.#run(stopping.signal).catch((err: unknown) => this.#onError(err));
        await sleep(this.#policy.intervalMs, undefined, { signal: stopping.signal, ref: false }).catch(
          () => undefined,
        );
      }
    })();
  }

  /** Stops the schedule once the batch running ends. */
  async stop(): Promise<void> {
    this.#stopping?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    // Held for the interval: one instance runs a period's retention, whoever comes first.
    if (!(await this.#store.acquireFeedLease(LEASE, this.#owner, this.#policy.intervalMs))) return;
    await pruneJournal(this.#store, this.#policy.rules, {
      batchSize: this.#policy.batchSize,
      maxBatches: this.#policy.maxBatchesPerRun,
      signal,
    });
  }
}

const LEASE = 'housekeeping:retention';
