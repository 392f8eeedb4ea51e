import { setTimeout as delay } from 'node:timers/promises';
import type { DualWriteEvent } from '../dual-write-event.ts';
import type { Side } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { MirrorOutcome } from '../mirror/mirror-entry.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { compareLinkedCopies } from './compare-copies.ts';
import type { RevealedDiffEntry } from './diff.ts';

/**
 * How often copies are compared, and how long a read may wait for its shadow.
 *
 * @example
 * ```ts
 * const options: DivergenceOptions = { verifySampleRate: 0.05, shadowReads: { sampleRate: 1, budgetMs: 20 } };
 * ```
 */
export interface DivergenceOptions {
  /**
   * Share of applied mirrors whose target is read back and compared with the source (0 to 1).
   * @default 0.01
   */
  readonly verifySampleRate?: number | undefined;
  /** Shadow reads in the `shadow` and `live` stages. */
  readonly shadowReads?:
    | {
        /**
         * Share of reads that also read the other side and compare (0 to 1).
         * @default 0.1
         */
        readonly sampleRate?: number | undefined;
        /**
         * Most milliseconds a read waits for its shadow, counted from the start of the read (both
         * sides are read at once); a slower shadow finishes in the background. 0 never waits.
         * @default 25
         */
        readonly budgetMs?: number | undefined;
      }
    | undefined;
}

/**
 * Counts of comparisons made by a writer since it started.
 *
 * @example
 * ```ts
 * const { shadowReads, divergent } = writer.divergenceCounts();
 * ```
 */
export interface DivergenceCounts {
  /** Mirrors read back and compared. */
  readonly verified: number;
  /** Reads that also read the other side and compared. */
  readonly shadowReads: number;
  /**
   * Comparisons skipped because a newer write of the record was still being mirrored, or had
   * replaced the copy a read-back was about (it has a read-back of its own).
   */
  readonly skippedPending: number;
  /** Comparisons that found the copies different (each one a `divergence` event). */
  readonly divergent: number;
}

/** What the checks need of the writer. */
export interface DivergenceDeps<L> {
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly store: SyncStore;
  readonly mappings: ReadonlyMap<string, ResourceMapping<L>>;
  readonly publish: (event: DualWriteEvent) => Promise<void>;
  /** A number in [0, 1) per sampling decision. */
  readonly random?: (() => number) | undefined;
  /** Told of every conclusive comparison (readiness evidence). */
  readonly compared?: ((unit: string, divergent: boolean) => void) | undefined;
}

/** A record's two copies as a shadow read found them, for the comparison. */
export interface ShadowPair {
  readonly resourceType: string;
  readonly legacyId: string;
  readonly medplumId: string | undefined;
  readonly unit: string;
  /** Computes the differences (only when the pair is compared). */
  readonly differences: () => RevealedDiffEntry[] | Promise<RevealedDiffEntry[]>;
}

/**
 * Finds divergence — copies that differ when they should agree — off the caller's path:
 * a sampled read-back after mirrors, and sampled shadow reads. Each finding is a `divergence`
 * event (recorded in the store). A record with a write still in the outbox is skipped: its
 * copies differ only until that mirror lands, which is lag, not divergence.
 *
 * @example
 * ```ts
 * const checks = new DivergenceChecks(deps, { verifySampleRate: 1 });
 * checks.afterMirror(entry, outcome);
 * await checks.settled();
 * ```
 */
export class DivergenceChecks<L> {
  readonly #deps: DivergenceDeps<L>;
  readonly #verifyRate: number;
  readonly #shadowRate: number;
  readonly #budgetMs: number;
  readonly #random: () => number;
  readonly #inflight = new Set<Promise<void>>();
  #counts = { verified: 0, shadowReads: 0, skippedPending: 0, divergent: 0 };

  /**
   * @param deps - The sides, store, mappings and where events go.
   * @param options - Sampling and budget.
   */
  constructor(deps: DivergenceDeps<L>, options: DivergenceOptions = {}) {
    this.#deps = deps;
    this.#verifyRate = options.verifySampleRate ?? 0.01;
    this.#shadowRate = options.shadowReads?.sampleRate ?? 0.1;
    this.#budgetMs = options.shadowReads?.budgetMs ?? 25;
    this.#random = deps.random ?? Math.random;
  }

  /** The counts so far. */
  get counts(): DivergenceCounts {
    return { ...this.#counts };
  }

  /**
   * After an applied mirror, maybe (sampled) reads the target back and compares it with the
   * source the mirror wrote from, in the background. A target found at another version than
   * the mirror wrote was written again since (a later mirror, whose entry may be gone already,
   * or an edit a change feed will bring): the source of this mirror says nothing about it, so
   * nothing is compared (counted as `skippedPending`).
   *
   * @param entry - The record and the side written.
   * @param outcome - What the mirror did.
   */
  afterMirror(
    entry: {
      readonly resourceType: string;
      readonly legacyId: string;
      readonly unit: string;
      readonly target: Side;
    },
    outcome: MirrorOutcome,
  ): void {
    if (outcome.action !== 'created' && outcome.action !== 'updated') return;
    if (!this.#sampled(this.#verifyRate)) return;
    const mapping = this.#deps.mappings.get(entry.resourceType);
    if (mapping === undefined) return;
    const { resourceType, legacyId, unit, target } = entry;
    void this.#track(async () => {
      const medplumId = outcome.resource?.id;
      let differences: RevealedDiffEntry[];
      if (target === 'medplum') {
        const back =
          medplumId === undefined ? undefined : await this.#deps.medplum.read(resourceType, medplumId);
        if (superseded(back?.meta?.versionId, outcome.targetVersion)) {
          this.#counts.skippedPending++;
          return;
        }
        differences = await compareLinkedCopies(
          this.#deps,
          mapping,
          legacyId,
          outcome.record as never,
          back,
          'legacy',
        );
      } else {
        const back = await this.#deps.legacy.read(resourceType, legacyId);
        if (superseded(back?.version, outcome.targetVersion)) {
          this.#counts.skippedPending++;
          return;
        }
        differences = await compareLinkedCopies(
          this.#deps,
          mapping,
          legacyId,
          back,
          outcome.resource,
          'medplum',
        );
      }
      this.#counts.verified++;
      await this.#report({ resourceType, legacyId, medplumId, unit, source: 'verify' }, differences);
    });
  }

  /**
   * Serves a read and, when the stage compares and the read is sampled, reads the other side at
   * the same time and compares the two. The read returns when its own answer is in and either
   * the comparison is done or the budget (from the start of the read) has run out; a failure of
   * the other side never fails the read.
   *
   * @param compareWith - The stage's comparison side, if any.
   * @param primary - The read the caller asked for.
   * @param shadow - Reads the other side and pairs the copies, given the primary's answer.
   * @returns The primary's answer.
   */
  async shadowRead<T>(
    compareWith: Side | undefined,
    primary: () => Promise<T>,
    shadow: () => Promise<(value: T) => ShadowPair | undefined>,
  ): Promise<T> {
    if (compareWith === undefined || !this.#sampled(this.#shadowRate)) return primary();
    // The budget runs from the start of the read, while both sides are read at once: a read
    // then takes at most its own time or the budget, whichever is longer.
    // Node's timers count whole milliseconds and fire up to one late: the timer is set one
    // early, so the read never waits longer than the budget (measured: 20.2–20.3 ms of added
    // latency for a 20 ms budget before).
    const budget =
      this.#budgetMs > 0
        ? delay(Math.max(this.#budgetMs - 1, this.#budgetMs / 2), undefined, { ref: false })
        : undefined;
    const other = shadow();
    // Observed here so a failure of the other side is never an unhandled rejection; the check
    // below then simply finds nothing to compare.
    other.catch(() => undefined);
    const value = await primary();
    const check = this.#track(async () => {
      const pair = (await other)(value);
      if (pair === undefined) return;
      this.#counts.shadowReads++;
      const { differences, ...record } = pair;
      await this.#report({ ...record, source: 'shadow-read' }, await differences());
    });
    if (budget !== undefined) await Promise.race([check, budget]);
    return value;
  }

  /**
   * Waits for every comparison started so far.
   *
   * @returns When they have all finished.
   */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  async #report(
    record: Omit<Extract<DualWriteEvent, { type: 'divergence' }>, 'type' | 'differences'>,
    differences: RevealedDiffEntry[],
  ): Promise<void> {
    if (differences.length === 0) {
      this.#deps.compared?.(record.unit, false);
      return;
    }
    if (await this.#deps.store.hasPending(record.resourceType, record.legacyId)) {
      this.#counts.skippedPending++;
      return;
    }
    this.#counts.divergent++;
    this.#deps.compared?.(record.unit, true);
    await this.#deps.publish({ type: 'divergence', ...record, differences });
  }

  #track(fn: () => Promise<void>): Promise<void> {
    const run = fn().catch(() => undefined);
    this.#inflight.add(run);
    void run.finally(() => this.#inflight.delete(run));
    return run;
  }

  #sampled(rate: number): boolean {
    return rate >= 1 || (rate > 0 && this.#random() < rate);
  }
}

/**
 * Whether a copy read back is at another version than the one a mirror wrote: written again
 * since. Unknown versions (an adapter without them) never count as superseded.
 */
function superseded(found: string | undefined, written: string | undefined): boolean {
  return found !== undefined && written !== undefined && found !== written;
}
