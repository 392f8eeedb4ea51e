import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { DualWriteError, InvalidInputError, MirrorError, OutcomeUnknownError, type Side } from '../errors.ts';
import type { DualWriteEvent } from '../dual-write-event.ts';
import type { OutboxKind, OutboxTicket } from '../journal/outbox.ts';
import {
  transactionalOutboxOf,
  type PendingIntent,
  type TransactionalOutbox,
} from '../journal/transactional-outbox.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { Stage, StageRoute } from '../plan/stage.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { lostInFlight } from '../sides/write-outcome.ts';
import type { SideAction, SideOutcome, WriteResult } from '../write-result.ts';
import type { DrainerPolicy } from './drainer.ts';
import { markFor, runLease, type LeasePolicy, type LeaseResult } from './lease-runner.ts';
import { mirrorEntry, type KnownAuthority, type MirrorContext, type MirrorOutcome } from './mirror-entry.ts';
import { withRetries, type RetryPolicy } from './retry-policy.ts';
import type { WriteTracing } from '../telemetry/write-tracing.ts';

/** A call routed to its mapping, unit and stage. */
export interface Routed<L> {
  readonly mapping: ResourceMapping<L>;
  readonly unit: string;
  readonly route: StageRoute & { readonly stage: Stage };
}

/** What the authority write produced. */
export type AuthorityWrite<L> =
  | { readonly side: 'legacy'; readonly action: SideAction; readonly record: LegacyRecord<L> | undefined }
  | {
      readonly side: 'medplum';
      readonly action: SideAction;
      readonly resource: WithId<Resource> | undefined;
    };

/** How the write path runs: mirroring mode and the policies it needs. */
export interface WritePathSettings {
  readonly mode: 'sync' | 'async';
  readonly syncBudgetMs: number;
  readonly intentHoldMs: number;
  readonly retry: RetryPolicy;
  readonly drainer: DrainerPolicy;
  readonly lease: LeasePolicy;
  readonly emit: (event: DualWriteEvent) => void;
  readonly notifyDrainer: () => void;
  /** Spans for each call, their context stored with the outbox entry; none when `undefined`. */
  readonly tracing?: WriteTracing | undefined;
}

/** One call's plan: the authority write, and what the mirror owes if the authority loses the record. */
export interface WritePlan<L> {
  readonly operation: WriteResult['operation'];
  readonly kind: OutboxKind;
  /** The caller's copy in the target's shape, kept with the outbox entry. */
  readonly base: unknown;
  /**
   * Writes the authority once (the write path retries) through the given legacy adapter (the
   * writer's, or one bound to a transactional outbox's transaction) and returns what it did.
   * `mayHaveLanded` says that an earlier attempt of the call may have written (its answer was
   * lost): a copy holding the desired content may then be its own write (see `attemptGuard`).
   */
  readonly authority: (legacy: LegacyAdapter<L>, mayHaveLanded: boolean) => Promise<AuthorityWrite<L>>;
}

/**
 * The write path of DESIGN.md: journal the intent, write the authority, then mirror inline
 * (`sync`, within a budget) or leave the mirror to the drainer (`async`). A crash at any point
 * leaves either nothing owed or an outbox entry that the drainer completes.
 *
 * The intent is journaled in one of two ways. Where the store and the legacy adapter share a
 * database (a transactional outbox), the legacy write and its entry commit in one transaction.
 * Otherwise the entry is written first and held (not claimable) until the authority write
 * returns, or until the hold expires after a crash.
 */
export class WritePath<L> {
  readonly #ctx: MirrorContext<L>;
  readonly #settings: WritePathSettings;
  readonly #transactional: TransactionalOutbox<L> | undefined;

  /**
   * @param ctx - The sides, mappings and store.
   * @param settings - Mode and policies.
   */
  constructor(ctx: MirrorContext<L>, settings: WritePathSettings) {
    this.#ctx = ctx;
    this.#settings = settings;
    this.#transactional = transactionalOutboxOf(ctx.store, ctx.legacy);
  }

  /** Whether legacy writes and their outbox entries commit in one transaction. */
  get transactional(): boolean {
    return this.#transactional !== undefined;
  }

  /**
   * Runs one write call.
   *
   * @param routed - The call's mapping, unit and route.
   * @param legacyId - The record's legacy id, or `undefined` when the legacy authority assigns it
   *   in this write (then the intent can only follow the write: in the same transaction with a
   *   transactional outbox, else just after it).
   * @param plan - The authority write and the mirror's intent.
   * @returns What was written on each side.
   */
  run(routed: Routed<L>, legacyId: string | undefined, plan: WritePlan<L>): Promise<WriteResult<L>> {
    const { tracing } = this.#settings;
    if (tracing === undefined) return this.#run(routed, legacyId, plan, undefined);
    const call = {
      operation: plan.operation,
      resourceType: routed.mapping.resourceType,
      unit: routed.unit,
      stage: routed.route.stage,
      authority: routed.route.authority,
    };
    return tracing.write(call, (traceParent) => this.#run(routed, legacyId, plan, traceParent));
  }

  async #run(
    routed: Routed<L>,
    legacyId: string | undefined,
    plan: WritePlan<L>,
    traceParent: string | undefined,
  ): Promise<WriteResult<L>> {
    const { route, mapping, unit } = routed;
    if (mapping.partOf !== undefined && route.authority === 'legacy') {
      // The legacy record is the owner's: a write to it owes a mirror of every resource drawn
      // from it, which only the owner's mirror queues.
      throw new InvalidInputError(
        'resourceType',
        `${mapping.resourceType} is part of the ${mapping.partOf} record: write it through ${mapping.partOf} while the legacy system is the authority`,
        { resourceType: mapping.resourceType, legacyId },
      );
    }
    const target = route.mirrorTo;
    const intentFor = <I extends string | undefined>(id: I, side: Side): PendingIntent & { legacyId: I } => ({
      resourceType: mapping.resourceType,
      legacyId: id,
      target: side,
      unit,
      kind: plan.kind,
      base: plan.base,
      traceParent,
    });
    const transactional =
      route.authority === 'legacy' && target !== undefined ? this.#transactional : undefined;
    let authority: AuthorityWrite<L>;
    let ticket: OutboxTicket | undefined;
    if (transactional !== undefined && target !== undefined) {
      const intent = intentFor(legacyId, target);
      ({ value: authority, ticket } = await this.#writeAuthority(
        routed,
        legacyId,
        (landed) => transactional.run(intent, (legacy) => plan.authority(legacy, landed), idOf),
        // The transaction's COMMIT is a write too: a connection lost around it may have landed.
        lostInFlight,
      ));
    } else {
      const early =
        target === undefined || legacyId === undefined
          ? undefined
          : await this.#ctx.store.intend(intentFor(legacyId, target), this.#settings.intentHoldMs);
      try {
        authority = await this.#writeAuthority(routed, legacyId, (landed) =>
          plan.authority(this.#ctx.legacy, landed),
        );
      } catch (err) {
        if (early !== undefined) {
          // Refused or never sent: nothing was written, so this intent owes nothing (an older
          // write still owed keeps its entry). Otherwise the write may have landed: the entry
          // stays owed and mirrors the authority's current state, which is nothing to do if
          // the write did not land after all.
          if (err instanceof DualWriteError && !(err instanceof OutcomeUnknownError))
            await this.#ctx.store.withdraw(early);
          else await this.#release(early);
        }
        throw err;
      }
      ticket = early;
      if (ticket === undefined && target !== undefined) {
        // The authority assigned the id in this write: journal right after (the README's gap).
        ticket = await this.#ctx.store.intend(
          intentFor(idOf(authority), target),
          this.#settings.intentHoldMs,
        );
      }
    }
    const id = legacyId ?? idOf(authority);
    const result = (mirror: MirrorState): WriteResult<L> =>
      this.#result(plan.operation, routed, id, authority, mirror);
    if (ticket === undefined || target === undefined) return result({ status: 'not-required' });
    if (this.#settings.mode === 'async') {
      // A transactional intent was never held; any other is released now.
      if (transactional === undefined) await this.#release(ticket);
      else this.#settings.notifyDrainer();
      return result({ status: 'pending', outboxId: ticket.id });
    }
    return this.#mirrorInline(routed, id, ticket, authority, result);
  }

  /**
   * Writes the authority, retrying transient failures. A failure whose write may have landed
   * (an {@link OutcomeUnknownError} from the side, or a connection lost around a transaction's
   * COMMIT) is retried like any other when the write can be recognised when sent again (the
   * record's legacy id is known: every write by id is idempotent); the call's final error is
   * then an {@link OutcomeUnknownError} whatever the last attempt's was, since an earlier
   * attempt may have written. A create whose legacy id the legacy system assigns is not sent
   * again: a second row could follow.
   */
  async #writeAuthority<T>(
    routed: Routed<L>,
    legacyId: string | undefined,
    fn: (mayHaveLanded: boolean) => Promise<T>,
    landed: (error: unknown) => boolean = () => false,
  ): Promise<T> {
    const idempotent = legacyId !== undefined;
    let unknown: DualWriteError | undefined;
    try {
      return await this.#retrying(routed, legacyId, async () => {
        try {
          return await fn(unknown !== undefined);
        } catch (err) {
          if (!(err instanceof OutcomeUnknownError) && !landed(err)) throw err;
          unknown = err instanceof OutcomeUnknownError ? err : outcomeUnknown(routed, legacyId, err, 1, true);
          if (!idempotent) throw outcomeUnknown(routed, legacyId, unknown, unknown.attempts, false);
          throw unknown;
        }
      });
    } catch (err) {
      if (unknown === undefined || (err instanceof OutcomeUnknownError && !err.retryable)) throw err;
      throw outcomeUnknown(
        routed,
        legacyId,
        err,
        err instanceof DualWriteError ? err.attempts : 1,
        idempotent,
      );
    }
  }

  #retrying<T>(routed: Routed<L>, legacyId: string | undefined, fn: () => Promise<T>): Promise<T> {
    return withRetries(fn, this.#settings.retry, (error, attempt, delayMs) => {
      this.#settings.emit({
        type: 'retry',
        side: error.side ?? routed.route.authority,
        resourceType: routed.mapping.resourceType,
        legacyId: legacyId ?? error.legacyId,
        status: error.status,
        attempt,
        delayMs,
        error: error.name,
      });
    }).then(({ value }) => value);
  }

  async #mirrorInline(
    routed: Routed<L>,
    legacyId: string,
    ticket: OutboxTicket,
    authority: AuthorityWrite<L>,
    result: (mirror: MirrorState) => WriteResult<L>,
  ): Promise<WriteResult<L>> {
    const { store } = this.#ctx;
    const confirmedAt = Date.now();
    const lease = await store.commit(ticket, {
      owner: this.#settings.drainer.workerId,
      leaseMs: this.#settings.drainer.leaseMs,
    });
    // Another worker holds the record's entry (an earlier write is being mirrored): it will see
    // the newer seq when it finishes and apply this write's state too.
    if (lease === undefined) return result({ status: 'pending', outboxId: ticket.id });
    const known: KnownAuthority<L> =
      authority.side === 'legacy'
        ? { side: 'legacy', record: authority.record }
        : { side: 'medplum', resource: authority.resource };
    let attempts = 0;
    // Each retry must recognise what the previous one wrote, even if its answer was lost.
    let marked = lease.entry.applyingHashes;
    const mark = markFor(this.#ctx.store, lease);
    const markAndRemember = async (hash: string): Promise<void> => {
      await mark(hash);
      marked = [hash, ...marked].slice(0, 8);
    };
    const attempt = async (): Promise<MirrorOutcome> => {
      try {
        const { value, attempts: made } = await withRetries(
          (n) =>
            mirrorEntry(
              this.#ctx,
              { ...lease.entry, applyingHashes: marked },
              // The link came with the lease; a retry reads it afresh.
              {
                known: n === 1 ? known : undefined,
                linked: n === 1 ? lease.link : undefined,
                mark: markAndRemember,
              },
            ),
          this.#settings.retry,
          (error, n, delayMs) => this.#emitRetry(error, n, delayMs, routed, legacyId),
        );
        attempts = made;
        return value;
      } catch (err) {
        attempts = err instanceof DualWriteError ? err.attempts : attempts + 1;
        throw err;
      }
    };
    const running = runLease(this.#ctx, lease, this.#settings.lease, attempt, { confirmedAt });
    const settled = await withinBudget(running, this.#settings.syncBudgetMs);
    if (settled === undefined) {
      // Over budget: the call returns; the mirror goes on in the background and, if it fails,
      // leaves the entry to the drainer. Nothing is lost either way.
      running.then(
        () => this.#settings.notifyDrainer(),
        () => this.#settings.notifyDrainer(),
      );
      return result({ status: 'pending', outboxId: ticket.id });
    }
    return this.#afterInline(routed, legacyId, ticket, settled, attempts, result);
  }

  #afterInline(
    routed: Routed<L>,
    legacyId: string,
    ticket: OutboxTicket,
    settled: LeaseResult,
    attempts: number,
    result: (mirror: MirrorState) => WriteResult<L>,
  ): WriteResult<L> {
    switch (settled.status) {
      case 'applied':
      case 'unchanged': {
        const done = result({ status: settled.status, outcome: settled.outcome, attempts });
        this.#settings.emit({
          type: 'mirrored',
          resourceType: routed.mapping.resourceType,
          legacyId,
          medplumId: done.medplumId,
          unit: routed.unit,
          stage: routed.route.stage,
          mirror: done.mirror,
        });
        return done;
      }
      case 'dead-letter': {
        const failed = result({ status: 'dead-letter', outboxId: ticket.id, attempts });
        const error = settled.error;
        if (error === undefined) return failed;
        this.#settings.emit({
          type: 'mirror-failed',
          resourceType: routed.mapping.resourceType,
          legacyId,
          medplumId: failed.medplumId,
          unit: routed.unit,
          stage: routed.route.stage,
          side: error.side,
          status: error.status,
          attempts: error.attempts,
          error: error.name,
        });
        throw new MirrorError(failed, error);
      }
      case 'retrying':
      case 'waiting':
      case 'requeued':
      case 'fenced':
        this.#settings.notifyDrainer();
        return result({ status: 'pending', outboxId: ticket.id, attempts });
    }
  }

  async #release(ticket: OutboxTicket): Promise<void> {
    await this.#ctx.store.commit(ticket);
    this.#settings.notifyDrainer();
  }

  #emitRetry(
    error: DualWriteError,
    attempt: number,
    delayMs: number,
    routed: Routed<L>,
    legacyId: string,
  ): void {
    this.#settings.emit({
      type: 'retry',
      side: error.side ?? routed.route.mirrorTo ?? routed.route.authority,
      resourceType: routed.mapping.resourceType,
      legacyId,
      status: error.status,
      attempt,
      delayMs,
      error: error.name,
    });
  }

  #result(
    operation: WriteResult['operation'],
    routed: Routed<L>,
    legacyId: string,
    authority: AuthorityWrite<L>,
    mirror: MirrorState,
  ): WriteResult<L> {
    const { route } = routed;
    const outcome = 'outcome' in mirror ? mirror.outcome : undefined;
    const legacyRecord =
      authority.side === 'legacy' ? authority.record : (outcome?.record as LegacyRecord<L> | undefined);
    const resource = authority.side === 'medplum' ? authority.resource : outcome?.resource;
    const legacyAction: SideAction =
      authority.side === 'legacy'
        ? authority.action
        : route.mirrorTo === 'legacy'
          ? mirrorAction(mirror)
          : 'skipped';
    const medplumAction: SideAction =
      authority.side === 'medplum'
        ? authority.action
        : route.mirrorTo === 'medplum'
          ? mirrorAction(mirror)
          : 'skipped';
    const medplumId = resource?.id ?? (outcome?.link === null ? undefined : outcome?.link?.medplumId);
    return {
      operation,
      resourceType: routed.mapping.resourceType,
      unit: routed.unit,
      stage: route.stage,
      authority: route.authority,
      legacyId,
      medplumId,
      legacy: sideOutcome(legacyAction, legacyId, legacyRecord?.version),
      medplum: sideOutcome(medplumAction, medplumId, resource?.meta?.versionId),
      mirror: mirror.status,
      mirrorAttempts: 'attempts' in mirror ? (mirror.attempts ?? 0) : 0,
      outboxId: 'outboxId' in mirror ? mirror.outboxId : undefined,
      row: legacyRecord?.row,
      resource,
    };
  }
}

/** The mirror's state as a result reports it. */
type MirrorState =
  | { readonly status: 'not-required' }
  | { readonly status: 'pending'; readonly outboxId: string; readonly attempts?: number }
  | { readonly status: 'dead-letter'; readonly outboxId: string; readonly attempts?: number }
  | {
      readonly status: 'applied' | 'unchanged';
      readonly outcome: MirrorOutcome | undefined;
      readonly attempts: number;
    };

function mirrorAction(mirror: MirrorState): SideAction {
  if (mirror.status === 'applied' || mirror.status === 'unchanged')
    return mirror.outcome?.action ?? 'unchanged';
  if (mirror.status === 'not-required') return 'skipped';
  return mirror.status === 'dead-letter' ? 'failed' : 'pending';
}

function sideOutcome(action: SideAction, id: string | undefined, version: string | undefined): SideOutcome {
  return { action, id: action === 'skipped' ? undefined : id, version };
}

/**
 * The error of an authority write that may have landed: the side and record, the last failure
 * as `cause`, and whether calling again is safe.
 */
function outcomeUnknown<L>(
  routed: Routed<L>,
  legacyId: string | undefined,
  last: unknown,
  attempts: number,
  retryable: boolean,
): OutcomeUnknownError {
  const side =
    last instanceof DualWriteError ? (last.side ?? routed.route.authority) : routed.route.authority;
  const where = side === 'medplum' ? 'Medplum' : 'the legacy system';
  const record = `${routed.mapping.resourceType}/${legacyId ?? '(new)'}`;
  const next = retryable
    ? 'the same call may be made again safely'
    : 'its legacy id was to be assigned in the write: look the record up before calling again';
  return new OutcomeUnknownError(
    `${record}: the write to ${where} may have landed (an answer was lost); ${next}`,
    {
      side,
      resourceType: routed.mapping.resourceType,
      legacyId,
      medplumId: last instanceof DualWriteError ? last.medplumId : undefined,
      status: last instanceof DualWriteError ? last.status : undefined,
      attempts,
      cause: last,
    },
    retryable,
  );
}

/** The legacy id an authority write produced (the legacy record's, else the resource's identifier). */
function idOf<L>(authority: AuthorityWrite<L>): string {
  if (authority.side === 'legacy' && authority.record !== undefined) return authority.record.id;
  throw new Error('the authority write returned no legacy record to take the id from');
}

/** Resolves with the promise's value, or `undefined` when the budget runs out first. */
async function withinBudget<T>(promise: Promise<T>, budgetMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), budgetMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
