import type { DualWriteEvent } from '../dual-write-event.ts';
import { describeError } from '../error-values.ts';
import { ConfigurationError } from '../errors.ts';
import { ChangeFeeds } from '../feeds/change-feeds.ts';
import type { ChangeFeedsOptions } from '../feeds/change-feeds-options.ts';
import type { RestHookRequest, RestHookResult } from '../feeds/delete-notification.ts';
import { NO_FEED_COUNTS, type FeedCounts, type FeedReport } from '../feeds/feed-report.ts';
import type { ChangeFeedsDeps } from '../feeds/inbound-change.ts';
import { BacklogRecorder } from '../journal/backlog-recorder.ts';
import type { BacklogRecording } from '../journal/operating-history.ts';
import type { OutboxEntry } from '../journal/outbox.ts';
import { RetentionRunner, type RetentionPolicy } from '../journal/retention.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { readForBatch } from '../mirror/batch-reads.ts';
import { Drainer, type DrainerPolicy, type DrainReport } from '../mirror/drainer.ts';
import { markFor, runLease, type LeasePolicy, type LeaseResult } from '../mirror/lease-runner.ts';
import { mirrorEntry, type MirrorContext, type MirrorInputs } from '../mirror/mirror-entry.ts';
import { checkOptions, nonNegativeMs, trueOrFalse } from '../option-checks.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import type { JournalGauges } from '../telemetry/journal-gauges.ts';

/** What a writer's background work runs on. */
export interface WriterRuntimeParts<L> {
  readonly store: SyncStore;
  /** The mirror's context; the drainer's mirrors run it with `drainMedplum`. */
  readonly mirror: MirrorContext<L>;
  /** The drainer's Medplum side: bundled writes, a few requests at a time, the background lane. */
  readonly drainMedplum: MedplumSide;
  readonly drainer: DrainerPolicy;
  /** The lease policy the drainer's mirrors report through (shared with the inline mirrors). */
  readonly lease: LeasePolicy;
  /** The change feeds' parts but the drainer's wake-up, and their options; `undefined` without feeds. */
  readonly feeds:
    { readonly deps: Omit<ChangeFeedsDeps<L>, 'notify'>; readonly options: ChangeFeedsOptions } | undefined;
  /** The journal's retention; `undefined` with `retention: false`. */
  readonly retention: RetentionPolicy | undefined;
  /** The backlog's sampling; `undefined` with `backlogHistory: false`. */
  readonly backlog: BacklogRecording | undefined;
  /** The journal gauges, registered while the runtime runs; `undefined` without telemetry. */
  readonly gauges: JournalGauges | undefined;
  /** Emits an event without waiting for the store. */
  readonly emit: (event: DualWriteEvent) => void;
}

/** The roles of `start()`. */
export interface RuntimeRoles {
  readonly drainer?: boolean | undefined;
  readonly feeds?: boolean | undefined;
}

/**
 * A writer's background work: the drainer that applies pending mirrors (with the journal's
 * retention and the backlog's sampling, which run beside it) and the change feeds, started in
 * the roles asked for and stopped together. `DualWriter` documents each call.
 *
 * @typeParam L - The legacy row type.
 */
export class WriterRuntime<L> {
  readonly #drainer: Drainer<MirrorInputs<L>>;
  readonly #feeds: ChangeFeeds<L> | undefined;
  readonly #retention: RetentionRunner | undefined;
  readonly #backlog: BacklogRecorder | undefined;
  readonly #gauges: JournalGauges | undefined;
  readonly #emit: (event: DualWriteEvent) => void;
  readonly #parts: WriterRuntimeParts<L>;

  constructor(parts: WriterRuntimeParts<L>) {
    const { store, drainer, retention, backlog, emit } = parts;
    this.#gauges = parts.gauges;
    this.#emit = emit;
    this.#feeds =
      parts.feeds === undefined
        ? undefined
        : new ChangeFeeds<L>({ ...parts.feeds.deps, notify: () => this.notify() }, parts.feeds.options);
    this.#parts = parts;
    this.#drainer = this.#drainerOn(parts.drainMedplum, drainer);
    this.#retention =
      retention === undefined
        ? undefined
        : new RetentionRunner(store, retention, drainer.workerId, (error) => {
            emit({ type: 'journal-error', error: describeError(error), retryInMs: retention.intervalMs });
          });
    this.#backlog =
      backlog === undefined
        ? undefined
        : new BacklogRecorder(store, backlog, (error) => {
            emit({ type: 'journal-error', error: describeError(error), retryInMs: backlog.stepMs });
          });
  }

  /**
   * A drainer of one outbox lane whose mirrors write to Medplum through `medplum` (a backfill's
   * client of its own), with this writer's mirror path, policies and events; the caller starts
   * and stops it.
   *
   * @param lane - The lane it claims from.
   * @param medplum - The Medplum side its mirrors use.
   * @returns The drainer.
   */
  laneDrainer(lane: string, medplum: MedplumSide): Drainer<MirrorInputs<L>> {
    return this.#drainerOn(medplum, { ...this.#parts.drainer, lane });
  }

  /** A drainer whose mirrors run with `medplum`, emitting what they did. */
  #drainerOn(medplum: MedplumSide, policy: DrainerPolicy): Drainer<MirrorInputs<L>> {
    const { store, mirror, lease, emit } = this.#parts;
    const drainCtx: MirrorContext<L> = { ...mirror, medplum };
    return new Drainer<MirrorInputs<L>>(
      store,
      async (leased, read, attempted, confirmedAt) => {
        const result = await runLease(
          drainCtx,
          leased,
          lease,
          () =>
            mirrorEntry(drainCtx, leased.entry, {
              ...read,
              mark: markFor(mirror.store, leased),
              linked: leased.link,
            }),
          { attempted, confirmedAt },
        );
        this.#emitDrained(leased.entry, result);
        return result;
      },
      policy,
      {
        prepare: (leases) => readForBatch(drainCtx, leases),
        onError: (error, retryInMs) => {
          emit({ type: 'journal-error', error: describeError(error), retryInMs });
        },
      },
    );
  }

  /** See `DualWriter.start`. */
  start(roles: RuntimeRoles = {}): void {
    const given = checkOptions(roles, 'roles', 'input', { drainer: trueOrFalse, feeds: trueOrFalse });
    if (given.feeds === true) this.#requireFeeds();
    if (given.drainer !== false) {
      this.#drainer.start();
      this.#retention?.start();
      this.#backlog?.start();
    }
    if (given.feeds !== false) this.#feeds?.start();
    this.#gauges?.register();
  }

  /** Stops the feeds, retention, sampling and drainer, once the work in flight finishes. */
  async stop(): Promise<void> {
    this.#gauges?.unregister();
    await this.#feeds?.stop();
    await this.#retention?.stop();
    await this.#backlog?.stop();
    await this.#drainer.stop();
  }

  /** Wakes the drainer: an entry was queued. */
  notify(): void {
    this.#drainer.notify();
  }

  /** See `DualWriter.pause`. */
  pause(): void {
    this.#drainer.pause();
  }

  /** See `DualWriter.resume`. */
  resume(): void {
    this.#drainer.resume();
  }

  /** See `DualWriter.drain`. */
  async drain(options: { readonly timeoutMs?: number | undefined } = {}): Promise<DrainReport> {
    const given = checkOptions(options, 'options', 'input', { timeoutMs: nonNegativeMs });
    return this.#drainer.drain((given.timeoutMs as number | undefined) ?? 60_000);
  }

  /**
   * What a wait for a unit to drain may run between its looks (see `Operator.drainUnit`): a
   * drain while the drainer is not running, else nothing (the drainer does the work).
   */
  unitWork(): ((untilMs: number) => Promise<DrainReport>) | undefined {
    return this.#drainer.running ? undefined : (untilMs) => this.#drainer.drain(untilMs);
  }

  /** See `DualWriter.pollFeeds`. */
  async pollFeeds(): Promise<FeedReport> {
    return this.#requireFeeds().pollOnce();
  }

  /** See `DualWriter.feedCounts`. */
  feedCounts(): FeedCounts {
    return this.#feeds?.counts ?? NO_FEED_COUNTS;
  }

  /** See `DualWriter.handleRestHook`. */
  async handleRestHook(request: RestHookRequest): Promise<RestHookResult> {
    return this.#requireFeeds().handleRestHook(request);
  }

  #requireFeeds(): ChangeFeeds<L> {
    if (this.#feeds === undefined)
      throw new ConfigurationError('feeds', undefined, 'must be set (with unitOf) to use change feeds');
    return this.#feeds;
  }

  #emitDrained(entry: OutboxEntry, result: LeaseResult): void {
    const { resourceType, legacyId, unit, target } = entry;
    if (result.status === 'applied' || result.status === 'unchanged') {
      this.#emit({ type: 'drained', resourceType, legacyId, unit, target, outcome: result.status });
    } else if (result.status === 'retrying' && result.error !== undefined) {
      this.#emit({
        type: 'retry',
        side: result.error.side ?? target,
        resourceType,
        legacyId,
        status: result.error.status,
        attempt: entry.attempts + 1,
        delayMs: result.retryInMs,
        error: result.error.name,
      });
    }
  }
}
