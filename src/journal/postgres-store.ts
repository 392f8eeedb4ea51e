import { namedRecord } from '../named-record.ts';
import type { Job, JobFilter, JobPageLease, JobPageResult, JobSpec, JobState, SeenCopy } from './job.ts';
import * as jobs from './postgres-jobs.ts';
import { sqlClientFromPglite } from '../sql/pglite-client.ts';
import type { SqlClient, SqlQueryable } from '../sql/sql-client.ts';
import type { WriteStatement } from '../sql/write-statement.ts';
import type { Link } from './link.ts';
import { migrate } from './migrations/migrate.ts';
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
  OutboxTicket,
} from './outbox.ts';
import { CompletionQueue } from './completion-queue.ts';
import { MarkQueue } from './mark-queue.ts';
import { journalFailure, typedJournal } from './journal-failure.ts';
import { completeLease, completeLeases, tryCompleteLease } from './postgres-completion.ts';
import * as letters from './postgres-dead-letters.ts';
import * as links from './postgres-links.ts';
import * as outbox from './postgres-outbox.ts';
import * as plans from './postgres-plan.ts';
import * as evidence from './postgres-evidence.ts';
import * as feedLeases from './postgres-feed-leases.ts';
import * as lanes from './postgres-lanes.ts';
import * as housekeeping from './postgres-housekeeping.ts';
import type { PruneCounts, RetentionRules, UnitPause } from './housekeeping.ts';
import * as history from './postgres-history.ts';
import type { BacklogRecording, BacklogSample, LagPoint } from './operating-history.ts';
import type { ReadinessEvidence, ReadinessSample } from './readiness-evidence.ts';
import type { PlanChange, PlanChangeOutcome, PlanSeed, StoredPlan } from './stored-plan.ts';
import { openPglite } from './pglite-loader.ts';
import {
  validateEmbeddedOptions,
  validateStoreOptions,
  type EmbeddedPostgresStoreOptions,
  type PostgresStoreOptions,
} from './postgres-store-options.ts';
import { iso, journalTables, jsonParam, optional, parseJson, type JournalTables } from './postgres-tables.ts';
import type {
  DeadLetterOptions,
  NewDeadLetter,
  EventFilter,
  EventTally,
  RecordedEvent,
  StoredEvent,
  SyncStore,
} from './sync-store.ts';

export type { EmbeddedPostgresStoreOptions, PostgresStoreOptions } from './postgres-store-options.ts';

/**
 * A {@link SyncStore} in PostgreSQL: on a server shared by every service instance (a `pg` Pool),
 * or embedded in the process (PGlite). One implementation for both, with the semantics of
 * `MemoryStore` and the guarantees a shared database needs: unique constraints on links,
 * one outbox row per record and target, claims with `FOR UPDATE SKIP LOCKED` fenced by
 * tokens from a sequence, and every time taken from the database clock.
 *
 * Open it with {@link PostgresStore.open} (or {@link PostgresStore.openEmbedded}), which applies
 * the schema's pending migrations first; opening again, or from many processes at once, is safe.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = await PostgresStore.open({ sql: sqlClientFromPg(pool) });
 * const writer = new DualWriter({ store, legacy, medplum, mappings, plan });
 * ```
 */
export class PostgresStore implements SyncStore {
  /**
   * `true` on a PostgreSQL server, which every service instance can share; `false` on PGlite,
   * which one process holds: other instances would each have a journal of their own, so a lease
   * here does not keep them off a record (mirrors then use conditional creates).
   */
  readonly leasesAcrossProcesses: boolean;
  readonly #sql: SqlClient;
  readonly #tables: JournalTables;
  readonly #close: (() => Promise<void>) | undefined;
  readonly #completions: CompletionQueue;
  readonly #marks: MarkQueue;
  #closed = false;

  private constructor(
    sql: SqlClient,
    schema: string,
    shared: boolean,
    close: (() => Promise<void>) | undefined,
  ) {
    this.#sql = sql;
    this.#tables = journalTables(schema);
    this.leasesAcrossProcesses = shared;
    this.#close = close;
    this.#marks = new MarkQueue({
      many: (batch) => outbox.markApplyingMany(sql, this.#tables, batch),
      one: (lease, hash) => outbox.markApplying(sql, this.#tables, lease, hash),
    });
    this.#completions = new CompletionQueue({
      one: (lease, link) => links.retryingLinkRaces(() => completeLease(sql, this.#tables, lease, link)),
      many: (batch) => completeLeases(sql, this.#tables, batch),
      single: (lease, link) => tryCompleteLease(sql, this.#tables, lease, link),
    });
  }

  /**
   * Opens the store on a database the caller owns, creating the schema and applying pending
   * migrations. {@link PostgresStore.close} leaves the database open.
   *
   * @param options - The database and schema.
   * @returns The store, ready to use.
   * @throws {@link ConfigurationError} naming `sql` or `schema` when an option is invalid.
   * @example
   * ```ts
   * const store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema: 'dualwrite' });
   * ```
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const { sql, schema } = validateStoreOptions(options);
    // A SqlClient does not say which driver it wraps; the server does.
    const { rows } = await typedJournal(async () => {
      await migrate(sql, schema);
      return sql.query<{ version: string }>('SELECT version() AS version');
    });
    const embedded = rows[0]?.version.includes('PGlite') ?? false;
    return new PostgresStore(sql, schema, !embedded, undefined);
  }

  /**
   * Opens the store on an embedded PGlite database that the store owns (and closes in
   * {@link PostgresStore.close}). Needs the package `@electric-sql/pglite` installed; it is
   * loaded only when this is called.
   *
   * @param options - Where PGlite keeps its data, and the schema.
   * @returns The store, ready to use.
   * @throws {@link ConfigurationError} naming the option when one is invalid, or
   * `@electric-sql/pglite` when the package is not installed.
   * @example
   * ```ts
   * const store = await PostgresStore.openEmbedded({ dataDir: './data/dualwrite' });
   * // …
   * await store.close();
   * ```
   */
  static async openEmbedded(options: EmbeddedPostgresStoreOptions = {}): Promise<PostgresStore> {
    const { dataDir, schema } = validateEmbeddedOptions(options);
    const db = await openPglite(dataDir);
    try {
      const sql = sqlClientFromPglite(db);
      await migrate(sql, schema);
      return new PostgresStore(sql, schema, false, () => db.close());
    } catch (err) {
      await db.close();
      throw journalFailure(err);
    }
  }

  /**
   * Closes what the store opened itself (the embedded database of
   * {@link PostgresStore.openEmbedded}); a database passed to {@link PostgresStore.open} stays
   * open. Calling it again does nothing.
   *
   * @returns When closed.
   * @example
   * ```ts
   * await store.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#close?.();
  }

  /** {@inheritDoc JobStore.createJob} */
  createJob(spec: JobSpec): Promise<Job> {
    return typedJournal(() => jobs.createJob(this.#sql, this.#tables, spec));
  }

  /** {@inheritDoc JobStore.getJob} */
  getJob(id: string): Promise<Job | undefined> {
    return typedJournal(() => jobs.getJob(this.#sql, this.#tables, id));
  }

  /** {@inheritDoc JobStore.listJobs} */
  listJobs(filter?: JobFilter): Promise<Job[]> {
    return typedJournal(() => jobs.listJobs(this.#sql, this.#tables, filter ?? {}));
  }

  /** {@inheritDoc JobStore.leaseJobPage} */
  leaseJobPage(jobId: string, owner: string, leaseMs: number): Promise<JobPageLease | undefined> {
    return typedJournal(() => jobs.leaseJobPage(this.#sql, this.#tables, jobId, owner, leaseMs));
  }

  /** {@inheritDoc JobStore.endJobPage} */
  endJobPage(lease: JobPageLease, next: string | undefined): Promise<'done' | 'fenced'> {
    return typedJournal(() => jobs.endJobPage(this.#sql, this.#tables, lease, next));
  }

  /** {@inheritDoc JobStore.renewJobPage} */
  renewJobPage(lease: JobPageLease, leaseMs: number): Promise<'done' | 'fenced'> {
    return typedJournal(() => jobs.renewJobPage(this.#sql, this.#tables, lease, leaseMs));
  }

  /** {@inheritDoc JobStore.completeJobPage} */
  completeJobPage(lease: JobPageLease, result: JobPageResult): Promise<'done' | 'fenced'> {
    return typedJournal(() => jobs.completeJobPage(this.#sql, this.#tables, lease, result));
  }

  /** {@inheritDoc JobStore.setJobState} */
  setJobState(
    id: string,
    state: JobState,
    options?: { readonly from?: readonly JobState[] | undefined; readonly reason?: string | undefined },
  ): Promise<Job | undefined> {
    return typedJournal(() => jobs.setJobState(this.#sql, this.#tables, id, state, options ?? {}));
  }

  /** {@inheritDoc JobStore.noteSeenCopies} */
  noteSeenCopies(jobId: string, copies: readonly SeenCopy[]): Promise<void> {
    return typedJournal(() => jobs.noteSeenCopies(this.#sql, this.#tables, jobId, copies));
  }

  /** {@inheritDoc JobStore.takeSeenCopies} */
  takeSeenCopies(jobId: string, legacyIds: readonly string[]): Promise<Map<string, SeenCopy>> {
    return typedJournal(() => jobs.takeSeenCopies(this.#sql, this.#tables, jobId, legacyIds));
  }

  /** {@inheritDoc JobStore.listSeenCopies} */
  listSeenCopies(
    jobId: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<SeenCopy[]> {
    return typedJournal(() => jobs.listSeenCopies(this.#sql, this.#tables, jobId, options));
  }

  /** {@inheritDoc SyncStore.getLink} */
  getLink(resourceType: string, legacyId: string): Promise<Link | undefined> {
    return typedJournal(() => links.getLink(this.#sql, this.#tables, resourceType, legacyId));
  }

  /** {@inheritDoc SyncStore.getLinks} */
  getLinks(resourceType: string, legacyIds: readonly string[]): Promise<Map<string, Link>> {
    return typedJournal(() => links.getLinks(this.#sql, this.#tables, resourceType, legacyIds));
  }

  /** {@inheritDoc SyncStore.getLinkByMedplumId} */
  getLinkByMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined> {
    return typedJournal(() => links.getLinkByMedplumId(this.#sql, this.#tables, resourceType, medplumId));
  }

  /** {@inheritDoc SyncStore.saveLink} */
  saveLink(link: Link): Promise<void> {
    return typedJournal(() =>
      links.retryingLinkRaces(() => this.#sql.transaction((tx) => links.saveLink(tx, this.#tables, link))),
    );
  }

  /** {@inheritDoc SyncStore.deleteLink} */
  deleteLink(resourceType: string, legacyId: string): Promise<void> {
    return typedJournal(() => links.deleteLink(this.#sql, this.#tables, resourceType, legacyId));
  }

  /** {@inheritDoc SyncStore.listLinks} */
  listLinks(
    resourceType: string,
    options: { readonly after?: string | undefined; readonly limit: number },
  ): Promise<Link[]> {
    return typedJournal(() => links.listLinks(this.#sql, this.#tables, resourceType, options));
  }

  /** {@inheritDoc SyncStore.intend} */
  intend(intent: OutboxIntent, holdMs: number): Promise<OutboxTicket> {
    return typedJournal(() => outbox.intend(this.#sql, this.#tables, intent, holdMs));
  }

  /** {@inheritDoc SyncStore.intendMany} */
  intendMany(intents: readonly OutboxIntent[], holdMs: number): Promise<OutboxTicket[]> {
    return typedJournal(() => outbox.intendMany(this.#sql, this.#tables, intents, holdMs));
  }

  /**
   * The database the store lives in. A `PostgresTableAdapter` on the same client lets the
   * writer journal each legacy write in the write's own transaction (a transactional outbox).
   *
   * @example
   * ```ts
   * const sql = sqlClientFromPg(pool);
   * const store = await PostgresStore.open({ sql });
   * store.sql === sql; // true
   * ```
   */
  get sql(): SqlClient {
    return this.#sql;
  }

  /**
   * Records an intent inside a caller's transaction of {@link PostgresStore.sql}: it commits or
   * rolls back with the legacy write made in the same transaction, so it needs no hold.
   *
   * @param tx - The transaction.
   * @param intent - The write's intent.
   * @returns The entry and its seq.
   * @example
   * ```ts
   * await sql.transaction(async (tx) => {
   *   const record = await legacy.within(tx).create('Patient', row);
   *   await store.intendWithin(tx, { resourceType: 'Patient', legacyId: record.id, target: 'medplum', unit: 'north', kind: 'upsert' });
   * });
   * ```
   */
  intendWithin(tx: SqlQueryable, intent: OutboxIntent): Promise<OutboxTicket> {
    return outbox.intend(tx, this.#tables, intent, 0);
  }

  /**
   * Runs a legacy write of the same database and records its intent in one statement: both
   * land or neither does, in one round trip (see `WriteStatement`). Internal: the
   * transactional outbox's fast path.
   *
   * @param statement - The adapter's write.
   * @param intent - The write's intent; `legacyId` `undefined` takes it from the written row.
   * @returns The write's rows, and the ticket when an entry was recorded (the write returned
   *   a row, or succeeds without one).
   * @example
   * ```ts
   * const traced = legacy.writingThrough(async (statement) => (await store.intendAlong(statement, intent)).rows);
   * ```
   */
  intendAlong(
    statement: WriteStatement,
    intent: Omit<OutboxIntent, 'legacyId'> & { readonly legacyId: string | undefined },
  ): Promise<{ readonly rows: Record<string, unknown>[]; readonly ticket: OutboxTicket | undefined }> {
    return outbox.intendAlong(this.#sql, this.#tables, statement, intent);
  }

  /** {@inheritDoc SyncStore.withdraw} */
  withdraw(ticket: OutboxTicket): Promise<void> {
    return outbox.withdraw(this.#sql, this.#tables, ticket);
  }

  /** {@inheritDoc SyncStore.commit} */
  commit(
    ticket: OutboxTicket,
    lease?: { readonly owner: string; readonly leaseMs: number },
  ): Promise<Lease | undefined> {
    return typedJournal(() => outbox.commit(this.#sql, this.#tables, ticket, lease));
  }

  /** {@inheritDoc SyncStore.claim} */
  claim(owner: string, limit: number, leaseMs: number, lane?: string): Promise<Lease[]> {
    return typedJournal(() => outbox.claim(this.#sql, this.#tables, owner, limit, leaseMs, lane));
  }

  /** {@inheritDoc SyncStore.holdLane} */
  holdLane(lane: string, owner: string, leaseMs: number): Promise<void> {
    return typedJournal(() => lanes.holdLane(this.#sql, this.#tables, lane, owner, leaseMs));
  }

  /** {@inheritDoc SyncStore.releaseLane} */
  releaseLane(lane: string, owner: string): Promise<void> {
    return typedJournal(() => lanes.releaseLane(this.#sql, this.#tables, lane, owner));
  }

  /** {@inheritDoc SyncStore.laneCount} */
  laneCount(lane: string): Promise<number> {
    return typedJournal(() => lanes.laneCount(this.#sql, this.#tables, lane));
  }

  /** {@inheritDoc SyncStore.complete} */
  complete(lease: Lease, link: Link | null | undefined): Promise<LeaseOutcome> {
    return typedJournal(() => this.#completions.complete(lease, link));
  }

  /** {@inheritDoc SyncStore.markApplying} */
  markApplying(lease: Lease, hash: string): Promise<boolean> {
    return typedJournal(() => this.#marks.mark(lease, hash));
  }

  /** {@inheritDoc SyncStore.renew} */
  renew(lease: Lease, leaseMs: number): Promise<boolean> {
    return typedJournal(() => outbox.renew(this.#sql, this.#tables, lease, leaseMs));
  }

  /** {@inheritDoc SyncStore.retryLater} */
  retryLater(lease: Lease, error: OutboxError, delayMs: number): Promise<LeaseOutcome> {
    return typedJournal(() => outbox.retryLater(this.#sql, this.#tables, lease, error, delayMs));
  }

  /** {@inheritDoc SyncStore.defer} */
  defer(
    lease: Lease,
    waitingFor: string,
    error: OutboxError,
    delayMs: number,
    whilePending = false,
  ): Promise<LeaseOutcome> {
    return outbox.defer(this.#sql, this.#tables, lease, { waitingFor, whilePending }, error, delayMs);
  }

  /** {@inheritDoc SyncStore.deadLetter} */
  deadLetter(lease: Lease, error: OutboxError, options: DeadLetterOptions = {}): Promise<LeaseOutcome> {
    return typedJournal(() =>
      outbox.finish(
        this.#sql,
        this.#tables,
        lease,
        (tx) =>
          letters.moveToDeadLetters(
            tx,
            this.#tables,
            {
              entryId: lease.entry.id,
              token: lease.token,
              resourceType: lease.entry.resourceType,
              legacyId: lease.entry.legacyId,
            },
            error,
            options.keepBase !== false,
          ),
        // A repeat after a lost answer: the letter this lease committed is its own.
        (tx) => letters.letteredBy(tx, this.#tables, lease.token),
      ),
    );
  }

  /** {@inheritDoc SyncStore.hasPending} */
  hasPending(resourceType: string, legacyId: string): Promise<boolean> {
    return typedJournal(async () => {
      const { rows } = await this.#sql.query(
        // Both targets named, so the (target, resource_type, legacy_id) unique index answers it.
        `SELECT 1 FROM ${this.#tables.outbox}
         WHERE target IN ('legacy', 'medplum') AND resource_type = $1 AND legacy_id = $2 LIMIT 1`,
        [resourceType, legacyId],
      );
      return rows.length > 0;
    });
  }

  /** {@inheritDoc SyncStore.listOutbox} */
  listOutbox(options: { readonly limit?: number | undefined } = {}): Promise<OutboxEntry[]> {
    return typedJournal(() => outbox.listOutbox(this.#sql, this.#tables, options.limit));
  }

  /** {@inheritDoc SyncStore.outboxCounts} */
  outboxCounts(options: { readonly unit?: string | undefined } = {}): Promise<OutboxCounts> {
    return typedJournal(() => outbox.outboxCounts(this.#sql, this.#tables, options.unit));
  }

  /** {@inheritDoc SyncStore.outboxBacklog} */
  outboxBacklog(): Promise<OutboxBacklog[]> {
    return typedJournal(() => outbox.outboxBacklog(this.#sql, this.#tables));
  }

  /** {@inheritDoc SyncStore.listDeadLetters} */
  listDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    return typedJournal(() => letters.listDeadLetters(this.#sql, this.#tables, filter));
  }

  /** {@inheritDoc SyncStore.findDeadLetter} */
  findDeadLetter(resourceType: string, legacyId: string): Promise<DeadLetter | undefined> {
    return letters.findDeadLetter(this.#sql, this.#tables, resourceType, legacyId);
  }

  /** {@inheritDoc SyncStore.getDeadLetter} */
  getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return typedJournal(() => letters.getDeadLetter(this.#sql, this.#tables, id));
  }

  /** {@inheritDoc SyncStore.retryDeadLetter} */
  retryDeadLetter(id: string): Promise<OutboxTicket | undefined> {
    return typedJournal(() => letters.retryDeadLetter(this.#sql, this.#tables, id));
  }

  /** {@inheritDoc SyncStore.discardDeadLetter} */
  discardDeadLetter(id: string, note: string): Promise<boolean> {
    return typedJournal(() => letters.discardDeadLetter(this.#sql, this.#tables, id, note));
  }

  /** {@inheritDoc SyncStore.resolveDeadLetter} */
  resolveDeadLetter(id: string, note: string, resolution: 'legacy' | 'medplum' | 'merged'): Promise<boolean> {
    return typedJournal(() => letters.resolveDeadLetter(this.#sql, this.#tables, id, note, resolution));
  }

  /** {@inheritDoc SyncStore.openDeadLetter} */
  openDeadLetter(letter: NewDeadLetter): Promise<DeadLetter> {
    return typedJournal(() => letters.openDeadLetter(this.#sql, this.#tables, letter));
  }

  /** {@inheritDoc SyncStore.appendEvent} */
  appendEvent(event: StoredEvent): Promise<void> {
    return typedJournal(async () => {
      await this.#sql.query(
        `INSERT INTO ${this.#tables.events} (type, resource_type, legacy_id, unit, data)
         VALUES ($1, $2, $3, $4, $5::text::jsonb)`,
        [
          event.type,
          event.resourceType ?? null,
          event.legacyId ?? null,
          event.unit ?? null,
          jsonParam(event.data),
        ],
      );
    });
  }

  /** {@inheritDoc SyncStore.listEvents} */
  listEvents(options: EventFilter = {}): Promise<RecordedEvent[]> {
    return typedJournal(async () => {
      const { rows } = await this.#sql.query<EventRow>(
        `SELECT e.id::text AS id, e.type, e.resource_type, e.legacy_id, e.unit, e.data::text AS data,
           ${iso('e.at')} AS at
         FROM ${this.#tables.events} e
         WHERE ($1::text IS NULL OR e.type = $1) AND ($3::text IS NULL OR e.unit = $3)
           AND ($4::timestamptz IS NULL OR e.at >= $4::timestamptz)
           AND ($5::jsonb IS NULL OR e.data @> $5::jsonb)
         ORDER BY e.id DESC LIMIT $2`,
        [
          options.type ?? null,
          options.limit ?? null,
          options.unit ?? null,
          options.since ?? null,
          options.data === undefined ? null : JSON.stringify(options.data),
        ],
      );
      return rows.map((row) => ({
        id: row.id,
        type: row.type,
        resourceType: optional(row.resource_type),
        legacyId: optional(row.legacy_id),
        unit: optional(row.unit),
        data: parseJson(row.data) as RecordedEvent['data'],
        at: row.at,
      }));
    });
  }

  /** {@inheritDoc SyncStore.countEvents} */
  countEvents(options: {
    readonly type: string;
    readonly unit?: string | undefined;
    readonly since?: string | undefined;
  }): Promise<number> {
    return typedJournal(async () => {
      const { rows } = await this.#sql.query<{ n: number }>(
        `SELECT count(*)::integer AS n FROM ${this.#tables.events}
         WHERE type = $1 AND ($2::text IS NULL OR unit = $2) AND ($3::timestamptz IS NULL OR at >= $3::timestamptz)`,
        [options.type, options.unit ?? null, options.since ?? null],
      );
      return rows[0]?.n ?? 0;
    });
  }

  /** {@inheritDoc SyncStore.tallyEvents} */
  tallyEvents(options: EventTally): Promise<Record<string, number>> {
    return typedJournal(async () => {
      const { rows } = await this.#sql.query<{ value: string; n: number }>(
        `SELECT coalesce(data->>$2, '') AS value, count(*)::integer AS n FROM ${this.#tables.events}
         WHERE type = $1 AND ($3::text IS NULL OR unit = $3) AND ($4::timestamptz IS NULL OR at >= $4::timestamptz)
         GROUP BY 1 ORDER BY 1`,
        [options.type, options.key, options.unit ?? null, options.since ?? null],
      );
      return namedRecord(rows.map((row) => [row.value, row.n] as const));
    });
  }

  /** {@inheritDoc SyncStore.getCursor} */
  getCursor(name: string): Promise<string | undefined> {
    return typedJournal(async () => {
      const { rows } = await this.#sql.query<{ value: string }>(
        `SELECT value FROM ${this.#tables.cursors} WHERE name = $1`,
        [name],
      );
      return rows[0]?.value;
    });
  }

  /** {@inheritDoc SyncStore.setCursor} */
  setCursor(name: string, value: string): Promise<void> {
    return typedJournal(async () => {
      await this.#sql.query(
        `INSERT INTO ${this.#tables.cursors} (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = clock_timestamp()`,
        [name, value],
      );
    });
  }

  /** {@inheritDoc SyncStore.recordSamples} */
  recordSamples(samples: readonly ReadinessSample[]): Promise<void> {
    return evidence.recordSamples(this.#sql, this.#tables, samples);
  }

  /** {@inheritDoc SyncStore.readinessEvidence} */
  readinessEvidence(options: { readonly unit: string; readonly since: string }): Promise<ReadinessEvidence> {
    return evidence.readinessEvidence(this.#sql, this.#tables, options);
  }

  /** {@inheritDoc SyncStore.recordBacklog} */
  recordBacklog(recording: BacklogRecording): Promise<void> {
    return typedJournal(() => history.recordBacklog(this.#sql, this.#tables, recording));
  }

  /** {@inheritDoc SyncStore.backlogHistory} */
  backlogHistory(options: { readonly since: string }): Promise<BacklogSample[]> {
    return typedJournal(() => history.backlogHistory(this.#sql, this.#tables, options));
  }

  /** {@inheritDoc SyncStore.lagHistory} */
  lagHistory(options: { readonly since: string; readonly stepMs: number }): Promise<LagPoint[]> {
    return typedJournal(() => history.lagHistory(this.#sql, this.#tables, options));
  }

  /** {@inheritDoc HousekeepingStore.pauseUnit} */
  pauseUnit(
    unit: string,
    note: { readonly by?: string | undefined; readonly reason?: string | undefined } = {},
  ): Promise<UnitPause> {
    return typedJournal(() => housekeeping.pauseUnit(this.#sql, this.#tables, unit, note));
  }

  /** {@inheritDoc HousekeepingStore.resumeUnit} */
  resumeUnit(unit: string): Promise<boolean> {
    return typedJournal(() => housekeeping.resumeUnit(this.#sql, this.#tables, unit));
  }

  /** {@inheritDoc HousekeepingStore.unitPauses} */
  unitPauses(): Promise<UnitPause[]> {
    return typedJournal(() => housekeeping.unitPauses(this.#sql, this.#tables));
  }

  /** {@inheritDoc HousekeepingStore.prune} */
  prune(rules: RetentionRules, limit: number): Promise<PruneCounts> {
    return typedJournal(() => housekeeping.prune(this.#sql, this.#tables, rules, limit));
  }

  /** {@inheritDoc SyncStore.acquireFeedLease} */
  acquireFeedLease(name: string, owner: string, leaseMs: number): Promise<boolean> {
    return feedLeases.acquireFeedLease(this.#sql, this.#tables, name, owner, leaseMs);
  }

  /** {@inheritDoc SyncStore.releaseFeedLease} */
  releaseFeedLease(name: string, owner: string): Promise<void> {
    return feedLeases.releaseFeedLease(this.#sql, this.#tables, name, owner);
  }

  /** {@inheritDoc SyncStore.loadPlan} */
  loadPlan(): Promise<StoredPlan | undefined> {
    return typedJournal(() => plans.loadPlan(this.#sql, this.#tables));
  }

  /** {@inheritDoc SyncStore.planRevision} */
  planRevision(): Promise<number | undefined> {
    return typedJournal(() => plans.planRevision(this.#sql, this.#tables));
  }

  /** {@inheritDoc SyncStore.seedPlan} */
  seedPlan(seed: PlanSeed): Promise<StoredPlan> {
    return typedJournal(() => plans.seedPlan(this.#sql, this.#tables, seed));
  }

  /** {@inheritDoc SyncStore.changePlan} */
  changePlan(change: PlanChange, event: StoredEvent): Promise<PlanChangeOutcome> {
    return typedJournal(() => plans.changePlan(this.#sql, this.#tables, change, event));
  }
}

interface EventRow {
  readonly id: string;
  readonly type: string;
  readonly resource_type: string | null;
  readonly legacy_id: string | null;
  readonly unit: string | null;
  readonly data: string | null;
  readonly at: string;
}
