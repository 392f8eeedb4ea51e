import { DualWriteError, fieldsOf, RejectedError, UnavailableError } from '../errors.ts';
import { valueFreeError } from '../error-values.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseError, databaseFailureKind, isTransientDatabaseError } from '../sql/database-failure.ts';
import { fullReportOf, ReviewRequiredError, type ConflictReport } from '../conflict/conflict-report.ts';
import type { Lease, LeaseOutcome, OutboxEntry, OutboxError } from '../journal/outbox.ts';
import { LinkConflictError, type SyncStore } from '../journal/sync-store.ts';
import { waitingForOf } from '../journal/waiting-for.ts';
import { currentRequestScope, inRequestScope } from '../sides/request-scope.ts';
import { delayFor, type Backoff } from './backoff.ts';
import { DependencyError } from './dependency-error.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import type { MirrorContext, MirrorOutcome } from './mirror-entry.ts';

/**
 * How one lease ended.
 *
 * - `applied` / `unchanged`: the target matches the authority; the entry is complete.
 * - `retrying`: a transient failure; the entry is due again after its backoff.
 * - `waiting`: a record it references has no copy on the target side yet; the entry waits for
 *   it (no attempt counted) and runs again as soon as that record is linked.
 * - `dead-letter`: a permanent failure (or too many transient ones); the entry is in the DLQ.
 * - `requeued`: a newer write arrived meanwhile; the entry will be applied again.
 * - `fenced`: the lease had been taken over; nothing was recorded.
 *
 * @example
 * ```ts
 * const sink: EventSink = {
 *   handle(event) {
 *     const ended: LeaseStatus | undefined = event.type === 'mirror-settled' ? event.status : undefined;
 *     if (ended === 'dead-letter') console.warn('dead letter', event.resourceType);
 *   },
 * };
 * ```
 */
export type LeaseStatus =
  'applied' | 'unchanged' | 'retrying' | 'waiting' | 'dead-letter' | 'requeued' | 'fenced';

/*
 * How long a waiting entry sleeps before it looks again on its own. The journal wakes it as soon
 * as its dependency is linked or dead-lettered, so these only bound what nothing announces: a
 * dependency linked by hand in another store, or a wake racing the deferral. A dependency
 * pending is usually moments away; one that is held needs an operator, so is polled rarely.
 */
const WAITING_RECHECK_MS = 30_000;
const HELD_RECHECK_MS = 300_000;

/*
 * The waits between tries to record a lease's result while the journal is briefly away (about
 * 2 s in all): enough for a pool to replace a terminated backend or ride out a short failover.
 */
const RECORD_RETRY_DELAYS_MS = [25, 100, 250, 500, 1000] as const;

/** The result of running one lease. */
export interface LeaseResult {
  readonly status: LeaseStatus;
  readonly outcome: MirrorOutcome | undefined;
  readonly error: DualWriteError | undefined;
  /** For `retrying`: how long until the entry is due again (a rate limit's reset, at least). */
  readonly retryInMs?: number | undefined;
}

/** When a transient failure becomes a dead letter, and how long to wait in between. */
export interface LeasePolicy {
  /** Failed attempts after which even a transient failure is dead-lettered. */
  readonly maxAttempts: number;
  /** How long a lease lasts; a {@link LeaseKeeper} renews it while the mirror runs. */
  readonly leaseMs: number;
  readonly backoff: Backoff;
  /**
   * Told of each conflict once its outcome is recorded: resolved (the link saved with the entry's
   * completion) or, with `review`, left to an operator (the entry dead-lettered).
   */
  /** Told of each completed mirror (for sampled read-back checks); must not throw. */
  readonly onApplied?: ((entry: OutboxEntry, outcome: MirrorOutcome) => void) | undefined;
  readonly onConflict?: ((report: ConflictReport, review?: ReviewRequiredError) => Promise<void>) | undefined;
  /**
   * Told of each entry moved to the dead-letter queue, on every path (the drainer's, an inline
   * mirror's), so each is reported the same way; must not throw.
   */
  readonly onDeadLetter?: ((entry: OutboxEntry, error: DualWriteError) => void) | undefined;
  /** Told how each lease ended, on every path (the metrics are derived from it); must not throw. */
  readonly onSettled?: ((entry: OutboxEntry, result: LeaseResult) => void) | undefined;
  /**
   * Runs each lease inside something of the caller's (a trace span); calls `run` once and
   * returns what it returns.
   */
  readonly around?:
    ((entry: OutboxEntry, run: () => Promise<LeaseResult>) => Promise<LeaseResult>) | undefined;
}

/**
 * Applies a leased entry once and records the result in the store: complete (with the link,
 * atomically), retry later with backoff, or dead-letter. Used by the inline mirror and by the
 * drainer alike.
 *
 * @param ctx - The sides, mappings and store.
 * @param lease - The lease to run.
 * @param policy - Attempts and backoff.
 * @param attempt - Applies the entry: one {@link mirrorEntry} for the drainer; the inline path
 *   passes one that retries within its budget. It runs in the lease's request scope: its
 *   requests stop when the lease can no longer be proven, and a plain create confirms it first.
 * @param timing - `confirmedAt`: when (`Date.now()`) the claim or renewal that granted the lease
 *   was sent; `attempted`: told when the attempt is over, before its result is recorded (the
 *   drainer's worker then moves on).
 * @returns How the lease ended.
 */
export async function runLease<L>(
  ctx: MirrorContext<L>,
  lease: Lease,
  policy: LeasePolicy,
  attempt: () => Promise<MirrorOutcome>,
  timing: { readonly confirmedAt: number; readonly attempted?: (() => void) | undefined },
): Promise<LeaseResult> {
  const run = async (): Promise<LeaseResult> => {
    const result = await runLeaseOnce(ctx, lease, policy, attempt, timing);
    policy.onSettled?.(lease.entry, result);
    return result;
  };
  return policy.around === undefined ? run() : policy.around(lease.entry, run);
}

async function runLeaseOnce<L>(
  ctx: MirrorContext<L>,
  lease: Lease,
  policy: LeasePolicy,
  attempt: () => Promise<MirrorOutcome>,
  timing: { readonly confirmedAt: number; readonly attempted?: (() => void) | undefined },
): Promise<LeaseResult> {
  const { attempted } = timing;
  let outcome: MirrorOutcome;
  // Keep the lease while the mirror runs, however slow the other side is, and stop writing
  // once it cannot be proven: a second worker may have taken the entry over.
  const keeper = new LeaseKeeper(ctx.store, lease, policy.leaseMs, timing.confirmedAt);
  keeper.start();
  try {
    outcome = await inRequestScope(keeper.scope, attempt);
  } catch (err) {
    attempted?.();
    return await fail(ctx, lease, policy, toTyped(err, lease));
  } finally {
    keeper.stop();
  }
  attempted?.();
  try {
    // A resolved conflict's writes have happened, whatever the completion says (a newer write
    // requeues the entry, a lost lease fences it): it is recorded either way, so no
    // disagreement goes unseen.
    if (outcome.conflict !== undefined) await policy.onConflict?.(outcome.conflict);
    const recorded = await recordResult(() => ctx.store.complete(lease, outcome.link));
    if (recorded === 'done') policy.onApplied?.(lease.entry, outcome);
    return {
      status: recorded === 'done' ? (outcome.action === 'unchanged' ? 'unchanged' : 'applied') : recorded,
      outcome,
      error: undefined,
    };
  } catch (err) {
    if (err instanceof LinkConflictError) {
      const error = new RejectedError(err.message, [], {
        resourceType: err.resourceType,
        legacyId: err.legacyId,
        medplumId: err.medplumId,
        cause: err,
      });
      return fail(ctx, lease, policy, error);
    }
    throw err;
  }
}

async function fail(
  { store, baseSnapshot }: { readonly store: SyncStore; readonly baseSnapshot: 'full' | 'hash-only' },
  lease: Lease,
  policy: LeasePolicy,
  error: DualWriteError,
): Promise<LeaseResult> {
  const reason = reasonOf(error);
  let recorded: LeaseOutcome;
  if (error instanceof DependencyError) {
    // Not a failure of this mirror: never counted, never dead-lettered for it.
    recorded = await recordResult(() =>
      store.defer(
        lease,
        waitingForOf(error.dependency),
        reason,
        error.waiting ? WAITING_RECHECK_MS : HELD_RECHECK_MS,
        error.waiting,
      ),
    );
    return { status: recorded === 'done' ? 'waiting' : recorded, outcome: undefined, error };
  }
  const attempts = lease.entry.attempts + 1;
  if (error.retryable && attempts < policy.maxAttempts) {
    const retryAfter =
      'retryAfterMs' in error && typeof error.retryAfterMs === 'number' ? error.retryAfterMs : undefined;
    const retryInMs = delayFor(policy.backoff, attempts, retryAfter);
    recorded = await recordResult(() => store.retryLater(lease, reason, retryInMs));
    return { status: recorded === 'done' ? 'retrying' : recorded, outcome: undefined, error, retryInMs };
  }
  // A letter can wait weeks for an operator: under `hash-only` it keeps no copy of the record.
  recorded = await recordResult(() => store.deadLetter(lease, reason, { keepBase: baseSnapshot === 'full' }));
  if (recorded === 'done' && error instanceof ReviewRequiredError)
    await policy.onConflict?.(fullReportOf(error), error);
  if (recorded === 'done') policy.onDeadLetter?.(lease.entry, error);
  return { status: recorded === 'done' ? 'dead-letter' : recorded, outcome: undefined, error };
}

/**
 * Records a lease's result, trying again while the journal is briefly away (a terminated
 * backend, a failover). The mirror's writes are done by then: a result left unrecorded would
 * hold the entry until its lease expires (30 s by default) before another claim applies it
 * again. Repeating a recording call is safe, since each is fenced by the lease's token. When an
 * earlier try committed but its answer was lost, a dead letter's repeat recognises the letter
 * its lease recorded and answers `done`, so the letter is announced (its `dead-letter` event,
 * a review's conflict report and Task) as once; a completion's or a retry's repeat finds the
 * lease gone and answers `fenced`, so the drain's counts miss that one entry (and a completion
 * its sampled read-back), while the journal holds the truth.
 * A journal away for longer than the retries throw, as before: the lease then stands until it
 * expires, and the entry is applied again (idempotently).
 *
 * @param record - The store call that records the result.
 * @returns What it returned.
 */
async function recordResult<T>(record: () => Promise<T>): Promise<T> {
  for (const delayMs of RECORD_RETRY_DELAYS_MS) {
    try {
      return await record();
    } catch (err) {
      const transient = (err instanceof DualWriteError && err.retryable) || isTransientDatabaseError(err);
      if (!transient) throw err;
      await sleep(delayMs);
    }
  }
  return record();
}

/** Most field paths a stored reason keeps, and the longest path kept. */
const REASON_FIELDS = 20;
const REASON_FIELD_LENGTH = 200;

/**
 * The persisted form of an error: name, message, status, side and the field paths at fault
 * (a server's OperationOutcome expressions, a column; paths, never values); never the cause's
 * data.
 */
export function reasonOf(error: DualWriteError): OutboxError {
  const fields = fieldsOf(error)
    .filter((field) => field.length <= REASON_FIELD_LENGTH)
    .slice(0, REASON_FIELDS);
  return {
    name: error.name,
    message: error.message,
    status: error.status,
    side: error.side,
    ...(fields.length === 0 ? {} : { fields }),
  };
}

function toTyped(err: unknown, lease: Lease): DualWriteError {
  if (err instanceof DualWriteError) return err;
  const details = {
    resourceType: lease.entry.resourceType,
    legacyId: lease.entry.legacyId,
    side: lease.entry.target,
  };
  // A database error that reached here untyped (from a store of the caller's own, say) is
  // classified like any other: a terminated backend or a failover is retried, not dead-lettered.
  if (databaseFailureKind(err) !== undefined)
    return databaseError(err, 'mirror', details, (message, typed) => new RejectedError(message, [], typed));
  // An error the library did not classify (a bug, a mapping throwing oddly): permanent, so it
  // is seen in the dead-letter queue rather than retried forever. Its message may quote
  // values: only the value-free copy is kept.
  const cause = valueFreeError(err);
  return new RejectedError(`mirror failed: ${cause.name}: ${cause.message}`, [], { ...details, cause });
}

/**
 * Records what a lease is about to write; a lease that was taken over must not write at all.
 *
 * @param store - The store.
 * @param lease - The lease.
 * @returns The marker for {@link mirrorEntry}.
 */
export function markFor(store: SyncStore, lease: Lease): (hash: string) => Promise<void> {
  return async (hash) => {
    // Before any write the mark announces: a lease that lapsed stops here.
    currentRequestScope()?.signal.throwIfAborted();
    if (!(await store.markApplying(lease, hash))) {
      throw new UnavailableError(
        `the lease on ${lease.entry.resourceType}/${lease.entry.legacyId} was taken over; not writing`,
        {
          resourceType: lease.entry.resourceType,
          legacyId: lease.entry.legacyId,
          side: lease.entry.target,
        },
      );
    }
  };
}
