import { DualWriteError } from '../errors.ts';
import type { HousekeepingStore } from './housekeeping.ts';
import type { JobStore } from './job.ts';
import type { Link } from './link.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  Lease,
  LeaseOutcome,
  OutboxBacklog,
  OutboxCounts,
  OutboxEntry,
  OutboxError,
  OutboxIntent,
  OutboxKey,
  OutboxKind,
  OutboxTicket,
} from './outbox.ts';
import type { BacklogRecording, BacklogSample, LagPoint } from './operating-history.ts';
import type { ReadinessEvidence, ReadinessSample } from './readiness-evidence.ts';
import type { PlanChange, PlanChangeOutcome, PlanSeed, StoredPlan } from './stored-plan.ts';

/**
 * An event kept in the store's event table (conflicts, divergence, dead letters…). Events
 * carry ids, paths and hashes, never field values.
 *
 * @example
 * ```ts
 * await store.appendEvent({ type: 'dead-letter', resourceType: 'Patient', legacyId: 'p-1', unit: 'north', data: { status: 400 } });
 * ```
 */
export interface StoredEvent {
  /** The event type, e.g. `dead-letter`. */
  readonly type: string;
  /** The resource type concerned, if any. */
  readonly resourceType?: string | undefined;
  /** The legacy id concerned, if any. */
  readonly legacyId?: string | undefined;
  /** The unit concerned, if any. */
  readonly unit?: string | undefined;
  /** Everything else, JSON-serialisable and free of PHI. */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * A {@link StoredEvent} as read back, with its id and time.
 *
 * @example
 * ```ts
 * const [latest] = await store.listEvents({ type: 'dead-letter', limit: 1 });
 * console.log(latest?.at);
 * ```
 */
export interface RecordedEvent extends StoredEvent {
  /** Increasing id. */
  readonly id: string;
  /** When it was recorded (ISO 8601). */
  readonly at: string;
}

/**
 * Which events {@link SyncStore.listEvents} returns, newest first; every filter given must match.
 *
 * @example
 * ```ts
 * const filter: EventFilter = { type: 'conflict', unit: 'north', data: { resolvedBy: 'authorityWins' }, limit: 20 };
 * ```
 */
export interface EventFilter {
  /** Only events of this type. */
  readonly type?: string | undefined;
  /** Only this unit's. */
  readonly unit?: string | undefined;
  /** Only events recorded at or after this instant (ISO 8601). */
  readonly since?: string | undefined;
  /** Only events whose `data` has these string values at these top-level keys. */
  readonly data?: Readonly<Record<string, string>> | undefined;
  /** The most to return. */
  readonly limit?: number | undefined;
}

/**
 * What {@link SyncStore.tallyEvents} counts: events of one type by the values of one `data` key.
 *
 * @example
 * ```ts
 * const byResolver = await store.tallyEvents({ type: 'conflict', key: 'resolvedBy', unit: 'north' });
 * ```
 */
export interface EventTally {
  /** The event type. */
  readonly type: string;
  /** The `data` key whose values are counted. */
  readonly key: string;
  /** Only this unit's. */
  readonly unit?: string | undefined;
  /** Only events recorded at or after this instant (ISO 8601). */
  readonly since?: string | undefined;
}

/**
 * Durable state the writer keeps beside the two systems: links, the outbox, dead letters,
 * events, feed cursors, the stored cutover plan and jobs (see {@link JobStore}). `MemoryStore` keeps it in process (tests);
 * `PostgresStore` in PostgreSQL, embedded (PGlite) or on a server shared by every instance.
 *
 * Contract, checked by one test suite run against every implementation:
 * - A link is unique on `(resourceType, legacyId)` and on `(resourceType, medplumId)`; a
 *   second legacy id claiming a Medplum id throws {@link LinkConflictError}.
 * - There is at most one outbox entry per record and target. `intend` inserts it or bumps its
 *   `seq`, and holds it for `holdMs` (no claim while the authority write runs).
 * - `claim` leases due, unheld, unleased entries (oldest first) to one worker; a lease that
 *   expires makes its entry claimable again with a new token.
 * - `complete`, `retryLater` and `deadLetter` act only for the current token (else `fenced`)
 *   and only for the claimed `seq` (else the entry is requeued for the newer write).
 * - The plan changes only by compare-and-set of one stage (`changePlan`), which bumps a
 *   revision and records the change's event in the same step; `seedPlan` never overwrites.
 *
 * @example
 * ```ts
 * const store: SyncStore = new MemoryStore();
 * const ticket = await store.intend({ resourceType: 'Patient', legacyId: 'p-1', target: 'medplum', unit: 'north', kind: 'upsert' }, 30_000);
 * await store.commit(ticket);
 * const [lease] = await store.claim('worker-1', 10, 30_000);
 * ```
 */
export interface SyncStore extends JobStore, HousekeepingStore {
  /**
   * Whether a lease from this store excludes workers in other processes too (a store that every
   * service instance shares). Only then may a mirror use a plain create after a search; other
   * stores get conditional creates, which the server dedupes.
   */
  readonly leasesAcrossProcesses: boolean;
  /** The link of a legacy record, if any. */
  getLink(resourceType: string, legacyId: string): Promise<Link | undefined>;
  /**
   * The links of many legacy records of one type at once, by legacy id (an id without a link
   * is absent from the map): one query where {@link getLink} would take one per record, as a
   * backfill's or a reconciliation's page needs.
   */
  getLinks(resourceType: string, legacyIds: readonly string[]): Promise<Map<string, Link>>;
  /** The link of a Medplum resource, if any. */
  getLinkByMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined>;
  /** Inserts or replaces the link of `(link.resourceType, link.legacyId)`. */
  saveLink(link: Link): Promise<void>;
  /** Removes the link of a legacy record; a no-op when there is none. */
  deleteLink(resourceType: string, legacyId: string): Promise<void>;
  /**
   * Links of one resource type in the store's legacy-id order, strictly after `after`, at most
   * `limit` (keyset paging: pass the last legacy id of a page to get the next). Change feeds
   * walk them to find Medplum resources deleted behind the writer's back.
   */
  listLinks(
    resourceType: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<Link[]>;

  /** Records a write's intent before the authority write; holds the entry for `holdMs`. */
  intend(intent: OutboxIntent, holdMs: number): Promise<OutboxTicket>;
  /**
   * Records many intents at once, each exactly as {@link intend} called for each in order would
   * (a record's pending entry is bumped; the same record twice is bumped twice), in one step:
   * all of them or, when it fails, none. A backfill queues a page this way: one statement
   * where `intend` would take one per record.
   *
   * @returns The tickets, in the intents' order.
   */
  intendMany(intents: readonly OutboxIntent[], holdMs: number): Promise<OutboxTicket[]>;
  /**
   * Ends an intent's hold after the authority write (only if no later intent took over). With
   * `lease`, also leases the entry to that worker at once (for an inline mirror) unless another
   * worker holds it; returns the lease when granted.
   */
  commit(
    ticket: OutboxTicket,
    lease?: { readonly owner: string; readonly leaseMs: number },
  ): Promise<Lease | undefined>;
  /**
   * Ends an intent whose authority write did not happen (refused, or never sent): releases its
   * hold without moving `seq`, and removes the entry when this intent created it and nothing
   * has happened to it since (no later intent, no lease), so nothing is owed for a write that
   * was not made. An entry an older write still owes stays.
   */
  withdraw(ticket: OutboxTicket): Promise<void>;
  /**
   * Leases up to `limit` due entries to `owner` for `leaseMs`: with `lane`, that lane's only;
   * without, entries of no lane and of lanes nobody holds (see {@link SyncStore.holdLane}).
   */
  claim(owner: string, limit: number, leaseMs: number, lane?: string): Promise<Lease[]>;
  /**
   * Holds an outbox lane for `owner` for `leaseMs` from now (renewing its hold): while any
   * holder's hold lasts, only claims naming the lane take its entries.
   */
  holdLane(lane: string, owner: string, leaseMs: number): Promise<void>;
  /** Gives `owner`'s hold of a lane up; once no hold is left, every drainer claims its entries. */
  releaseLane(lane: string, owner: string): Promise<void>;
  /** The entries queued in a lane (pending, waiting or leased). */
  laneCount(lane: string): Promise<number>;
  /**
   * Finishes a lease: removes the entry and, atomically, saves `link` (a `Link`), deletes it
   * (`null`) or leaves links alone (`undefined`).
   */
  complete(lease: Lease, link: Link | null | undefined): Promise<LeaseOutcome>;
  /**
   * Records, for a still-current lease, the content hash about to be written to the target.
   * A later attempt that finds the target holding it knows the write was its own (its answer
   * was lost, or the worker died) rather than a conflicting change. `false` when fenced.
   */
  markApplying(lease: Lease, hash: string): Promise<boolean>;
  /** Extends a still-current lease by `leaseMs` from now; `false` when it was taken over. */
  renew(lease: Lease, leaseMs: number): Promise<boolean>;
  /** Releases a lease after a transient failure; the entry is due again after `delayMs`. */
  retryLater(lease: Lease, error: OutboxError, delayMs: number): Promise<LeaseOutcome>;
  /**
   * Releases a lease whose mirror waits for a record it references: no attempt is counted (it
   * did not fail), `error` is kept as the entry's visible reason and `waitingFor` names the
   * dependency. The entry is due again after `delayMs`, or at once when the dependency is linked
   * or dead-lettered (now, or whenever that happens) — and, with `whilePending` (the mirror saw
   * the dependency's own entry pending), when that entry is gone already.
   */
  defer(
    lease: Lease,
    waitingFor: string,
    error: OutboxError,
    delayMs: number,
    whilePending?: boolean,
  ): Promise<LeaseOutcome>;
  /**
   * Moves a leased entry to the dead-letter queue with its reason. With `keepBase: false` the
   * letter keeps no copy of the record (the entry's `base`): a writer with
   * `baseSnapshot: 'hash-only'` stores no record content beyond what is in flight.
   */
  deadLetter(lease: Lease, error: OutboxError, options?: DeadLetterOptions): Promise<LeaseOutcome>;
  /** Whether a record has an outbox entry (pending or leased) for either side. */
  hasPending(resourceType: string, legacyId: string): Promise<boolean>;
  /** Outbox entries, oldest first. */
  listOutbox(options?: { readonly limit?: number | undefined }): Promise<OutboxEntry[]>;
  /** Counts of pending and leased entries and open dead letters, of one unit when given. */
  outboxCounts(options?: { readonly unit?: string | undefined }): Promise<OutboxCounts>;
  /**
   * The outbox and open dead letters counted per unit, resource type and target, with the
   * oldest entry of each line; ordered by unit, resource type, target.
   */
  outboxBacklog(): Promise<OutboxBacklog[]>;

  /** Dead letters, oldest first; open ones unless `status` says otherwise; every filter given must match. */
  listDeadLetters(options?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** The open dead letter of a record (either target), if any. */
  findDeadLetter(resourceType: string, legacyId: string): Promise<DeadLetter | undefined>;
  /** One dead letter by id, whatever its status; `undefined` when there is none. */
  getDeadLetter(id: string): Promise<DeadLetter | undefined>;
  /** Marks an open dead letter retried and queues its record again; `undefined` if not open. */
  retryDeadLetter(id: string): Promise<OutboxTicket | undefined>;
  /** Marks an open dead letter discarded, with the operator's note; `false` if not open. */
  discardDeadLetter(id: string, note: string): Promise<boolean>;
  /**
   * Marks an open dead letter resolved (an operator wrote the decided copy to both sides), with
   * the operator's note and what decided it; `false` if not open.
   */
  resolveDeadLetter(id: string, note: string, resolution: 'legacy' | 'medplum' | 'merged'): Promise<boolean>;
  /**
   * Opens a dead letter for a record none of whose entries is claimed: a decision only an
   * operator can make (a delete held for review by its mapping's policy). Nothing is queued and
   * no pending entry of the record is touched. While an open letter of the same record, target,
   * kind and reason name exists, that letter is returned and nothing is added, so one decision
   * seen twice (a feed's overlap, the existence check and a rest hook at once) is one letter.
   */
  openDeadLetter(letter: NewDeadLetter): Promise<DeadLetter>;

  /** Appends an event. */
  appendEvent(event: StoredEvent): Promise<void>;
  /** Events, newest first: of one type and of one unit when given. */
  listEvents(options?: EventFilter): Promise<RecordedEvent[]>;
  /**
   * How many events of a type carry each value of one `data` key (`''` for events without
   * it), of one unit and since an instant when given.
   */
  tallyEvents(options: EventTally): Promise<Record<string, number>>;

  /** How many events of a type were recorded, of one unit and since an instant when given. */
  countEvents(options: {
    readonly type: string;
    readonly unit?: string | undefined;
    readonly since?: string | undefined;
  }): Promise<number>;
  /** A feed's stored cursor. */
  getCursor(name: string): Promise<string | undefined>;
  /** Stores a feed's cursor. */
  setCursor(name: string, value: string): Promise<void>;

  /** Stores readiness samples (applied mirrors' lag, comparisons), from any instance. */
  recordSamples(samples: readonly ReadinessSample[]): Promise<void>;
  /** A unit's samples since an instant, every instance's. */
  readinessEvidence(options: { readonly unit: string; readonly since: string }): Promise<ReadinessEvidence>;

  /**
   * Stores the outbox's backlog now (per unit, and summed over every unit) as the sample of the
   * current step, unless one was stored in that step already (by any instance), and deletes
   * samples older than `keepMs`.
   */
  recordBacklog(recording: BacklogRecording): Promise<void>;
  /** The backlog samples since an instant, oldest first (the sum over units first in a step). */
  backlogHistory(options: { readonly since: string }): Promise<BacklogSample[]>;
  /** The applied mirrors' lag since an instant per step and unit, every instance's, oldest first. */
  lagHistory(options: { readonly since: string; readonly stepMs: number }): Promise<LagPoint[]>;

  /**
   * Takes or renews the lease of a feed for `owner` for `leaseMs`: granted when nobody holds it,
   * its lease expired, or `owner` holds it; at most one owner holds a feed at a time.
   */
  acquireFeedLease(name: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives up a feed's lease held by `owner` (a no-op otherwise). */
  releaseFeedLease(name: string, owner: string): Promise<void>;

  /** The stored cutover plan, `undefined` until one was seeded. */
  loadPlan(): Promise<StoredPlan | undefined>;
  /** The stored plan's revision, `undefined` until one was seeded: what instances poll. */
  planRevision(): Promise<number | undefined>;
  /**
   * Stores the default and every stage of `seed` the store does not hold yet (what is stored
   * wins), atomically; the revision moves when anything was added. Returns the stored plan.
   */
  seedPlan(seed: PlanSeed): Promise<StoredPlan>;
  /**
   * Compare-and-set of one stage: atomically, when the stored stage of the change's unit (and
   * resource type) is its `from`, stores `to`, bumps the revision and appends `event`; else
   * changes nothing. Either way returns the stored plan afterwards. Rejects before a seed.
   */
  changePlan(change: PlanChange, event: StoredEvent): Promise<PlanChangeOutcome>;
}

/**
 * How {@link SyncStore.deadLetter} keeps a letter.
 *
 * @example
 * ```ts
 * await store.deadLetter(lease, reason, { keepBase: false });
 * ```
 */
export interface DeadLetterOptions {
  /**
   * Keep the entry's `base` (the caller's copy of the record) in the letter, so a retry
   * mirrors the fields only that copy held.
   * @default true
   */
  readonly keepBase?: boolean | undefined;
}

/**
 * A dead letter opened without a claimed entry ({@link SyncStore.openDeadLetter}).
 *
 * @example
 * ```ts
 * const letter: NewDeadLetter = {
 *   resourceType: 'Patient', legacyId: '42', target: 'legacy', unit: 'north', kind: 'delete',
 *   reason: { name: 'DeleteReviewError', message: 'Patient/42 was deleted in Medplum, not the authority', side: 'medplum' },
 * };
 * ```
 */
export interface NewDeadLetter extends OutboxKey {
  /** The record's unit. */
  readonly unit: string;
  /** What a retry asks for when the other side has no copy (`delete`: remove the target's). */
  readonly kind: OutboxKind;
  /** Why it waits for an operator; no values. */
  readonly reason: OutboxError;
}

/**
 * A link would pair a Medplum resource with a second legacy record.
 *
 * @example
 * ```ts
 * if (err instanceof LinkConflictError) console.error(err.medplumId, err.existingLegacyId);
 * ```
 */
export class LinkConflictError extends DualWriteError {
  override readonly name = 'LinkConflictError' as const;
  readonly retryable = false as const;
  /** The resource type. */
  declare readonly resourceType: string;
  /** The Medplum id already linked. */
  declare readonly medplumId: string;
  /** The legacy id it is linked to. */
  readonly existingLegacyId: string;
  /** The legacy id that tried to claim it. */
  declare readonly legacyId: string;
  /**
   * @param resourceType - The resource type.
   * @param medplumId - The Medplum id already linked.
   * @param existingLegacyId - The legacy id it is linked to.
   * @param legacyId - The legacy id that tried to claim it.
   */
  constructor(resourceType: string, medplumId: string, existingLegacyId: string, legacyId: string) {
    super(
      `${resourceType}/${medplumId} is already linked to legacy id ${existingLegacyId}, not ${legacyId}`,
      {
        resourceType,
        medplumId,
        legacyId,
      },
    );
    this.existingLegacyId = existingLegacyId;
  }
}
