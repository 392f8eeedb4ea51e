import type { MedplumClient } from '@medplum/core';
import type { ConflictResolver } from './conflict/conflict-context.ts';
import type { DivergenceOptions } from './divergence/divergence-checks.ts';
import type { EventSink } from './events/event-sink.ts';
import { valueHash, type ValueHashOptions } from './events/redact.ts';
import type { DualWriteEvent } from './dual-write-event.ts';
import type { ChangeFeedsOptions } from './feeds/change-feeds-options.ts';
import { QuotaPacer } from './pacing/quota-pacer.ts';
import type { FeedRecord } from './feeds/inbound-change.ts';
import { ConfigurationError } from './errors.ts';
import type { SyncStore } from './journal/sync-store.ts';
import type { ResourceMapping } from './mapping/resource-mapping.ts';
import { retentionPolicyOf, type RetentionOptions } from './journal/retention.ts';
import { backlogRecordingOf, type BacklogHistoryOptions } from './journal/backlog-recorder.ts';
import type { RetryOptions } from './mirror/retry-policy.ts';
import { drainerPolicyOf, type DrainerOptions, type DrainerPolicy } from './mirror/drainer.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './sides/request-deadline.ts';
import { telemetryOptionsOf, type TelemetryOptions } from './telemetry/telemetry-options.ts';
import type { CutoverPlan } from './plan/cutover-plan.ts';
import { validateReadinessOptions, type ReadinessOptions } from './plan/readiness.ts';
import type { LegacyAdapter } from './sides/legacy-adapter.ts';
import { changeFeedsSettings } from './feeds/change-feeds-options.ts';
import {
  aFunction,
  anObject,
  checkOptions,
  checkValue,
  oneOf,
  optionsObject,
  positiveMs,
  refuseUnknownKeys,
  positiveInteger,
  resourceTypeName,
  type Rule,
} from './option-checks.ts';

/**
 * Options of a {@link DualWriter}.
 *
 * @typeParam C - The per-call context type (whatever the service knows about a request).
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const options: DualWriterOptions<{ clinic: string }, PatientRow> = {
 *   legacy: adapter,
 *   medplum: createMedplumClient({ baseUrl }),
 *   mappings: [patients],
 *   plan: new CutoverPlan({ default: 'dual-write', unitOf: (ctx) => ctx.clinic }),
 * };
 * ```
 */
export interface DualWriterOptions<C, L> {
  /** The legacy system. */
  readonly legacy: LegacyAdapter<L>;
  /**
   * The Medplum client. Build it with `createMedplumClient` (or pass `fetch:
   * captureHttpStatus(fetch)`) so the library sees real HTTP statuses; the library turns the
   * client's own retries off per request either way.
   */
  readonly medplum: MedplumClient;
  /** One mapping per FHIR resource type; the writer routes calls by `resourceType`. */
  // The writer stores mappings of many resource types; each call narrows by type.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly mappings: readonly ResourceMapping<L, any>[];
  /** The cutover plan: stages per unit, and the unit of each call. */
  readonly plan: CutoverPlan<C>;
  /**
   * Where links, the outbox and dead letters are kept. Only a durable store keeps the
   * promises across a crash: use `PostgresStore` (PGlite in a data directory, or a PostgreSQL
   * server shared by every instance) in production.
   * @default new MemoryStore()
   */
  readonly store?: SyncStore | undefined;
  /**
   * When a write call returns. `sync`: after the authority write and an inline mirror attempt
   * of at most `syncBudgetMs` (the mirror is left to the drainer when the budget runs out or
   * Medplum is unavailable; the call still succeeds with `mirror: 'pending'`). `async`: right
   * after the authority write and its outbox entry; the drainer mirrors.
   * @default 'sync'
   */
  readonly mirror?: 'sync' | 'async' | undefined;
  /**
   * Longest time a `sync` call waits for its inline mirror.
   * @default 10000
   */
  readonly syncBudgetMs?: number | undefined;
  /**
   * How long an intent holds its outbox entry while the authority write runs. After a crash
   * the entry becomes claimable when the hold expires, so it must exceed the slowest authority
   * write (retries included).
   * @default 60000
   */
  readonly intentHoldMs?: number | undefined;
  /**
   * How long one request to either side (a Medplum HTTP request, a legacy adapter call) may go
   * unanswered before it is abandoned with a `RequestTimeoutError` (retryable; for a write, its
   * outcome is unknown and the same call is safe to repeat). A server that stops answering keeps
   * its socket open: without a limit a call would wait for the operating system while its lease
   * is renewed. Must be less than half of `drainer.leaseMs`, so that a write started while a
   * mirror's lease is proven ends before the lease can expire.
   * @default 10000, or a third of `drainer.leaseMs` when that is shorter
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Decides a conflict: a mirror found its target changed since the last sync (both systems
   * changed the record). Built in: `authorityWins`, `legacyWins`, `medplumWins`,
   * `lastWriterWins`, `threeWayMerge(…)`, `manualReview(…)`, combined with `byResourceType(…)`;
   * or any function of a `ConflictContext`. The decision is written to both sides and recorded
   * as `conflict` and `resolved` events.
   * @default authorityWins
   */
  readonly resolver?: ConflictResolver | undefined;
  /**
   * What a link keeps of the last sync: `'full'` keeps the content both sides agreed on (the
   * base a three-way merge needs); `'hash-only'` keeps its hash, for organisations that must not
   * store PHI a second time (a three-way merge then treats every conflict as a collision).
   * @default 'full'
   */
  readonly baseSnapshot?: 'full' | 'hash-only' | undefined;
  /**
   * Where events go besides `onEvent`: `loggerSink(logger)`, `auditEventSink(medplum)`,
   * `callbackSink(fn)` or your own. Each sees values as hashes unless it sets `revealValues`.
   * @default []
   */
  readonly sinks?: readonly EventSink[] | undefined;
  /**
   * How the value hashes in events are made. Without a `key` they are plain SHA-256, which can
   * be reversed for low-entropy values (a birth date) by trying every candidate; with a secret
   * key (HMAC) they cannot, by anyone without the key.
   * @default undefined
   */
  readonly valueHash?: ValueHashOptions | undefined;
  /**
   * How divergence is looked for: the share of mirrors read back and compared, and shadow reads
   * in the `shadow` and `live` stages (share of reads, and how long a read may wait for its
   * shadow). Findings are `divergence` events.
   * @default { verifySampleRate: 0.01, shadowReads: { sampleRate: 0.1, budgetMs: 25 } }
   */
  readonly divergence?: DivergenceOptions | undefined;
  /**
   * The window and gates of `writer.readiness(unit)`, which the plan checks before moving a unit
   * forward.
   * @default { windowMs: 3600000, minSamples: 1, gates: { maxMirrorLagP95Ms: 60000, maxConflicts: 10, maxDivergence: 0, maxDeadLetters: 0, maxPending: 1000 } }
   */
  readonly readiness?: ReadinessOptions | undefined;
  /**
   * Change feeds for writes made directly in either system (legacy `changesSince`, Medplum
   * `_lastUpdated` polling, deletes by an existence check and rest-hook notifications). `unitOf`
   * tells a record's unit from what the feed has of it (the row, the resource, or both).
   * `writer.start()` runs them; `writer.pollFeeds()` runs one pass.
   * @default undefined (no feeds)
   */
  readonly feeds?: FeedOptions<L> | undefined;
  /**
   * How the inline mirror and authority writes retry transient failures within one call.
   * @default { retries: 5, minTimeoutMs: 100, maxTimeoutMs: 5000, factor: 2, maxRateLimitWaitMs: 60000 }
   */
  readonly retry?: RetryOptions | undefined;
  /**
   * The background drainer that applies pending mirrors (`writer.start()`).
   * @default { concurrency: 64, batchSize: 16, pollIntervalMs: 200, leaseMs: 30000, maxAttempts: 30, backoff: { minMs: 500, maxMs: 300000, factor: 2 }, bundle: 20, requests: 4 }
   */
  readonly drainer?: DrainerOptions | undefined;
  /**
   * Keeps every request to Medplum within the rate limits the server announces (its `RateLimit`
   * header), waiting for a window's reset rather than running into 429s; background work (the
   * drainer, the feeds) leaves part of each window to the writer's own calls. Medplum's quota
   * is per user: give every writer or backfill that uses the same client the same pacer.
   * @default a pacer of its own: `new QuotaPacer()`
   */
  readonly pacer?: QuotaPacer | undefined;
  /**
   * Most links kept in the in-process cache in front of the store.
   * @default 10000
   */
  readonly linkCacheSize?: number | undefined;
  /**
   * Retention of the journal's growing rows (events, closed dead letters, readiness samples),
   * run every `intervalMs` by the drainer's runtime (`start()` with the drainer role) and by
   * `writer.prune()`; `false` keeps everything.
   * @default { events: { maxAgeMs: 90 days }, deadLetters: { maxAgeMs: 90 days }, samples: { maxAgeMs: 7 days } }
   */
  readonly retention?: RetentionOptions | false | undefined;
  /**
   * Sampling of the outbox's backlog into the journal by the drainer's runtime (`start()` with
   * the drainer role), a sample per unit per `stepMs`: the history the console's backlog chart
   * draws, whether or not a console was running. `false` records nothing.
   * @default { stepMs: 60000, keepMs: 30 days }
   */
  readonly backlogHistory?: BacklogHistoryOptions | false | undefined;
  /**
   * Receives a typed event for every mirror, retry and disagreement. Events carry ids, types,
   * statuses, paths and value hashes, never field values. Exceptions it throws are ignored.
   * @default undefined
   */
  readonly onEvent?: ((event: DualWriteEvent) => void) | undefined;
  /**
   * Metrics and traces through OpenTelemetry (`@opentelemetry/api`, an optional peer
   * dependency): the providers to use, or `false` for none. See the README's "Metrics and
   * traces".
   * @default the global providers: an SDK the application registered, else no-ops
   */
  readonly telemetry?: TelemetryOptions | false | undefined;
}

/**
 * The writer's change feeds: how often and how much to read, and how to tell a record's unit.
 *
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const feeds: FeedOptions<PatientRow> = {
 *   unitOf: (record) => record.row?.clinic ?? record.resource?.managingOrganization?.display,
 *   pollIntervalMs: 2000,
 * };
 * ```
 */
export interface FeedOptions<L> extends ChangeFeedsOptions {
  /** The unit of a record; `undefined` when it cannot tell (the change is counted and skipped). */
  readonly unitOf: (record: FeedRecord<L>) => string | undefined | Promise<string | undefined>;
}

/**
 * Options of an update or delete call.
 *
 * @example
 * ```ts
 * await writer.update('Patient', 'p-1', row, ctx, { expectedVersion: '3' });
 * ```
 */
export interface WriteCallOptions {
  /**
   * The version of the authority's copy the caller last read (a legacy version, or a Medplum
   * `meta.versionId`). When set and the copy has moved on, the call fails with a
   * `ConflictError` and writes nothing.
   * @default undefined (unconditional)
   */
  readonly expectedVersion?: string | undefined;
}

/** Every option of {@link DualWriterOptions}. */
const WRITER_OPTIONS = Object.keys({
  legacy: true,
  medplum: true,
  mappings: true,
  plan: true,
  store: true,
  mirror: true,
  syncBudgetMs: true,
  intentHoldMs: true,
  requestTimeoutMs: true,
  resolver: true,
  baseSnapshot: true,
  sinks: true,
  valueHash: true,
  divergence: true,
  readiness: true,
  feeds: true,
  retry: true,
  drainer: true,
  pacer: true,
  linkCacheSize: true,
  retention: true,
  backlogHistory: true,
  onEvent: true,
  telemetry: true,
} satisfies Record<keyof DualWriterOptions<unknown, unknown>, true>);

/**
 * Checks a writer's options at construction, so a misconfiguration fails at start-up with the
 * option's name rather than on the first write. Options arrive from JavaScript callers and
 * configuration files too, so each is checked as an unknown value.
 *
 * @param options - The options given to the constructor.
 * @throws {@link ConfigurationError} naming the first invalid option.
 */
export function validateDualWriterOptions(options: unknown): void {
  checkValue(options, anObject, 'options', 'configuration');
  const given = options;
  // A misspelt option (`mirrror: 'async'`) would otherwise leave its default in force unseen.
  refuseUnknownKeys(given, 'configuration', WRITER_OPTIONS);
  telemetryOptionsOf(given.telemetry);
  if (given.pacer !== undefined && !(given.pacer instanceof QuotaPacer))
    throw new ConfigurationError('pacer', given.pacer, 'must be a QuotaPacer');
  const legacy = given.legacy as Record<string, unknown> | null | undefined;
  for (const method of ['create', 'update', 'delete', 'read']) {
    if (typeof legacy?.[method] !== 'function') {
      throw new ConfigurationError(
        `legacy.${method}`,
        legacy?.[method],
        'must be a function (a LegacyAdapter)',
      );
    }
  }
  if (typeof (given.medplum as Record<string, unknown> | null | undefined)?.createResource !== 'function') {
    throw new ConfigurationError('medplum', given.medplum, 'must be a MedplumClient');
  }
  if (typeof (given.plan as Record<string, unknown> | null | undefined)?.routeOf !== 'function') {
    throw new ConfigurationError('plan', given.plan, 'must be a CutoverPlan');
  }
  const mappings = given.mappings;
  if (!Array.isArray(mappings) || mappings.length === 0) {
    throw new ConfigurationError('mappings', mappings, 'must be a non-empty array of ResourceMapping');
  }
  const seen = new Set<unknown>();
  mappings.forEach((mapping: Record<string, unknown> | null, i) => {
    for (const fn of ['legacyId', 'toFhir', 'toLegacy']) {
      if (typeof mapping?.[fn] !== 'function')
        throw new ConfigurationError(`mappings[${i}].${fn}`, mapping?.[fn], 'must be a function');
    }
    const resourceType = mapping?.resourceType;
    checkValue(resourceType, resourceTypeName, `mappings[${i}].resourceType`, 'configuration');
    if (typeof mapping?.identifierSystem !== 'string' || mapping.identifierSystem === '') {
      throw new ConfigurationError(
        `mappings[${i}].identifierSystem`,
        mapping?.identifierSystem,
        'must be a non-empty URI',
      );
    }
    const deletes = mapping.deletes as Record<string, unknown> | null | undefined;
    if (deletes !== undefined) {
      if (typeof deletes !== 'object' || deletes === null)
        throw new ConfigurationError(
          `mappings[${i}].deletes`,
          deletes,
          'must be { fromLegacy?, fromMedplum? }',
        );
      for (const direction of ['fromLegacy', 'fromMedplum']) {
        const policy = deletes[direction];
        if (policy !== undefined && policy !== 'propagate' && policy !== 'review' && policy !== 'ignore')
          throw new ConfigurationError(
            `mappings[${i}].deletes.${direction}`,
            policy,
            "must be 'propagate', 'review' or 'ignore'",
          );
      }
    }
    if (seen.has(resourceType))
      throw new ConfigurationError(`mappings[${i}].resourceType`, resourceType, 'is mapped twice');
    seen.add(resourceType);
  });
  mappings.forEach((mapping: Record<string, unknown>, i) => {
    checkReferences(mapping.references, `mappings[${i}].references`, seen);
    checkPart(mapping, i, mappings as readonly Record<string, unknown>[]);
  });
  if (given.linkCacheSize !== undefined)
    checkValue(given.linkCacheSize, positiveInteger, 'linkCacheSize', 'configuration');
  if (given.resolver !== undefined && typeof given.resolver !== 'function') {
    throw new ConfigurationError('resolver', given.resolver, 'must be a function (ctx) => Resolution');
  }
  if (given.baseSnapshot !== undefined)
    checkValue(given.baseSnapshot, oneOf('full', 'hash-only'), 'baseSnapshot', 'configuration');
  const sinks = given.sinks;
  if (sinks !== undefined) {
    if (!Array.isArray(sinks)) throw new ConfigurationError('sinks', sinks, 'must be an array of EventSink');
    sinks.forEach((sink: Record<string, unknown> | null, i) => {
      if (typeof sink?.handle !== 'function')
        throw new ConfigurationError(`sinks[${i}].handle`, sink?.handle, 'must be a function');
    });
  }
  validateDivergence(given.divergence);
  validateReadinessOptions(given.readiness, 'readiness');
  retentionPolicyOf(
    given.retention as RetentionOptions | false | undefined,
    (given.readiness as { windowMs?: number } | undefined)?.windowMs ?? 3_600_000,
  );
  backlogRecordingOf(given.backlogHistory as BacklogHistoryOptions | false | undefined, 'backlogHistory');
  if (given.feeds !== undefined) {
    const feeds = optionsObject(given.feeds, 'feeds', 'configuration', ['unitOf']);
    if (typeof feeds.unitOf !== 'function')
      throw new ConfigurationError('feeds.unitOf', feeds.unitOf, 'must be a function (record) => unit');
    changeFeedsSettings(feeds, 'feeds.', ['unitOf']);
  }
  if (given.valueHash !== undefined) {
    const hashing = optionsObject(given.valueHash, 'valueHash', 'configuration', ['key']);
    refuseUnknownKeys(hashing, 'configuration', ['key'], 'valueHash.');
    try {
      valueHash('', hashing);
    } catch {
      // The key itself is never put in a message.
      throw new ConfigurationError(
        'valueHash.key',
        hashing.key,
        'must be a non-empty string or Uint8Array',
        true,
      );
    }
  }
  if (given.mirror !== undefined) checkValue(given.mirror, oneOf('sync', 'async'), 'mirror', 'configuration');
  for (const key of ['syncBudgetMs', 'intentHoldMs', 'requestTimeoutMs']) {
    if (given[key] !== undefined) checkValue(given[key], positiveMs, key, 'configuration');
  }
  requestTimeoutOf(
    given.requestTimeoutMs as number | undefined,
    drainerPolicyOf(given.drainer as DrainerOptions),
  );
  if (given.onEvent !== undefined) checkValue(given.onEvent, aFunction, 'onEvent', 'configuration');
  const store = given.store as Record<string, unknown> | null | undefined;
  if (store !== undefined) {
    for (const method of [
      'getLink',
      'getLinkByMedplumId',
      'saveLink',
      'deleteLink',
      'intend',
      'commit',
      'claim',
      'complete',
    ]) {
      if (typeof store?.[method] !== 'function')
        throw new ConfigurationError(`store.${method}`, store?.[method], 'must be a function (a SyncStore)');
    }
  }
}

const rate: Rule<number> = {
  test: (v): v is number => typeof v === 'number' && v >= 0 && v <= 1,
  problem: 'must be a number from 0 to 1',
};

function validateDivergence(value: unknown): void {
  const given = checkOptions(
    value,
    'divergence',
    'configuration',
    { verifySampleRate: rate, shadowReads: anObject },
    'divergence.',
  );
  checkOptions(
    given.shadowReads,
    'divergence.shadowReads',
    'configuration',
    {
      sampleRate: rate,
      budgetMs: {
        test: (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0,
        problem: 'must be a non-negative number of milliseconds',
      },
    },
    'divergence.shadowReads.',
  );
}

/**
 * A mapping's `references`: an object of elements, each naming a mapped resource type and how
 * to read the legacy key (a reference to a type without a mapping could never be resolved).
 */
function checkReferences(references: unknown, field: string, mapped: ReadonlySet<unknown>): void {
  if (references === undefined) return;
  if (typeof references !== 'object' || references === null || Array.isArray(references))
    throw new ConfigurationError(field, references, 'must be an object of reference fields by element');
  for (const [element, reference] of Object.entries(references)) {
    const at = `${field}.${element}`;
    const given = reference as Record<string, unknown> | null;
    if (typeof given !== 'object' || given === null)
      throw new ConfigurationError(at, given, 'must be { resourceType, legacyKey }');
    refuseUnknownKeys(given, 'configuration', ['resourceType', 'legacyKey'], `${at}.`);
    checkValue(given.resourceType, resourceTypeName, `${at}.resourceType`, 'configuration');
    if (!mapped.has(given.resourceType))
      throw new ConfigurationError(`${at}.resourceType`, given.resourceType, 'has no mapping in this writer');
    if (typeof given.legacyKey !== 'function')
      throw new ConfigurationError(
        `${at}.legacyKey`,
        given.legacyKey,
        'must be a function (row) => legacy key',
      );
  }
}

/**
 * The time limit of each request to either side: the option, checked against the drainer's
 * lease, or the default.
 *
 * @param requestTimeoutMs - The option as given (checked to be a positive number already).
 * @param drainer - The drainer's policy (its `leaseMs`).
 * @returns The time limit in milliseconds.
 * @throws {@link ConfigurationError} naming `requestTimeoutMs` when it is not under half the lease.
 */
export function requestTimeoutOf(requestTimeoutMs: number | undefined, drainer: DrainerPolicy): number {
  if (requestTimeoutMs === undefined)
    return Math.min(DEFAULT_REQUEST_TIMEOUT_MS, Math.floor(drainer.leaseMs / 3));
  if (requestTimeoutMs >= drainer.leaseMs / 2) {
    // A longer request could outlive the lease it started under, and another worker's.
    throw new ConfigurationError(
      'requestTimeoutMs',
      requestTimeoutMs,
      `must be less than half of drainer.leaseMs (${drainer.leaseMs})`,
    );
  }
  return requestTimeoutMs;
}

/**
 * A part (`partOf`) names another mapping of the writer that owns its records and is no part
 * itself, and has an identifier system of its own (its copies carry the owner's legacy ids).
 */
function checkPart(
  mapping: Record<string, unknown>,
  i: number,
  mappings: readonly Record<string, unknown>[],
): void {
  const { partOf, present } = mapping;
  if (present !== undefined && typeof present !== 'function')
    throw new ConfigurationError(`mappings[${i}].present`, present, 'must be a function (row) => boolean');
  if (partOf === undefined) return;
  const field = `mappings[${i}].partOf`;
  const owner = mappings.find((other) => other.resourceType === partOf);
  if (typeof partOf !== 'string' || owner === undefined || owner === mapping)
    throw new ConfigurationError(
      field,
      partOf,
      'must name the resource type of another mapping of this writer',
    );
  if (owner.partOf !== undefined)
    throw new ConfigurationError(
      field,
      partOf,
      'names a part: a part belongs to the record of a mapping that is no part',
    );
  if (owner.identifierSystem === mapping.identifierSystem)
    throw new ConfigurationError(
      `mappings[${i}].identifierSystem`,
      mapping.identifierSystem,
      "must differ from its owner's: both carry the record's legacy id",
    );
}
