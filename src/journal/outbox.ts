import type { Side } from '../errors.ts';
import type { Link } from './link.ts';

/*
 * Glossary of the journal (see also DESIGN.md):
 *
 * - outbox entry — a durable promise to make one side's copy of one record match the other
 *   side (the authority). There is at most one entry per record and target side: a newer write
 *   bumps the entry's `seq` instead of adding a row, so pending mirrors of one record coalesce
 *   and at most one of them is ever in flight.
 * - intent — the entry as written *before* the authority write (write-ahead). It is held
 *   (`holdUntil`) so no worker mirrors the record while the authority write is in progress;
 *   the writer commits it when the authority write returns, or the hold expires after a crash.
 * - lease — a worker's claim on an entry, with an expiry (a dead worker's entries return) and
 *   a token (fencing: a worker whose lease expired cannot complete the entry).
 * - dead letter — an entry that failed for good, kept with its reason until an operator
 *   retries or discards it.
 *
 * Mirrors are state-based: applying an entry reads the authority's current copy of the record
 * and makes the target match it. Replaying an entry, or applying it after a crash at any
 * point, is therefore harmless, and a newer state supersedes older pending ones.
 */

/**
 * What an entry asks for when the authority no longer has the record: `upsert` means the
 * write that made the entry did not land (nothing to mirror), `delete` means remove the
 * target's copy too.
 *
 * @example
 * ```ts
 * const kind: OutboxKind = 'delete';
 * ```
 */
export type OutboxKind = 'upsert' | 'delete';

/**
 * The record and direction an entry mirrors.
 *
 * @example
 * ```ts
 * const key: OutboxKey = { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum' };
 * ```
 */
export interface OutboxKey {
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The record's legacy id. */
  readonly legacyId: string;
  /** The side to mirror to. */
  readonly target: Side;
}

/**
 * A new write's intent, recorded before the authority write.
 *
 * @example
 * ```ts
 * const intent: OutboxIntent = { resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' };
 * ```
 */
export interface OutboxIntent extends OutboxKey {
  /** The unit the write belongs to (for readiness figures and operators). */
  readonly unit: string;
  /** What to do if the authority has no copy when the entry is applied. */
  readonly kind: OutboxKind;
  /**
   * The caller's full copy of the record in the target's shape, when the call gave one (a FHIR
   * resource while the legacy system is the authority, a legacy row while Medplum is): fields
   * the mapping does not cover are taken from it. JSON-serialisable.
   *
   * Coalescing never loses it: a newer intent with a base replaces the pending one (the caller's
   * full copy is the newest state of every field), one without (a row-shaped write, a change
   * feed's) keeps it (it changes only fields the mapping covers, which the mirror reads from the
   * authority anyway), and a delete drops it.
   */
  readonly base?: unknown;
  /**
   * The W3C `traceparent` of the write's span, for the mirror's spans to link to; a newer
   * intent's replaces it.
   */
  readonly traceParent?: string | undefined;
  /**
   * The lane the entry is queued in: only the drainers holding that lane claim it while one
   * does (`SyncStore.holdLane`), every drainer once none does. A backfill on a Medplum client of
   * its own queues in its job's lane, so its drainer on that client applies the writes. Absent:
   * no lane (every drainer). Coalescing keeps an existing entry's lane for an intent with a
   * lane, and takes the entry out of its lane for one without (a live write is never applied
   * behind a backfill's pacing).
   */
  readonly lane?: string | undefined;
}

/**
 * Identifies one intent: the entry and the `seq` the intent gave it.
 *
 * @example
 * ```ts
 * const ticket = await store.intend(intent, 30_000);
 * await store.commit(ticket);
 * ```
 */
export interface OutboxTicket {
  /** The entry's id. */
  readonly id: string;
  /** The entry's sequence number after this intent. */
  readonly seq: number;
  /** Whether this intent holds the entry until it is committed. */
  readonly held?: boolean | undefined;
  /** The intent, so a commit can queue the record again if its entry is gone. */
  readonly intent?: OutboxIntent | undefined;
}

/**
 * Why an attempt failed, as persisted with the entry (no field values).
 *
 * @example
 * ```ts
 * const error: OutboxError = { name: 'UnavailableError', message: 'Medplum answered 503', status: 503, side: 'medplum' };
 * ```
 */
export interface OutboxError {
  /** The typed error's name. */
  readonly name: string;
  /** Its message. */
  readonly message: string;
  /** The HTTP status, when there was one. */
  readonly status?: number | undefined;
  /** The side that failed. */
  readonly side?: Side | undefined;
  /**
   * The field paths at fault when the failure named them (a Medplum 400's OperationOutcome
   * `issue.expression`, such as `Patient.birthDate`; a column), never values.
   */
  readonly fields?: readonly string[] | undefined;
}

/**
 * An outbox entry as stored.
 *
 * @example
 * ```ts
 * const entries = await store.listOutbox({ limit: 10 });
 * console.log(entries[0]?.attempts, entries[0]?.lastError?.name);
 * ```
 */
export interface OutboxEntry extends OutboxKey {
  /** The entry's id (unique, increasing). */
  readonly id: string;
  /** The unit of the latest write. */
  readonly unit: string;
  /** What to do if the authority has no copy. */
  readonly kind: OutboxKind;
  /** The caller's copy of the record in the target's shape, when given. */
  readonly base: unknown;
  /** Bumped by every intent; a lease completes only the `seq` it claimed. */
  readonly seq: number;
  /** Failed attempts so far. */
  readonly attempts: number;
  /** Not claimable before this instant (ISO 8601): backoff. */
  readonly nextAttemptAt: string;
  /** Not claimable before this instant while an authority write is in progress, if set. */
  readonly holdUntil: string | undefined;
  /** The last failure, if any. */
  readonly lastError: OutboxError | undefined;
  /** The worker holding the entry, if leased. */
  readonly leaseOwner: string | undefined;
  /** When the lease expires, if leased. */
  readonly leaseExpiresAt: string | undefined;
  /** When the first intent was recorded. */
  readonly createdAt: string;
  /**
   * The content hashes workers were about to write to the target, newest first (at most
   * eight), each recorded just before its write (see `SyncStore.markApplying`); kept until the
   * entry completes. Any of them may be on the target: a write can land although its answer
   * was lost, and a later attempt can fail before its own write lands.
   */
  readonly applyingHashes: readonly string[];
  /**
   * The record this entry's mirror waits for, when it references one that has no copy on the
   * target side yet (`Patient/42` by legacy key, `Patient#<id>` by Medplum id); `lastError`
   * then says why (a `DependencyError`). The entry runs again as soon as that record is linked
   * or its state changes.
   */
  readonly waitingFor: string | undefined;
  /** The W3C `traceparent` of the latest write that owes the entry, when spans were recorded. */
  readonly traceParent?: string | undefined;
  /** The lane it is queued in (see {@link OutboxIntent.lane}); absent: none. */
  readonly lane?: string | undefined;
}

/**
 * A worker's claim on an entry: the entry as claimed, and the token that fences it.
 *
 * @example
 * ```ts
 * const [lease] = await store.claim('worker-1', 1, 30_000);
 * if (lease) await store.complete(lease, { link });
 * ```
 */
export interface Lease {
  /** The entry as it was when claimed. */
  readonly entry: OutboxEntry;
  /** The fencing token; only the current holder's token completes the entry. */
  readonly token: string;
  /** The worker that holds it. */
  readonly owner: string;
  /**
   * The record's link as read with the claim, or with the commit that leased the entry (`null`:
   * it had none), when the store reads it there: a mirror then needs no look-up of its own.
   * Absent when the store does not.
   */
  readonly link?: Link | null | undefined;
}

/**
 * What happened when a worker tried to finish a lease.
 *
 * - `done`: the entry is complete (removed) or dead-lettered, as asked.
 * - `requeued`: a newer write arrived while the worker applied the entry; the entry is pending
 *   again and will be applied with the newer state.
 * - `fenced`: the lease had expired and another worker took the entry; nothing was changed.
 *
 * @example
 * ```ts
 * if ((await store.complete(lease, { link })) === 'fenced') metrics.fenced++;
 * ```
 */
export type LeaseOutcome = 'done' | 'requeued' | 'fenced';

/**
 * An entry that failed for good, kept for an operator.
 *
 * @example
 * ```ts
 * for (const letter of await writer.deadLetters()) console.log(letter.id, letter.reason.name, letter.reason.status);
 * ```
 */
export interface DeadLetter extends OutboxKey {
  /** The dead letter's id. */
  readonly id: string;
  /** The unit of the last write. */
  readonly unit: string;
  /** What the entry asked for when the authority had no copy. */
  readonly kind: OutboxKind;
  /** The caller's copy, when the entry had one. */
  readonly base: unknown;
  /** Attempts made before giving up. */
  readonly attempts: number;
  /** Why it failed. */
  readonly reason: OutboxError;
  /** When it was dead-lettered. */
  readonly failedAt: string;
  /**
   * How many times the same failure of the record (same target, kind and reason) recurred while
   * the letter was open: a record queued again (a feed re-reading its overlap, a repeated write)
   * and refused again the same way counts here instead of opening a second letter. `0` (or absent,
   * from a store of your own) when it failed once.
   */
  readonly repeats?: number | undefined;
  /** When the failure last recurred; absent when it never did. */
  readonly lastFailedAt?: string | undefined;
  /**
   * `open` until an operator retries it (`retried`: queued again), discards it (`discarded`:
   * given up, with a note) or resolves it (`resolved`: one side's copy, or a merged resource,
   * written to both sides; see `resolution`).
   */
  readonly status: 'open' | 'retried' | 'discarded' | 'resolved';
  /** When an operator closed it. */
  readonly resolvedAt: string | undefined;
  /** The operator's note, for discards and resolutions. */
  readonly note: string | undefined;
  /** For a `resolved` letter, what decided it: the side that won, or a merged resource. */
  readonly resolution?: 'legacy' | 'medplum' | 'merged' | undefined;
}

/**
 * Counts of the outbox and dead-letter queue.
 *
 * @example
 * ```ts
 * const { pending, leased, dead } = await store.outboxCounts();
 * ```
 */
export interface OutboxCounts {
  /** Entries waiting (including those backing off or held by an authority write). */
  readonly pending: number;
  /**
   * Entries waiting for a record they reference, not due yet (see `OutboxEntry.waitingFor`);
   * not counted in `pending`, since nothing but the dependency can move them. Absent when there
   * are none.
   */
  readonly waiting?: number | undefined;
  /**
   * Entries of paused units (see `SyncStore.pauseUnit`), not leased: owed, but claimed by no
   * drainer until the unit resumes; not counted in `pending` or `waiting`. Absent when there are
   * none.
   */
  readonly paused?: number | undefined;
  /** Entries a worker holds now. */
  readonly leased: number;
  /** Open dead letters. */
  readonly dead: number;
}

/**
 * One line of the outbox's backlog: a unit's mirrors of one resource type towards one side,
 * counted as {@link OutboxCounts} counts them, with the oldest entry still owed.
 *
 * @example
 * ```ts
 * for (const line of await store.outboxBacklog()) console.log(line.unit, line.resourceType, line.pending, line.oldestAt);
 * ```
 */
export interface OutboxBacklog {
  /** The unit of the entries' latest writes. */
  readonly unit: string;
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The side the entries mirror to. */
  readonly target: Side;
  /** Entries waiting (backing off, held, or due), not leased and not waiting for a dependency. */
  readonly pending: number;
  /** Entries waiting for a record they reference. */
  readonly waiting: number;
  /** Entries a worker holds now. */
  readonly leased: number;
  /** Open dead letters. */
  readonly dead: number;
  /**
   * When the oldest entry of the line was first recorded (ISO 8601): how long its mirror has
   * been owed. `undefined` when the line has dead letters only.
   */
  readonly oldestAt: string | undefined;
}

/**
 * Which dead letters {@link SyncStore.listDeadLetters} returns; every filter given must match.
 *
 * @example
 * ```ts
 * const filter: DeadLetterFilter = { status: 'open', unit: 'north', resourceType: 'Patient', reason: 'RejectedError' };
 * ```
 */
export interface DeadLetterFilter {
  /** One status, or `all`. @default 'open' */
  readonly status?: DeadLetter['status'] | 'all' | undefined;
  /** Only this unit's. */
  readonly unit?: string | undefined;
  /** Only this resource type's. */
  readonly resourceType?: string | undefined;
  /** Only those towards this side. */
  readonly target?: Side | undefined;
  /** Only those whose reason is this error name (e.g. `RejectedError`). */
  readonly reason?: string | undefined;
  /** The most to return (oldest first). */
  readonly limit?: number | undefined;
}
