import type { UnitPause } from './journal/housekeeping.ts';
import { retentionPolicyOf, type PruneReport, type RetentionOptions } from './journal/retention.ts';
import type { UnitDrained } from './mirror/drain-unit.ts';
import type { WithId } from '@medplum/core';
import type { ExtractResource, Resource, ResourceType } from '@medplum/fhirtypes';
import {
  requestTimeoutOf,
  validateDualWriterOptions,
  type DualWriterOptions,
  type WriteCallOptions,
} from './dual-writer-options.ts';
import type { Resolution } from './conflict/conflict-context.ts';
import { authorityWins } from './conflict/resolvers.ts';
import { DivergenceChecks, type DivergenceCounts } from './divergence/divergence-checks.ts';
import { EventPublisher } from './events/event-publisher.ts';
import { telemetryOf, type Telemetry } from './telemetry/telemetry.ts';
import { telemetryOptionsOf } from './telemetry/telemetry-options.ts';
import { feedOptionsOf } from './feeds/change-feeds-options.ts';
import type { RestHookRequest, RestHookResult } from './feeds/delete-notification.ts';
import type { FeedCounts, FeedReport } from './feeds/feed-report.ts';
import { callbackSink } from './events/event-sink.ts';
import type { DualWriteEvent } from './dual-write-event.ts';
import type { BackfillOptions } from './jobs/backfill.ts';
import type { JobContext } from './jobs/job-context.ts';
import type { ReconcileOptions } from './jobs/reconcile.ts';
import type { Job } from './journal/job.ts';
import { LinkCache } from './journal/link-cache.ts';
import type { Link } from './journal/link.ts';
import { MemoryStore } from './journal/memory-store.ts';
import type { DeadLetterFilter, OutboxCounts } from './journal/outbox.ts';
import type { SyncStore } from './journal/sync-store.ts';
import type { ResourceMapping } from './mapping/resource-mapping.ts';
import { drainerPolicyOf, type DrainReport } from './mirror/drainer.ts';
import type { MirrorContext } from './mirror/mirror-entry.ts';
import { RecordLocks } from './mirror/record-locks.ts';
import { retryPolicyOf, type RetryPolicy } from './mirror/retry-policy.ts';
import { QuotaPacer } from './pacing/quota-pacer.ts';
import { WritePath } from './mirror/write-path.ts';
import type { CutoverPlan } from './plan/cutover-plan.ts';
import { EvidenceRecorder } from './plan/evidence-recorder.ts';
import type { Readiness } from './plan/readiness.ts';
import type { LegacyAdapter } from './sides/legacy-adapter.ts';
import { MedplumSide } from './sides/medplum-side.ts';
import { recordPartsAdapter } from './sides/record-parts-adapter.ts';
import { timedLegacyAdapter } from './sides/timed-legacy-adapter.ts';
import type { WriteResult } from './write-result.ts';
import { WriterRuntime, type WriterRuntimeParts } from './writer/writer-runtime.ts';
import { describeError } from './error-values.ts';
import { RecordAccess } from './writer/record-access.ts';
import { ReadCalls } from './writer/read-calls.ts';
import { WriteCalls } from './writer/write-calls.ts';
import { mirrorReportsOf } from './writer/mirror-reports.ts';
import { wiredOperator, type Operator } from './operator/operator.ts';
import { backlogRecordingOf } from './journal/backlog-recorder.ts';
import type { DeadLetterView } from './operator/operator-views.ts';

/**
 * Wraps the legacy system and Medplum: every write goes to the side that is the authority for
 * the call's unit and resource type, then is mirrored to the other side when the stage says
 * so, and the two copies stay linked by the legacy id carried as a FHIR identifier.
 *
 * Every mirror is journaled before the authority write (an outbox entry in the store), so once
 * a call returns the mirror is durable: applied, pending in the outbox, or dead-lettered with a
 * reason. `writer.start()` runs the drainer that applies pending mirrors in the background;
 * `writer.drain()` applies them until none is left.
 *
 * Legacy-shaped calls (`create`, `update`, `delete`, `read`) take legacy rows; FHIR-shaped
 * calls (`createResource`, `updateResource`, `deleteResource`, `readResource`, named as
 * `MedplumClient` names them) take resources, so a record can start on either side.
 *
 * @typeParam C - The per-call context type.
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const writer = new DualWriter({ legacy, medplum, mappings: [patients], plan, store });
 * writer.start();
 * const result = await writer.create('Patient', { first_name: 'Ada', last_name: 'Lovelace' }, { clinic: 'north' });
 * console.log(result.legacyId, result.medplumId, result.mirror);
 * await writer.stop();
 * ```
 */
export class DualWriter<C, L> {
  readonly #legacy: LegacyAdapter<L>;
  readonly #medplum: MedplumSide;
  readonly #mappings = new Map<string, ResourceMapping<L>>();
  readonly #plan: CutoverPlan<C>;
  readonly #store: SyncStore;
  readonly #links: LinkCache;
  readonly #retry: RetryPolicy;
  readonly #writeCalls: WriteCalls<C, L>;
  readonly #readCalls: ReadCalls<C, L>;
  readonly #events: EventPublisher;
  readonly #checks: DivergenceChecks<L>;
  readonly #evidence: EvidenceRecorder;
  readonly #runtime: WriterRuntime<L>;
  readonly #operator: Operator<C, L>;
  readonly #telemetry: Telemetry | undefined;
  readonly #retentionOptions: RetentionOptions;

  /**
   * @param options - The two systems, mappings, plan, store and policies.
   * @throws {@link ConfigurationError} naming the option when one is missing or invalid.
   */
  constructor(options: DualWriterOptions<C, L>) {
    validateDualWriterOptions(options);
    for (const mapping of options.mappings as readonly ResourceMapping<L>[])
      this.#mappings.set(mapping.resourceType, mapping);
    const drainer = drainerPolicyOf(options.drainer);
    const requestTimeoutMs = requestTimeoutOf(options.requestTimeoutMs, drainer);
    this.#legacy = timedLegacyAdapter(
      recordPartsAdapter(options.legacy, [...this.#mappings.values()]),
      requestTimeoutMs,
    );
    // One pacer for every request this writer sends with the client: the quota is the user's.
    const pacer = options.pacer ?? new QuotaPacer();
    this.#medplum = new MedplumSide(options.medplum, 1, { pacer, lane: 'live' }, requestTimeoutMs);
    this.#plan = options.plan;
    this.#store = options.store ?? new MemoryStore();
    this.#links = new LinkCache(this.#store, options.linkCacheSize ?? 10_000);
    this.#retry = retryPolicyOf(options.retry);
    this.#evidence = new EvidenceRecorder(this.#store);
    this.#telemetry = telemetryOf(telemetryOptionsOf(options.telemetry), this.#store);
    const feeds = options.feeds;
    const jobs: JobContext<L> = {
      store: this.#store,
      legacy: this.#legacy,
      medplum: options.medplum,
      mappings: [...this.#mappings.values()],
      unitOf: feeds?.unitOf,
      // A backfill's searches spend the same user's quota: they wait in the background lane.
      pacer,
      requestTimeoutMs,
      retry: this.#retry,
      // A backfill on a client of its own: its lane's mirrors run this writer's mirror path,
      // their writes in bundles on that client, paced by its own pacer.
      laneDrainers: (lane, client) =>
        this.#runtime.laneDrainer(
          lane,
          new MedplumSide(
            client.medplum,
            drainer.bundle,
            { pacer: client.pacer, lane: 'background', requests: drainer.requests },
            requestTimeoutMs,
          ),
        ),
    };
    let feedParts: WriterRuntimeParts<L>['feeds'];
    if (feeds !== undefined) {
      const { unitOf } = feeds;
      // Read key by key, as the checks did: a spread would drop a getter's or a prototype's
      // option (a rest-hook secret, and with it the signature check).
      const feedOptions = feedOptionsOf(feeds as unknown as Readonly<Record<string, unknown>>);
      feedParts = {
        deps: {
          legacy: this.#legacy,
          // Nobody waits on a feed: it leaves the window's reserve to live calls.
          medplum: new MedplumSide(options.medplum, 1, { pacer, lane: 'background' }, requestTimeoutMs),
          store: this.#store,
          mappings: this.#mappings,
          routeOf: (unit, resourceType) => this.#plan.routeOf(unit, resourceType),
          unitOf,
          onRead: (read) => this.#emit({ type: 'feed-read', ...read }),
          onExistenceHalted: (halt) => this.#emit({ type: 'existence-check-halted', ...halt }),
        },
        options: feedOptions,
      };
    }
    const sinks = [
      ...(options.sinks ?? []),
      ...(options.onEvent === undefined ? [] : [callbackSink(options.onEvent)]),
      ...(this.#telemetry === undefined ? [] : [this.#telemetry.sink]),
    ];
    this.#events = new EventPublisher(this.#store, sinks, options.valueHash);
    this.#checks = new DivergenceChecks(
      {
        legacy: this.#legacy,
        medplum: this.#medplum,
        store: this.#store,
        mappings: this.#mappings,
        publish: (event) => this.#events.publish(event),
        compared: (unit, divergent) => {
          this.#evidence.add({ unit, kind: 'comparison', value: divergent ? 1 : 0 });
        },
      },
      options.divergence,
    );
    const leasePolicy = mirrorReportsOf({
      drainer,
      events: this.#events,
      evidence: this.#evidence,
      checks: this.#checks,
      medplum: this.#medplum,
      tracing: this.#telemetry?.tracing,
    });
    const ctx: MirrorContext<L> = {
      legacy: this.#legacy,
      medplum: this.#medplum,
      mappings: this.#mappings,
      store: this.#store,
      resolver: options.resolver ?? authorityWins,
      stageOf: (unit, resourceType) => this.#plan.stageOf(unit, resourceType),
      baseSnapshot: options.baseSnapshot ?? 'full',
    };
    const writes = new WritePath(ctx, {
      mode: options.mirror ?? 'sync',
      syncBudgetMs: options.syncBudgetMs ?? 10_000,
      intentHoldMs: options.intentHoldMs ?? 60_000,
      retry: this.#retry,
      drainer,
      lease: leasePolicy,
      emit: (event) => this.#emit(event),
      notifyDrainer: () => this.#runtime.notify(),
      tracing: this.#telemetry?.tracing,
    });
    const access = new RecordAccess<C, L>({
      legacy: this.#legacy,
      medplum: this.#medplum,
      mappings: this.#mappings,
      plan: this.#plan,
      links: this.#links,
      retry: this.#retry,
      emit: (event) => this.#emit(event),
    });
    const locks = new RecordLocks();
    this.#writeCalls = new WriteCalls<C, L>({ access, mirror: ctx, writes, locks });
    this.#readCalls = new ReadCalls<C, L>({
      access,
      mirror: ctx,
      checks: this.#checks,
      store: this.#store,
    });
    const retention = retentionPolicyOf(options.retention, options.readiness?.windowMs ?? 3_600_000);
    this.#retentionOptions =
      options.retention === false
        ? { events: false, deadLetters: false, samples: false }
        : (options.retention ?? {});
    this.#runtime = new WriterRuntime<L>({
      store: this.#store,
      mirror: ctx,
      // The drainer's mirrors run many at once: their writes to Medplum go in bundles, a few
      // requests at a time, in the background lane of the pacer.
      drainMedplum: new MedplumSide(
        options.medplum,
        drainer.bundle,
        { pacer, lane: 'background', requests: drainer.requests },
        requestTimeoutMs,
      ),
      drainer,
      lease: leasePolicy,
      feeds: feedParts,
      retention,
      backlog: backlogRecordingOf(options.backlogHistory, 'backlogHistory'),
      gauges: this.#telemetry?.gauges,
      emit: (event) => this.#emit(event),
    });
    this.#operator = wiredOperator<C, L>(
      {
        store: this.#store,
        mappings: [...this.#mappings.values()],
        plan: this.#plan,
        readiness: options.readiness,
      },
      {
        mirror: ctx,
        jobs,
        events: this.#events,
        locks,
        evict: (resourceType, legacyId) => this.#links.evict(resourceType, legacyId),
        beforeReadiness: () => this.#evidence.flush(),
        queued: () => this.#runtime.notify(),
        drain: () => this.drain(),
        unitWork: () => this.#runtime.unitWork(),
      },
    );
    // Last: a constructor that threw above must leave the caller's plan untouched.
    this.#plan.useReadiness((unit) => this.readiness(unit));
    this.#plan.onRefreshError((error) => {
      this.#emit({ type: 'plan-stale', error: describeError(error), revision: this.#plan.status().revision });
    });
  }

  /**
   * Creates a record from a legacy row: written to the authority, mirrored to the other side.
   * Replaying a create that already landed (same row) is not an error: it returns `unchanged`.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param row - The legacy row. Its legacy id may be absent: it is then allocated first
   *   (`mapping.newLegacyId`, else the adapter's `newId`), or assigned by the legacy system.
   * @param ctx - The call's context (gives the unit).
   * @returns What was written on each side.
   * @throws {@link InvalidInputError} for an unknown type or a missing row; {@link MappingError}
   *   when the mapping rejects the row (nothing written); {@link ConflictError} when the record
   *   already exists with other content; {@link MirrorError} when the authority write landed
   *   but the mirror failed for good (it is in the dead-letter queue).
   * @example
   * ```ts
   * const { legacyId, medplumId } = await writer.create('Patient', row, { clinic: 'north' });
   * ```
   */
  async create(type: string, row: L, ctx: C): Promise<WriteResult<L>> {
    return this.#writeCalls.create(type, row, ctx);
  }

  /**
   * Creates a record from a FHIR resource. When Medplum is the authority the resource must
   * carry its legacy id as an identifier under the mapping's system (or the mapping must
   * implement `newLegacyId`); when the legacy system is, it may assign the id.
   *
   * @param resource - The resource to create.
   * @param ctx - The call's context.
   * @returns What was written on each side.
   * @throws {@link InvalidInputError} naming `resource.resourceType` or `resource.identifier`.
   * @example
   * ```ts
   * await writer.createResource({
   *   resourceType: 'Patient',
   *   identifier: [{ system: 'https://legacy.example.org/patient-id', value: 'p-77' }],
   *   name: [{ family: 'Hopper' }],
   * }, { clinic: 'south' });
   * ```
   */
  async createResource<R extends Resource>(resource: R, ctx: C): Promise<WriteResult<L, WithId<R>>> {
    return this.#writeCalls.createResource(resource, ctx);
  }

  /**
   * Updates a record from a legacy row.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param row - The new row.
   * @param ctx - The call's context.
   * @param options - `expectedVersion` for optimistic concurrency on the authority.
   * @returns What was written on each side.
   * @throws {@link RejectedError} with status 404 when the record does not exist on the
   *   authority; {@link ConflictError} when `expectedVersion` is stale; {@link MirrorError}
   *   when the mirror target changed since the last sync (dead-lettered as a conflict).
   * @example
   * ```ts
   * await writer.update('Patient', 'p-1', { ...row, last_name: 'Byron' }, { clinic: 'north' });
   * ```
   */
  async update(
    type: string,
    legacyId: string,
    row: L,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L>> {
    return this.#writeCalls.update(type, legacyId, row, ctx, options);
  }

  /**
   * Updates a record from a FHIR resource. The resource is found by its legacy identifier or,
   * when linked, by its `id`; it replaces the stored resource, as a FHIR update does.
   *
   * @param resource - The resource; it needs an `id` or the legacy identifier.
   * @param ctx - The call's context.
   * @param options - `expectedVersion` for optimistic concurrency on the authority.
   * @returns What was written on each side.
   * @example
   * ```ts
   * const patient = await writer.readResource('Patient', id, ctx);
   * if (patient) await writer.updateResource({ ...patient, gender: 'female' }, ctx);
   * ```
   */
  async updateResource<R extends Resource>(
    resource: R,
    ctx: C,
    options: WriteCallOptions = {},
  ): Promise<WriteResult<L, WithId<R>>> {
    return this.#writeCalls.updateResource(resource, ctx, options);
  }

  /**
   * Deletes a record on both sides, authority first. Deleting a record that is already gone is
   * not an error.
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param ctx - The call's context.
   * @returns What was done on each side.
   * @example
   * ```ts
   * await writer.delete('Patient', 'p-1', { clinic: 'north' });
   * ```
   */
  async delete(type: string, legacyId: string, ctx: C): Promise<WriteResult<L>> {
    return this.#writeCalls.delete(type, legacyId, ctx);
  }

  /**
   * Deletes a record by its Medplum id on both sides, authority first.
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @param ctx - The call's context.
   * @returns What was done on each side.
   * @example
   * ```ts
   * await writer.deleteResource('Patient', patient.id, { clinic: 'south' });
   * ```
   */
  async deleteResource(resourceType: string, id: string, ctx: C): Promise<WriteResult<L>> {
    return this.#writeCalls.deleteResource(resourceType, id, ctx);
  }

  /**
   * Reads a record as a legacy row from the stage's read side (Medplum copies are mapped with
   * `toLegacy`).
   *
   * @param type - The FHIR resource type of the record's mapping.
   * @param legacyId - The record's legacy id.
   * @param ctx - The call's context.
   * @returns The row, or `undefined` when the read side has no such record.
   * @example
   * ```ts
   * const row = await writer.read('Patient', 'p-1', { clinic: 'north' });
   * ```
   */
  async read(type: string, legacyId: string, ctx: C): Promise<L | undefined> {
    return this.#readCalls.read(type, legacyId, ctx);
  }

  /**
   * Reads a record as a FHIR resource from the stage's read side (legacy rows are mapped with
   * `toFhir`). Unlike `MedplumClient.readResource`, a missing record gives `undefined`.
   *
   * @param resourceType - The resource type.
   * @param id - The Medplum id.
   * @param ctx - The call's context.
   * @returns The resource, or `undefined`.
   * @example
   * ```ts
   * const patient = await writer.readResource('Patient', id, { clinic: 'south' });
   * ```
   */
  async readResource<RT extends ResourceType>(
    resourceType: RT,
    id: string,
    ctx: C,
  ): Promise<WithId<ExtractResource<RT>> | undefined> {
    return this.#readCalls.readResource(resourceType, id, ctx);
  }

  /**
   * The link of a record, if it has been synced.
   *
   * @param resourceType - The resource type.
   * @param legacyId - The legacy id.
   * @returns The link, or `undefined`.
   * @throws {@link InvalidInputError} naming `resourceType` or `legacyId`.
   * @example
   * ```ts
   * const link = await writer.linkOf('Patient', 'p-1');
   * console.log(link?.medplumId, link?.medplumVersion);
   * ```
   */
  async linkOf(resourceType: string, legacyId: string): Promise<Link | undefined> {
    return this.#readCalls.linkOf(resourceType, legacyId);
  }

  /**
   * Starts the background work of this instance, in the roles given: the `drainer` that applies
   * pending mirrors (with it, the journal's retention and the backlog's sampling: options
   * `retention`, `backlogHistory`), and the change `feeds` (option `feeds`). Both by default. Instances that
   * share a store share the work: drainers claim entries with leases, and each feed is polled
   * by one instance at a time (a lease per side and resource type, taken over when its holder
   * dies). A deployment can run only writes on its application instances (`start({ drainer:
   * false, feeds: false })`, or no `start()`) and the drainer and feeds on a worker tier. A
   * no-op for a role already running.
   *
   * @param roles - Which background work to run.
   * @throws {@link ConfigurationError} naming `feeds` when the feeds role is asked for and the
   *   writer has no `feeds` option; {@link InvalidInputError} naming an unknown role.
   * @example
   * ```ts
   * writer.start(); // drainer and feeds
   * worker.start({ drainer: true, feeds: true });
   * web.start({ drainer: false, feeds: false });
   * process.on('SIGTERM', () => void writer.stop());
   * ```
   */
  start(roles: { readonly drainer?: boolean | undefined; readonly feeds?: boolean | undefined } = {}): void {
    this.#runtime.start(roles);
  }

  /**
   * Runs one pass of the change feeds (option `feeds`): changes made directly in either system
   * since the stored cursors are journaled and the drainer mirrors them; echoes of the writer's
   * own mirrors are skipped. `start()` runs passes every `feeds.pollIntervalMs`.
   *
   * @returns What the pass saw, queued and skipped; rejects with a {@link ConfigurationError}
   *   when the writer has no `feeds` option.
   * @example
   * ```ts
   * const report = await writer.pollFeeds();
   * console.log(report.queued, report.echoes);
   * ```
   */
  async pollFeeds(): Promise<FeedReport> {
    return this.#runtime.pollFeeds();
  }

  /**
   * The change feeds' running totals (seen, queued, echoes, skipped, errors).
   *
   * @returns The counts; zeros without feeds.
   * @example
   * ```ts
   * const { echoes, queued } = writer.feedCounts();
   * ```
   */
  feedCounts(): FeedCounts {
    return this.#runtime.feedCounts();
  }

  /**
   * Handles a Medplum rest-hook delete notification (see the README): the deleted resource's
   * record is journaled for deletion in the legacy system once Medplum confirms it is gone.
   *
   * @param request - The request's headers and raw body.
   * @returns What was done; answer Medplum 2xx unless this rejects. Rejects with a
   *   {@link ConfigurationError} when the writer has no `feeds` option, an
   *   {@link InvalidInputError} naming `request` when it is not `{ headers, body }`.
   * @example
   * ```ts
   * app.post('/medplum/deletes', async (req, res) => {
   *   const { status } = await writer.handleRestHook({ headers: req.headers, body: req.rawBody });
   *   res.status(status).end();
   * });
   * ```
   */
  async handleRestHook(request: RestHookRequest): Promise<RestHookResult> {
    return this.#runtime.handleRestHook(request);
  }

  /**
   * Stops the background drainer once the mirrors in flight finish. Pending entries stay in
   * the outbox for the next start (or another instance).
   *
   * @example
   * ```ts
   * await writer.stop();
   * ```
   */
  async stop(): Promise<void> {
    await this.#runtime.stop();
    await this.#checks.settled();
    await this.#evidence.flush();
  }

  /**
   * A unit's figures over the readiness window — mirror lag (p50, p95), comparisons,
   * conflicts, divergence, open dead letters, pending mirrors, from every instance sharing the
   * store — and the verdict against the gates: `unknown` when a gate has too little evidence
   * (option `readiness.minSamples`) or the plan is stale. The plan asks it before moving the
   * unit forward, and only `ready` lets it.
   *
   * @param unit - The unit.
   * @param options - A window other than the configured one.
   * @returns The figures, the gates and the verdict.
   * @throws {@link InvalidInputError} (a rejection) naming `unit`, `options` or the option at fault.
   * @example
   * ```ts
   * const readiness = await writer.readiness('north');
   * console.log(readiness.verdict, readiness.figures, readiness.failing);
   * ```
   */
  async readiness(
    unit: string,
    options: { readonly windowMs?: number | undefined } = {},
  ): Promise<Readiness> {
    return this.#operator.readiness(unit, options);
  }

  /**
   * Waits for the divergence checks running in the background (read-backs after mirrors, shadow
   * reads that outlasted their budget), so their events have been published.
   *
   * @returns When none is running.
   * @example
   * ```ts
   * await writer.read('Patient', 'p-1', ctx);
   * await writer.settled();
   * ```
   */
  settled(): Promise<void> {
    return this.#checks.settled();
  }

  /**
   * How many comparisons this writer made since it started, and how many found divergence.
   *
   * @returns The counts.
   * @example
   * ```ts
   * const { shadowReads, divergent } = writer.divergenceCounts();
   * ```
   */
  divergenceCounts(): DivergenceCounts {
    return this.#checks.counts;
  }

  /**
   * Pauses the drainer: no new entries are claimed until {@link DualWriter.resume}.
   *
   * @example
   * ```ts
   * writer.pause(); // Medplum maintenance window
   * ```
   */
  pause(): void {
    this.#runtime.pause();
  }

  /**
   * Resumes a paused drainer.
   *
   * @example
   * ```ts
   * writer.resume();
   * ```
   */
  resume(): void {
    this.#runtime.resume();
  }

  /**
   * Pauses a unit's mirroring for every instance sharing the store (see `Operator.pauseUnit`):
   * its mirrors wait in the journal, writes return `mirror: 'pending'`, feeds keep journaling.
   *
   * @param unit - The unit.
   * @param note - `by` and `reason`, for the record (no PHI).
   * @returns The pause.
   * @example
   * ```ts
   * await writer.pauseUnit('north', { by: 'ops', reason: 'legacy maintenance' });
   * ```
   */
  pauseUnit(
    unit: string,
    note?: { readonly by?: string | undefined; readonly reason?: string | undefined },
  ): Promise<UnitPause> {
    return this.#operator.pauseUnit(unit, note);
  }

  /**
   * Resumes a paused unit, for every instance.
   *
   * @param unit - The unit.
   * @returns `false` when it was not paused.
   * @example
   * ```ts
   * await writer.resumeUnit('north');
   * ```
   */
  async resumeUnit(unit: string): Promise<boolean> {
    const resumed = await this.#operator.resumeUnit(unit);
    this.#runtime.notify();
    return resumed;
  }

  /**
   * Returns once a unit has no mirror owed in the journal (see {@link drainUnit}); for use
   * before a stage change. Without `start()`, it applies pending mirrors itself meanwhile.
   *
   * @param unit - The unit.
   * @param options - `timeoutMs` (default 60000) and `signal`.
   * @returns The unit's counts once drained.
   * @throws {@link UnitNotDrainedError} at the time limit, or for a paused unit with mirrors owed.
   * @example
   * ```ts
   * await writer.drainUnit('north', { timeoutMs: 120_000 });
   * await writer.plan.set('north', 'live', { by: 'ops' });
   * ```
   */
  async drainUnit(
    unit: string,
    options: { readonly timeoutMs?: number | undefined; readonly signal?: AbortSignal | undefined } = {},
  ): Promise<UnitDrained> {
    return this.#operator.drainUnit(unit, options);
  }

  /**
   * Runs retention now (option `retention`; the drainer's runtime also runs it every
   * `retention.intervalMs`), a batch at a time until nothing beyond the rules is left.
   *
   * @returns What was deleted.
   * @example
   * ```ts
   * const { events, deadLetters, samples } = await writer.prune();
   * ```
   */
  prune(): Promise<PruneReport> {
    return this.#operator.prune(this.#retentionOptions);
  }

  /**
   * Applies pending mirrors until the outbox holds none (dead letters aside) or the time limit
   * passes, waiting out backoffs. Works with or without `start()`.
   *
   * @param options - `timeoutMs`, default 60000.
   * @returns What was applied, retried and dead-lettered, and what remains.
   * @throws {@link InvalidInputError} (a rejection) naming `options` or the option at fault.
   * @example
   * ```ts
   * const report = await writer.drain({ timeoutMs: 30_000 });
   * if (report.timedOut) console.warn(`${report.remaining.pending} mirrors still pending`);
   * ```
   */
  async drain(options: { readonly timeoutMs?: number | undefined } = {}): Promise<DrainReport> {
    return this.#runtime.drain(options);
  }

  /**
   * Backfills one resource type through this writer's journal, mirrors and Medplum client (see
   * {@link backfill}): records are queued, and while the outbox holds `maxQueued` entries or
   * more the backfill drains it itself (`drain()`), so it completes with or without `start()`.
   * A record's unit comes from `feeds.unitOf`; without feeds, give `unit`.
   *
   * @param options - What to backfill and how this worker runs.
   * @returns The job as stored when this worker stopped.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault.
   * @example
   * ```ts
   * const job = await writer.backfill({ resourceType: 'Patient', unit: 'north', direction: 'to-medplum' });
   * await writer.drain();
   * console.log(job.state, job.counts);
   * ```
   */
  async backfill(options: BackfillOptions): Promise<Job> {
    return this.#operator.backfill(options);
  }

  /**
   * Reconciles one resource type through this writer's journal and Medplum client (see
   * {@link reconcile}); `direction` defaults to the unit's authority now (`to-medplum` while
   * the legacy system is the authority). A record's unit comes from `feeds.unitOf`; without
   * feeds, give `unit`.
   *
   * @param options - What to compare and repair; `direction` optional when `unit` is given.
   * @returns The report: the job as stored when this worker stopped.
   * @throws {@link InvalidInputError} (a rejection) naming the option at fault.
   * @example
   * ```ts
   * const report = await writer.reconcile({ resourceType: 'Patient', unit: 'north', repair: 'queue' });
   * console.log(report.counts.agree, report.counts.divergent, report.samples.divergent);
   * ```
   */
  async reconcile(
    options: Omit<ReconcileOptions, 'direction'> & { readonly direction?: ReconcileOptions['direction'] },
  ): Promise<Job> {
    return this.#operator.reconcile(options);
  }

  /**
   * Counts of pending, waiting, paused and in-flight mirrors and open dead letters (see
   * `Operator.outboxCounts`).
   *
   * @param filter - Only one unit's.
   * @returns The counts.
   * @throws {@link InvalidInputError} (a rejection) naming the filter at fault.
   * @example
   * ```ts
   * const { pending, leased, dead } = await writer.outbox();
   * ```
   */
  outbox(filter?: { readonly unit?: string | undefined }): Promise<OutboxCounts> {
    return this.#operator.outboxCounts(filter);
  }

  /**
   * Dead letters: mirrors that failed for good, with the reason, the HTTP status and the
   * attempts, without the record copies they may keep (see `Operator.deadLetters`). Open ones
   * unless `status` says otherwise.
   *
   * @param filter - `status` (`open`, `retried`, `discarded`, `resolved`, `all`), `unit`,
   *   `resourceType`, `target`, `reason` and `limit`.
   * @returns Dead letters, oldest first.
   * @throws {@link InvalidInputError} (a rejection) naming `filter` or the filter at fault.
   * @example
   * ```ts
   * for (const letter of await writer.deadLetters()) console.log(letter.id, letter.reason.message);
   * ```
   */
  async deadLetters(filter?: DeadLetterFilter): Promise<DeadLetterView[]> {
    return this.#operator.deadLetters(filter);
  }

  /**
   * Queues a dead letter's record again (after the cause was fixed); the mirror reads both
   * sides afresh. The letter is kept, marked `retried`.
   *
   * @param id - The dead letter's id.
   * @returns `true` when it was open and is queued again, `false` when it was closed already.
   * @throws {@link DeadLetterNotFoundError} (a rejection) when no dead letter has that id.
   * @example
   * ```ts
   * await writer.retryDeadLetter('42');
   * ```
   */
  async retryDeadLetter(id: string): Promise<boolean> {
    return this.#operator.retryDeadLetter(id);
  }

  /**
   * Closes a dead letter without retrying it; it is kept, marked `discarded`, with the note.
   *
   * @param id - The dead letter's id.
   * @param note - Why (for the audit trail; no PHI).
   * @returns `true` when it was open, `false` when it was closed already.
   * @throws {@link InvalidInputError} (a rejection) naming `id` or `note`;
   *   {@link DeadLetterNotFoundError} when no dead letter has that id.
   * @example
   * ```ts
   * await writer.discardDeadLetter('42', 'record merged by hand in both systems');
   * ```
   */
  async discardDeadLetter(id: string, note: string): Promise<boolean> {
    return this.#operator.discardDeadLetter(id, note);
  }

  /**
   * Decides a conflict an operator was asked to review (a dead letter whose reason is a
   * `ReviewRequiredError`, or any dead letter whose record both systems changed): writes the
   * decision to both sides, links them, and closes the dead letter as `resolved` with the
   * note and the resolution (`legacy`, `medplum` or `merged`). Each side's write is guarded by
   * the version read just before, so a change made meanwhile fails the call rather than being
   * overwritten.
   *
   * @param id - The dead letter's id.
   * @param resolution - `{ winner: 'legacy' | 'medplum' }` or `{ merged: resource }`.
   * @param note - For the audit trail (no PHI).
   * @returns `false` when the dead letter was closed already.
   * @throws {@link DeadLetterNotFoundError} (a rejection) when no dead letter has that id.
   * @throws {@link InvalidInputError} for a resolution that decides nothing.
   * @example
   * ```ts
   * const [letter] = await writer.deadLetters();
   * if (letter?.reason.name === 'ReviewRequiredError') {
   *   await writer.resolveDeadLetter(letter.id, { winner: 'medplum' }, 'front desk confirmed the new address');
   * }
   * ```
   */
  async resolveDeadLetter(
    id: string,
    resolution: Resolution,
    note = 'resolved by an operator',
  ): Promise<boolean> {
    return this.#operator.resolveDeadLetter(id, resolution, note);
  }

  #emit(event: DualWriteEvent): void {
    this.#events.emit(event);
  }
}
