import { isDeepStrictEqual } from 'node:util';
import { namedRecord } from '../named-record.ts';
import type { Job, JobFilter, JobPageLease, JobPageResult, JobSpec, JobState, SeenCopy } from './job.ts';
import type { Side } from '../errors.ts';
import { MemoryJobs } from './memory-jobs.ts';
import type { PruneCounts, RetentionRules, UnitPause } from './housekeeping.ts';
import { MemoryHousekeeping } from './memory-housekeeping.ts';
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
  OutboxTicket,
} from './outbox.ts';
import { percentileOf, type ReadinessEvidence, type ReadinessSample } from './readiness-evidence.ts';
import {
  lagPoints,
  stepStart,
  type BacklogRecording,
  type BacklogSample,
  type LagPoint,
} from './operating-history.ts';
import {
  planOfRows,
  planRows,
  storedStageOf,
  type PlanChange,
  type PlanChangeOutcome,
  type PlanSeed,
  type StoredPlan,
} from './stored-plan.ts';
import { parseWaitingFor } from './waiting-for.ts';
import {
  LinkConflictError,
  type DeadLetterOptions,
  type NewDeadLetter,
  type EventFilter,
  type EventTally,
  type RecordedEvent,
  type StoredEvent,
  type SyncStore,
} from './sync-store.ts';

type MutableEntry = { -readonly [K in keyof OutboxEntry]: OutboxEntry[K] } & {
  token: string | undefined;
  /** Intents holding the entry until they commit. */
  holders: number;
};
type MutableLetter = { -readonly [K in keyof DeadLetter]: DeadLetter[K] };

/**
 * A {@link SyncStore} in process memory, for tests and single-process tools. Everything is lost
 * on exit, so it keeps no promise across a crash: production uses `PostgresStore`.
 *
 * @example
 * ```ts
 * const writer = new DualWriter({ store: new MemoryStore(), legacy, medplum, mappings, plan });
 * ```
 */
export class MemoryStore implements SyncStore {
  /** Leases live in this process only: other processes have their own memory. */
  readonly leasesAcrossProcesses = false;
  readonly #byLegacy = new Map<string, Link>();
  readonly #byMedplum = new Map<string, Link>();
  readonly #outbox = new Map<string, MutableEntry>();
  /** Each held lane's holders and when their holds expire (epoch ms). */
  readonly #laneHolders = new Map<string, Map<string, number>>();
  readonly #letters = new Map<string, MutableLetter>();
  /** The tokens of the leases that moved an entry to the letters (see `deadLetter`). */
  readonly #letteredBy = new Set<string>();
  readonly #backlog = new Map<string, BacklogSample>();
  readonly #events: RecordedEvent[] = [];
  readonly #cursors = new Map<string, string>();
  #plan: StoredPlan | undefined = undefined;
  readonly #samples: (ReadinessSample & { readonly at: number })[] = [];
  readonly #feedLeases = new Map<string, { readonly owner: string; readonly expiresAt: number }>();
  readonly #housekeeping = new MemoryHousekeeping({
    events: this.#events,
    letters: this.#letters,
    samples: this.#samples,
  });
  readonly #jobs = new MemoryJobs();
  #ids = 0;

  /** {@inheritDoc JobStore.createJob} */
  createJob(spec: JobSpec): Promise<Job> {
    return this.#jobs.createJob(spec);
  }

  /** {@inheritDoc JobStore.getJob} */
  getJob(id: string): Promise<Job | undefined> {
    return this.#jobs.getJob(id);
  }

  /** {@inheritDoc JobStore.listJobs} */
  listJobs(filter?: JobFilter): Promise<Job[]> {
    return this.#jobs.listJobs(filter);
  }

  /** {@inheritDoc JobStore.leaseJobPage} */
  leaseJobPage(jobId: string, owner: string, leaseMs: number): Promise<JobPageLease | undefined> {
    return this.#jobs.leaseJobPage(jobId, owner, leaseMs);
  }

  /** {@inheritDoc JobStore.endJobPage} */
  endJobPage(lease: JobPageLease, next: string | undefined): Promise<'done' | 'fenced'> {
    return this.#jobs.endJobPage(lease, next);
  }

  /** {@inheritDoc JobStore.renewJobPage} */
  renewJobPage(lease: JobPageLease, leaseMs: number): Promise<'done' | 'fenced'> {
    return this.#jobs.renewJobPage(lease, leaseMs);
  }

  /** {@inheritDoc JobStore.completeJobPage} */
  completeJobPage(lease: JobPageLease, result: JobPageResult): Promise<'done' | 'fenced'> {
    return this.#jobs.completeJobPage(lease, result);
  }

  /** {@inheritDoc JobStore.setJobState} */
  setJobState(
    id: string,
    state: JobState,
    options?: { readonly from?: readonly JobState[] | undefined; readonly reason?: string | undefined },
  ): Promise<Job | undefined> {
    return this.#jobs.setJobState(id, state, options);
  }

  /** {@inheritDoc JobStore.noteSeenCopies} */
  noteSeenCopies(jobId: string, copies: readonly SeenCopy[]): Promise<void> {
    return this.#jobs.noteSeenCopies(jobId, copies);
  }

  /** {@inheritDoc JobStore.takeSeenCopies} */
  takeSeenCopies(jobId: string, legacyIds: readonly string[]): Promise<Map<string, SeenCopy>> {
    return this.#jobs.takeSeenCopies(jobId, legacyIds);
  }

  /** {@inheritDoc JobStore.listSeenCopies} */
  listSeenCopies(
    jobId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<SeenCopy[]> {
    return this.#jobs.listSeenCopies(jobId, options);
  }

  /** {@inheritDoc SyncStore.getLink} */
  getLink(resourceType: string, legacyId: string): Promise<Link | undefined> {
    return Promise.resolve(this.#byLegacy.get(`${resourceType}/${legacyId}`));
  }

  /** {@inheritDoc SyncStore.getLinks} */
  getLinks(resourceType: string, legacyIds: readonly string[]): Promise<Map<string, Link>> {
    const found = new Map<string, Link>();
    for (const legacyId of legacyIds) {
      const link = this.#byLegacy.get(`${resourceType}/${legacyId}`);
      if (link !== undefined) found.set(legacyId, link);
    }
    return Promise.resolve(found);
  }

  /** {@inheritDoc SyncStore.getLinkByMedplumId} */
  getLinkByMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined> {
    return Promise.resolve(this.#byMedplum.get(`${resourceType}/${medplumId}`));
  }

  /** {@inheritDoc SyncStore.saveLink} */
  saveLink(link: Link): Promise<void> {
    try {
      this.#saveLink(link);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** {@inheritDoc SyncStore.deleteLink} */
  deleteLink(resourceType: string, legacyId: string): Promise<void> {
    this.#deleteLink(resourceType, legacyId);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.listLinks} */
  listLinks(
    resourceType: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<Link[]> {
    const { after, limit } = options;
    const links = [...this.#byLegacy.values()]
      .filter((link) => link.resourceType === resourceType && (after === undefined || link.legacyId > after))
      .sort((a, b) => (a.legacyId < b.legacyId ? -1 : a.legacyId > b.legacyId ? 1 : 0));
    return Promise.resolve(links.slice(0, limit).map((link) => ({ ...link })));
  }

  /** {@inheritDoc SyncStore.intend} */
  intend(intent: OutboxIntent, holdMs: number): Promise<OutboxTicket> {
    const now = Date.now();
    const key = keyOf(intent);
    const holdUntil = holdMs > 0 ? new Date(now + holdMs).toISOString() : undefined;
    const held = holdMs > 0;
    const existing = this.#outbox.get(key);
    if (existing !== undefined) {
      // As PostgresStore: holds add up, and an intent without one never releases another's.
      const current =
        existing.holdUntil !== undefined && Date.parse(existing.holdUntil) > now
          ? existing.holdUntil
          : undefined;
      existing.seq += 1;
      existing.unit = intent.unit;
      existing.kind = intent.kind;
      existing.base = mergedBase(existing.base, intent);
      existing.traceParent = intent.traceParent ?? existing.traceParent;
      // As PostgresStore: a laned intent keeps the entry's lane, one without takes it out.
      if (intent.lane === undefined) delete existing.lane;
      existing.holders = (current === undefined ? 0 : existing.holders) + (held ? 1 : 0);
      existing.holdUntil =
        current === undefined || (holdUntil !== undefined && Date.parse(holdUntil) > Date.parse(current))
          ? holdUntil
          : current;
      return Promise.resolve({ id: existing.id, seq: existing.seq, held, intent });
    }
    const entry: MutableEntry = {
      id: this.#nextId(),
      resourceType: intent.resourceType,
      legacyId: intent.legacyId,
      target: intent.target,
      unit: intent.unit,
      kind: intent.kind,
      base: intent.base,
      seq: 1,
      attempts: 0,
      nextAttemptAt: new Date(now).toISOString(),
      holdUntil,
      holders: held ? 1 : 0,
      lastError: undefined,
      leaseOwner: undefined,
      leaseExpiresAt: undefined,
      createdAt: new Date(now).toISOString(),
      applyingHashes: [],
      waitingFor: undefined,
      traceParent: intent.traceParent,
      ...(intent.lane === undefined ? {} : { lane: intent.lane }),
      token: undefined,
    };
    this.#outbox.set(key, entry);
    return Promise.resolve({ id: entry.id, seq: entry.seq, held, intent });
  }

  /** {@inheritDoc SyncStore.intendMany} */
  intendMany(intents: readonly OutboxIntent[], holdMs: number): Promise<OutboxTicket[]> {
    // Each `intend` does its work when called: called back to back, with no await between
    // them, no other call of the store runs in between.
    return Promise.all(intents.map((intent) => this.intend(intent, holdMs)));
  }

  /** {@inheritDoc SyncStore.commit} */
  commit(
    ticket: OutboxTicket,
    lease?: { readonly owner: string; readonly leaseMs: number },
  ): Promise<Lease | undefined> {
    const entry = this.#entryById(ticket.id);
    if (entry === undefined) {
      // Applied and completed while the write still ran (its hold expired): queue it again.
      if (ticket.intent === undefined) return Promise.resolve(undefined);
      return this.intend(ticket.intent, 0).then(() => undefined);
    }
    const now = Date.now();
    const held = ticket.held === true;
    const others = entry.holders - (held ? 1 : 0);
    const stillHeld = others > 0 && entry.holdUntil !== undefined && Date.parse(entry.holdUntil) > now;
    entry.seq += 1;
    if (held) {
      entry.holders = Math.max(entry.holders - 1, 0);
      if (entry.holders === 0) entry.holdUntil = undefined;
    }
    if (
      lease === undefined ||
      stillHeld ||
      this.#leased(entry, now) ||
      this.#otherLeased(entry, now) ||
      this.#housekeeping.paused(entry.unit)
    )
      return Promise.resolve(undefined);
    return Promise.resolve({
      ...this.#lease(entry, lease.owner, lease.leaseMs, now),
      link: this.#linkOf(entry),
    });
  }

  /** {@inheritDoc SyncStore.withdraw} */
  withdraw(ticket: OutboxTicket): Promise<void> {
    const entry = this.#entryById(ticket.id);
    if (entry === undefined) return Promise.resolve();
    const now = Date.now();
    // seq 1 is the entry's first intent: this one created it, and no other came since.
    if (ticket.seq === 1 && entry.seq === 1 && !this.#leased(entry, now)) {
      this.#outbox.delete(keyOf(entry));
      return Promise.resolve();
    }
    if (ticket.held === true) {
      entry.holders = Math.max(entry.holders - 1, 0);
      if (entry.holders === 0) entry.holdUntil = undefined;
    }
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.claim} */
  claim(owner: string, limit: number, leaseMs: number, lane?: string): Promise<Lease[]> {
    const now = Date.now();
    const records = new Set<string>();
    const due = [...this.#outbox.values()]
      .filter(
        (entry) =>
          this.#inLane(entry, lane, now) &&
          Date.parse(entry.nextAttemptAt) <= now &&
          (entry.holdUntil === undefined || Date.parse(entry.holdUntil) <= now) &&
          !this.#leased(entry, now) &&
          !this.#otherLeased(entry, now) &&
          !this.#housekeeping.paused(entry.unit),
      )
      .sort(
        (a, b) => Date.parse(a.nextAttemptAt) - Date.parse(b.nextAttemptAt) || Number(a.id) - Number(b.id),
      )
      // One entry per record: its two directions must not run at once.
      .filter((entry) => {
        const record = `${entry.resourceType}/${entry.legacyId}`;
        if (records.has(record)) return false;
        records.add(record);
        return true;
      })
      .slice(0, limit);
    return Promise.resolve(
      due.map((entry) => ({
        ...this.#lease(entry, owner, leaseMs, now),
        link: this.#linkOf(entry),
      })),
    );
  }

  /** {@inheritDoc SyncStore.holdLane} */
  holdLane(lane: string, owner: string, leaseMs: number): Promise<void> {
    const holders = this.#laneHolders.get(lane) ?? new Map<string, number>();
    holders.set(owner, Date.now() + leaseMs);
    this.#laneHolders.set(lane, holders);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.releaseLane} */
  releaseLane(lane: string, owner: string): Promise<void> {
    const holders = this.#laneHolders.get(lane);
    holders?.delete(owner);
    if (holders?.size === 0) this.#laneHolders.delete(lane);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.laneCount} */
  laneCount(lane: string): Promise<number> {
    return Promise.resolve([...this.#outbox.values()].filter((entry) => entry.lane === lane).length);
  }

  /** Whether a claim of `lane` (or of no lane) may take the entry, as PostgresStore decides. */
  #inLane(entry: MutableEntry, lane: string | undefined, now: number): boolean {
    if (lane !== undefined) return entry.lane === lane;
    if (entry.lane === undefined) return true;
    const holders = this.#laneHolders.get(entry.lane);
    return holders === undefined || [...holders.values()].every((expiresAt) => expiresAt <= now);
  }

  /** {@inheritDoc SyncStore.complete} */
  complete(lease: Lease, link: Link | null | undefined): Promise<LeaseOutcome> {
    const relink = (entry: MutableEntry): void => {
      if (link === null) this.#deleteLink(entry.resourceType, entry.legacyId);
      else if (link !== undefined) this.#saveLink(link);
    };
    const current = this.#current(lease);
    if (current !== undefined && current.seq !== lease.entry.seq) {
      // Requeued: a newer write is owed, but this mirror's writes happened. Its link records
      // what both sides held then, for the next attempt to compare the target with (without
      // it, that attempt would take a newer write on the target for its own orphan). A link
      // another record holds is left for that attempt to run into.
      try {
        relink(current);
      } catch (err) {
        if (!(err instanceof LinkConflictError)) throw err;
      }
    }
    return this.#finish(lease, (entry) => {
      relink(entry);
      this.#outbox.delete(keyOf(entry));
    });
  }

  /** {@inheritDoc SyncStore.markApplying} */
  markApplying(lease: Lease, hash: string): Promise<boolean> {
    const entry = this.#current(lease);
    if (entry === undefined) return Promise.resolve(false);
    entry.applyingHashes = [hash, ...entry.applyingHashes].slice(0, 8);
    return Promise.resolve(true);
  }

  /** {@inheritDoc SyncStore.renew} */
  renew(lease: Lease, leaseMs: number): Promise<boolean> {
    const entry = this.#current(lease);
    if (entry === undefined) return Promise.resolve(false);
    entry.leaseExpiresAt = new Date(Date.now() + leaseMs).toISOString();
    return Promise.resolve(true);
  }

  /** {@inheritDoc SyncStore.retryLater} */
  retryLater(lease: Lease, error: OutboxError, delayMs: number): Promise<LeaseOutcome> {
    const entry = this.#current(lease);
    if (entry === undefined) return Promise.resolve('fenced');
    entry.attempts += 1;
    entry.lastError = error;
    entry.waitingFor = undefined;
    entry.nextAttemptAt = new Date(Date.now() + delayMs).toISOString();
    this.#release(entry);
    return Promise.resolve(entry.seq === lease.entry.seq ? 'done' : 'requeued');
  }

  /** {@inheritDoc SyncStore.defer} */
  defer(
    lease: Lease,
    waitingFor: string,
    error: OutboxError,
    delayMs: number,
    whilePending = false,
  ): Promise<LeaseOutcome> {
    const entry = this.#current(lease);
    if (entry === undefined) return Promise.resolve('fenced');
    const dependency = parseWaitingFor(waitingFor);
    const { resourceType, legacyId } = dependency;
    const due =
      legacyId === undefined
        ? this.#byMedplum.has(`${resourceType}/${dependency.medplumId}`)
        : this.#byLegacy.has(`${resourceType}/${legacyId}`) ||
          // Seen pending, finished since (dead-lettered, or with nothing to mirror): look again.
          (whilePending &&
            !(['legacy', 'medplum'] as const).some((target) =>
              this.#outbox.has(keyOf({ target, resourceType, legacyId })),
            ));
    entry.lastError = error;
    entry.waitingFor = waitingFor;
    entry.nextAttemptAt = new Date(Date.now() + (due ? 0 : delayMs)).toISOString();
    this.#release(entry);
    return Promise.resolve(entry.seq === lease.entry.seq ? 'done' : 'requeued');
  }

  /** {@inheritDoc SyncStore.deadLetter} */
  deadLetter(lease: Lease, error: OutboxError, options: DeadLetterOptions = {}): Promise<LeaseOutcome> {
    // A repeat by the lease that moved the entry (as after a lost answer) finds its own letter.
    if (this.#current(lease) === undefined && this.#letteredBy.has(lease.token))
      return Promise.resolve('done');
    return this.#finish(lease, (entry) => {
      this.#outbox.delete(keyOf(entry));
      this.#letteredBy.add(lease.token);
      this.#wake(`${entry.resourceType}/${entry.legacyId}`);
      // One open letter per record and failure: a repeat counts on it.
      const same = [...this.#letters.values()].find(
        (held) =>
          held.status === 'open' &&
          held.resourceType === entry.resourceType &&
          held.legacyId === entry.legacyId &&
          held.target === entry.target &&
          held.kind === entry.kind &&
          isDeepStrictEqual(withoutUndefined(held.reason), withoutUndefined(error)),
      );
      if (same !== undefined) {
        same.repeats = (same.repeats ?? 0) + 1;
        same.lastFailedAt = new Date().toISOString();
        same.unit = entry.unit;
        same.base = options.keepBase === false ? undefined : entry.base;
        same.attempts = entry.attempts + 1;
        return;
      }
      const id = this.#nextId();
      this.#letters.set(id, {
        id,
        resourceType: entry.resourceType,
        legacyId: entry.legacyId,
        target: entry.target,
        unit: entry.unit,
        kind: entry.kind,
        base: options.keepBase === false ? undefined : entry.base,
        attempts: entry.attempts + 1,
        reason: error,
        failedAt: new Date().toISOString(),
        repeats: 0,
        lastFailedAt: undefined,
        status: 'open',
        resolvedAt: undefined,
        note: undefined,
      });
    });
  }

  /** {@inheritDoc SyncStore.hasPending} */
  hasPending(resourceType: string, legacyId: string): Promise<boolean> {
    return Promise.resolve(
      (['legacy', 'medplum'] as const).some((target) =>
        this.#outbox.has(keyOf({ target, resourceType, legacyId })),
      ),
    );
  }

  /** {@inheritDoc SyncStore.listOutbox} */
  listOutbox(options: { readonly limit?: number | undefined } = {}): Promise<OutboxEntry[]> {
    const entries = [...this.#outbox.values()].sort((a, b) => Number(a.id) - Number(b.id));
    return Promise.resolve(
      entries
        .slice(0, options.limit ?? entries.length)
        .map(({ token: _token, holders: _holders, ...entry }) => ({ ...entry })),
    );
  }

  /** {@inheritDoc SyncStore.outboxCounts} */
  outboxCounts(options: { readonly unit?: string | undefined } = {}): Promise<OutboxCounts> {
    const now = Date.now();
    const mine = (entry: { readonly unit: string }) =>
      options.unit === undefined || entry.unit === options.unit;
    const entries = [...this.#outbox.values()].filter(mine);
    const leased = entries.filter((entry) => this.#leased(entry, now)).length;
    const paused = entries.filter(
      (entry) => !this.#leased(entry, now) && this.#housekeeping.paused(entry.unit),
    ).length;
    const waiting = entries.filter(
      (entry) =>
        !this.#leased(entry, now) &&
        !this.#housekeeping.paused(entry.unit) &&
        entry.waitingFor !== undefined &&
        Date.parse(entry.nextAttemptAt) > now,
    ).length;
    const dead = [...this.#letters.values()].filter(
      (letter) => letter.status === 'open' && mine(letter),
    ).length;
    const counts = { pending: entries.length - leased - waiting - paused, leased, dead };
    return Promise.resolve({
      ...counts,
      ...(waiting > 0 ? { waiting } : {}),
      ...(paused > 0 ? { paused } : {}),
    });
  }

  /** {@inheritDoc SyncStore.outboxBacklog} */
  outboxBacklog(): Promise<OutboxBacklog[]> {
    const now = Date.now();
    const lines = new Map<string, { -readonly [K in keyof OutboxBacklog]: OutboxBacklog[K] }>();
    const lineOf = (key: { readonly unit: string; readonly resourceType: string; readonly target: Side }) => {
      const id = JSON.stringify([key.unit, key.resourceType, key.target]);
      let line = lines.get(id);
      if (line === undefined) {
        line = {
          unit: key.unit,
          resourceType: key.resourceType,
          target: key.target,
          pending: 0,
          waiting: 0,
          leased: 0,
          dead: 0,
          oldestAt: undefined,
        };
        lines.set(id, line);
      }
      return line;
    };
    for (const entry of this.#outbox.values()) {
      const line = lineOf(entry);
      if (this.#leased(entry, now)) line.leased += 1;
      else if (entry.waitingFor !== undefined && Date.parse(entry.nextAttemptAt) > now) line.waiting += 1;
      else line.pending += 1;
      if (line.oldestAt === undefined || entry.createdAt < line.oldestAt) line.oldestAt = entry.createdAt;
    }
    for (const letter of this.#letters.values()) if (letter.status === 'open') lineOf(letter).dead += 1;
    const order = (line: OutboxBacklog) => [line.unit, line.resourceType, line.target].join('\u0000');
    return Promise.resolve(
      [...lines.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)),
    );
  }

  /** {@inheritDoc SyncStore.listDeadLetters} */
  listDeadLetters(options: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const status = options.status ?? 'open';
    const letters = [...this.#letters.values()]
      .filter(
        (letter) =>
          (status === 'all' || letter.status === status) &&
          (options.unit === undefined || letter.unit === options.unit) &&
          (options.resourceType === undefined || letter.resourceType === options.resourceType) &&
          (options.target === undefined || letter.target === options.target) &&
          (options.reason === undefined || letter.reason.name === options.reason),
      )
      .sort((a, b) => Number(a.id) - Number(b.id));
    return Promise.resolve(
      letters.slice(0, options.limit ?? letters.length).map((letter) => ({ ...letter })),
    );
  }

  /** {@inheritDoc SyncStore.findDeadLetter} */
  findDeadLetter(resourceType: string, legacyId: string): Promise<DeadLetter | undefined> {
    const open = [...this.#letters.values()].filter(
      (letter) =>
        letter.status === 'open' && letter.resourceType === resourceType && letter.legacyId === legacyId,
    );
    const letter = open.at(-1);
    return Promise.resolve(letter === undefined ? undefined : { ...letter });
  }

  /** {@inheritDoc SyncStore.getDeadLetter} */
  getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    const letter = this.#letters.get(id);
    return Promise.resolve(letter === undefined ? undefined : { ...letter });
  }

  /** {@inheritDoc SyncStore.retryDeadLetter} */
  async retryDeadLetter(id: string): Promise<OutboxTicket | undefined> {
    const letter = this.#letters.get(id);
    if (letter?.status !== 'open') return undefined;
    letter.status = 'retried';
    letter.resolvedAt = new Date().toISOString();
    const ticket = await this.intend(letter, 0);
    await this.commit(ticket);
    return ticket;
  }

  /** {@inheritDoc SyncStore.openDeadLetter} */
  openDeadLetter(letter: NewDeadLetter): Promise<DeadLetter> {
    const open = [...this.#letters.values()].find(
      (held) =>
        held.status === 'open' &&
        held.resourceType === letter.resourceType &&
        held.legacyId === letter.legacyId &&
        held.target === letter.target &&
        held.kind === letter.kind &&
        held.reason.name === letter.reason.name,
    );
    if (open !== undefined) return Promise.resolve({ ...open });
    const id = this.#nextId();
    const opened: MutableLetter = {
      id,
      resourceType: letter.resourceType,
      legacyId: letter.legacyId,
      target: letter.target,
      unit: letter.unit,
      kind: letter.kind,
      base: undefined,
      attempts: 0,
      reason: letter.reason,
      failedAt: new Date().toISOString(),
      repeats: 0,
      lastFailedAt: undefined,
      status: 'open',
      resolvedAt: undefined,
      note: undefined,
    };
    this.#letters.set(id, opened);
    return Promise.resolve({ ...opened });
  }

  /** {@inheritDoc SyncStore.discardDeadLetter} */
  discardDeadLetter(id: string, note: string): Promise<boolean> {
    const letter = this.#letters.get(id);
    if (letter?.status !== 'open') return Promise.resolve(false);
    letter.status = 'discarded';
    letter.resolvedAt = new Date().toISOString();
    letter.note = note;
    return Promise.resolve(true);
  }

  /** {@inheritDoc SyncStore.resolveDeadLetter} */
  resolveDeadLetter(id: string, note: string, resolution: 'legacy' | 'medplum' | 'merged'): Promise<boolean> {
    const letter = this.#letters.get(id);
    if (letter?.status !== 'open') return Promise.resolve(false);
    letter.status = 'resolved';
    letter.resolvedAt = new Date().toISOString();
    letter.note = note;
    letter.resolution = resolution;
    return Promise.resolve(true);
  }

  /** {@inheritDoc SyncStore.appendEvent} */
  appendEvent(event: StoredEvent): Promise<void> {
    this.#events.push({ ...event, id: this.#nextId(), at: new Date().toISOString() });
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.listEvents} */
  listEvents(options: EventFilter = {}): Promise<RecordedEvent[]> {
    const since = options.since === undefined ? undefined : Date.parse(options.since);
    const data = Object.entries(options.data ?? {});
    const events = this.#events
      .filter(
        (event) =>
          (options.type === undefined || event.type === options.type) &&
          (options.unit === undefined || event.unit === options.unit) &&
          (since === undefined || Date.parse(event.at) >= since) &&
          data.every(([key, value]) => event.data?.[key] === value),
      )
      .reverse();
    return Promise.resolve(events.slice(0, options.limit ?? events.length));
  }

  /** {@inheritDoc SyncStore.countEvents} */
  countEvents(options: {
    readonly type: string;
    readonly unit?: string | undefined;
    readonly since?: string | undefined;
  }): Promise<number> {
    const since = options.since === undefined ? undefined : Date.parse(options.since);
    return Promise.resolve(
      this.#events.filter(
        (event) =>
          event.type === options.type &&
          (options.unit === undefined || event.unit === options.unit) &&
          (since === undefined || Date.parse(event.at) >= since),
      ).length,
    );
  }

  /** {@inheritDoc SyncStore.tallyEvents} */
  tallyEvents(options: EventTally): Promise<Record<string, number>> {
    // Keyed by what events hold (a resolver's or a reason's name): `__proto__` is a key too.
    const tally = namedRecord<number>();
    for (const event of this.#events) {
      if (event.type !== options.type || (options.unit !== undefined && event.unit !== options.unit))
        continue;
      if (options.since !== undefined && Date.parse(event.at) < Date.parse(options.since)) continue;
      const value = event.data?.[options.key];
      const name =
        typeof value === 'string'
          ? value
          : value === undefined || value === null
            ? ''
            : JSON.stringify(value);
      tally[name] = (tally[name] ?? 0) + 1;
    }
    return Promise.resolve(tally);
  }

  /** {@inheritDoc SyncStore.getCursor} */
  getCursor(name: string): Promise<string | undefined> {
    return Promise.resolve(this.#cursors.get(name));
  }

  /** {@inheritDoc SyncStore.setCursor} */
  setCursor(name: string, value: string): Promise<void> {
    this.#cursors.set(name, value);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.recordSamples} */
  recordSamples(samples: readonly ReadinessSample[]): Promise<void> {
    const at = Date.now();
    for (const sample of samples) this.#samples.push({ ...sample, at });
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.readinessEvidence} */
  readinessEvidence(options: { readonly unit: string; readonly since: string }): Promise<ReadinessEvidence> {
    const since = Date.parse(options.since);
    const ofUnit = this.#samples.filter((sample) => sample.unit === options.unit && sample.at >= since);
    const lags = ofUnit
      .filter((sample) => sample.kind === 'mirror-lag')
      .map((sample) => sample.value)
      .sort((a, b) => a - b);
    return Promise.resolve({
      mirrorLagMs: { p50: percentileOf(lags, 0.5), p95: percentileOf(lags, 0.95), samples: lags.length },
      comparisons: ofUnit.filter((sample) => sample.kind === 'comparison').length,
    });
  }

  /** {@inheritDoc SyncStore.recordBacklog} */
  async recordBacklog(recording: BacklogRecording): Promise<void> {
    const now = Date.now();
    const at = new Date(stepStart(now, recording.stepMs)).toISOString();
    for (const [key, sample] of this.#backlog)
      if (Date.parse(sample.at) < now - recording.keepMs) this.#backlog.delete(key);
    const units = new Set<string>();
    for (const entry of this.#outbox.values()) units.add(entry.unit);
    for (const letter of this.#letters.values()) if (letter.status === 'open') units.add(letter.unit);
    for (const unit of [undefined, ...[...units].sort()]) {
      const key = `${at}\u0000${unit ?? ''}`;
      if (this.#backlog.has(key)) continue;
      const counts = await this.outboxCounts({ unit });
      this.#backlog.set(key, {
        at,
        unit,
        pending: counts.pending + (counts.waiting ?? 0),
        leased: counts.leased,
        dead: counts.dead,
      });
    }
  }

  /** {@inheritDoc SyncStore.backlogHistory} */
  backlogHistory(options: { readonly since: string }): Promise<BacklogSample[]> {
    const since = Date.parse(options.since);
    return Promise.resolve(
      [...this.#backlog.entries()]
        .filter(([, sample]) => Date.parse(sample.at) >= since)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([, sample]) => ({ ...sample })),
    );
  }

  /** {@inheritDoc SyncStore.lagHistory} */
  lagHistory(options: { readonly since: string; readonly stepMs: number }): Promise<LagPoint[]> {
    const since = Date.parse(options.since);
    const lags = this.#samples.filter((sample) => sample.kind === 'mirror-lag' && sample.at >= since);
    return Promise.resolve(lagPoints(lags, options.stepMs));
  }

  /** {@inheritDoc HousekeepingStore.pauseUnit} */
  pauseUnit(
    unit: string,
    note?: { readonly by?: string | undefined; readonly reason?: string | undefined },
  ): Promise<UnitPause> {
    return Promise.resolve(this.#housekeeping.pauseUnit(unit, note));
  }

  /** {@inheritDoc HousekeepingStore.resumeUnit} */
  resumeUnit(unit: string): Promise<boolean> {
    return Promise.resolve(this.#housekeeping.resumeUnit(unit));
  }

  /** {@inheritDoc HousekeepingStore.unitPauses} */
  unitPauses(): Promise<UnitPause[]> {
    return Promise.resolve(this.#housekeeping.unitPauses());
  }

  /** {@inheritDoc HousekeepingStore.prune} */
  prune(rules: RetentionRules, limit: number): Promise<PruneCounts> {
    return Promise.resolve(this.#housekeeping.prune(rules, limit));
  }

  /** {@inheritDoc SyncStore.acquireFeedLease} */
  acquireFeedLease(name: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    const held = this.#feedLeases.get(name);
    if (held !== undefined && held.owner !== owner && held.expiresAt > now) return Promise.resolve(false);
    this.#feedLeases.set(name, { owner, expiresAt: now + leaseMs });
    return Promise.resolve(true);
  }

  /** {@inheritDoc SyncStore.releaseFeedLease} */
  releaseFeedLease(name: string, owner: string): Promise<void> {
    if (this.#feedLeases.get(name)?.owner === owner) this.#feedLeases.delete(name);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.loadPlan} */
  loadPlan(): Promise<StoredPlan | undefined> {
    return Promise.resolve(this.#plan === undefined ? undefined : structuredClone(this.#plan));
  }

  /** {@inheritDoc SyncStore.planRevision} */
  planRevision(): Promise<number | undefined> {
    return Promise.resolve(this.#plan?.revision);
  }

  /** {@inheritDoc SyncStore.seedPlan} */
  seedPlan(seed: PlanSeed): Promise<StoredPlan> {
    const stored = this.#plan ?? { revision: 0, default: seed.default, units: {} };
    const rows = planRows(stored);
    const held = new Set(rows.map((row) => `${row.unit}\u0000${row.resourceType}`));
    const added = planRows(seed).filter((row) => !held.has(`${row.unit}\u0000${row.resourceType}`));
    if (this.#plan === undefined || added.length > 0)
      this.#plan = planOfRows(stored.revision + 1, stored.default, [...rows, ...added]);
    return this.loadPlan() as Promise<StoredPlan>;
  }

  /** {@inheritDoc SyncStore.changePlan} */
  changePlan(change: PlanChange, event: StoredEvent): Promise<PlanChangeOutcome> {
    const before = this.#plan;
    if (before === undefined) return Promise.reject(new Error('the plan is not stored yet: seed it first'));
    if (storedStageOf(before, change.unit, change.resourceType) !== change.from)
      return Promise.resolve({ applied: false, plan: structuredClone(before) });
    const resourceType = change.resourceType ?? '';
    const rows = planRows(before).filter(
      (row) => row.unit !== change.unit || row.resourceType !== resourceType,
    );
    this.#plan = planOfRows(before.revision + 1, before.default, [
      ...rows,
      { unit: change.unit, resourceType, stage: change.to },
    ]);
    void this.appendEvent(event);
    return Promise.resolve({ applied: true, plan: structuredClone(this.#plan) });
  }

  /** Whether the record's entry towards the other side is leased now. */
  #otherLeased(entry: MutableEntry, now: number): boolean {
    const other = this.#outbox.get(
      keyOf({ ...entry, target: entry.target === 'medplum' ? 'legacy' : 'medplum' }),
    );
    return other !== undefined && this.#leased(other, now);
  }

  /** A copy of an entry's record's link, `null` when it has none. */
  #linkOf(entry: { readonly resourceType: string; readonly legacyId: string }): Link | null {
    const link = this.#byLegacy.get(`${entry.resourceType}/${entry.legacyId}`);
    return link === undefined ? null : { ...link };
  }

  #saveLink(link: Link): void {
    const owner = this.#byMedplum.get(`${link.resourceType}/${link.medplumId}`);
    if (owner !== undefined && owner.legacyId !== link.legacyId) {
      throw new LinkConflictError(link.resourceType, link.medplumId, owner.legacyId, link.legacyId);
    }
    const previous = this.#byLegacy.get(`${link.resourceType}/${link.legacyId}`);
    if (previous !== undefined) this.#byMedplum.delete(`${previous.resourceType}/${previous.medplumId}`);
    const copy = { ...link };
    this.#byLegacy.set(`${link.resourceType}/${link.legacyId}`, copy);
    this.#byMedplum.set(`${link.resourceType}/${link.medplumId}`, copy);
    if (previous === undefined) {
      this.#wake(`${link.resourceType}/${link.legacyId}`);
      this.#wake(`${link.resourceType}#${link.medplumId}`);
    }
  }

  /** Makes the entries waiting for a record due now (as the journal's triggers do). */
  #wake(waitingFor: string): void {
    const now = Date.now();
    for (const entry of this.#outbox.values()) {
      if (entry.waitingFor === waitingFor && Date.parse(entry.nextAttemptAt) > now)
        entry.nextAttemptAt = new Date(now).toISOString();
    }
  }

  #deleteLink(resourceType: string, legacyId: string): void {
    const previous = this.#byLegacy.get(`${resourceType}/${legacyId}`);
    if (previous === undefined) return;
    this.#byLegacy.delete(`${resourceType}/${legacyId}`);
    this.#byMedplum.delete(`${resourceType}/${previous.medplumId}`);
  }

  #nextId(): string {
    this.#ids += 1;
    return String(this.#ids);
  }

  #entryById(id: string): MutableEntry | undefined {
    for (const entry of this.#outbox.values()) if (entry.id === id) return entry;
    return undefined;
  }

  #leased(entry: MutableEntry, now: number): boolean {
    return entry.leaseExpiresAt !== undefined && Date.parse(entry.leaseExpiresAt) > now;
  }

  #lease(entry: MutableEntry, owner: string, leaseMs: number, now: number): Lease {
    entry.token = this.#nextId();
    entry.leaseOwner = owner;
    entry.leaseExpiresAt = new Date(now + leaseMs).toISOString();
    const { token: _token, holders: _holders, ...snapshot } = entry;
    return { entry: { ...snapshot }, token: entry.token, owner };
  }

  #release(entry: MutableEntry): void {
    entry.token = undefined;
    entry.leaseOwner = undefined;
    entry.leaseExpiresAt = undefined;
  }

  /** The entry a lease is for, if the lease is still the current one. */
  #current(lease: Lease): MutableEntry | undefined {
    const entry = this.#outbox.get(keyOf(lease.entry));
    // The token alone fences: a lease that expired unclaimed may still finish its work, since a
    // re-claim would have issued a new token.
    return entry?.token === lease.token ? entry : undefined;
  }

  /** Runs `done` when the lease is current and its seq unchanged; requeues on a newer seq. */
  #finish(lease: Lease, done: (entry: MutableEntry) => void): Promise<LeaseOutcome> {
    const entry = this.#current(lease);
    if (entry === undefined) return Promise.resolve('fenced');
    if (entry.seq !== lease.entry.seq) {
      this.#release(entry);
      return Promise.resolve('requeued');
    }
    try {
      done(entry);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return Promise.resolve('done');
  }
}

function keyOf(key: OutboxKey): string {
  return `${key.target}:${key.resourceType}/${key.legacyId}`;
}

/** A pending entry's base once a newer intent merges into it, as PostgresStore merges it. */
function mergedBase(pending: unknown, intent: OutboxIntent): unknown {
  return intent.kind === 'delete' || intent.base !== undefined ? intent.base : pending;
}

/** An object without its `undefined` fields, as a JSON column keeps it. */
function withoutUndefined(value: object): object {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined));
}
