import type { MedplumClient } from '@medplum/core';
import type { DualWriteEvent } from './dual-write-event.ts';
import { ConfigurationError } from './errors.ts';
import type { SyncStore } from './journal/sync-store.ts';
import type { ResourceMapping } from './mapping/resource-mapping.ts';
import type { RetryOptions } from './mirror/retry-policy.ts';
import type { DrainerOptions } from './mirror/drainer.ts';
import type { CutoverPlan } from './plan/cutover-plan.ts';
import type { LegacyAdapter } from './sides/legacy-adapter.ts';

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
   * What a mirror does when its target changed since the last sync (both systems changed the
   * record): `authority-wins` overwrites the target with the authority's copy and records a
   * `conflict` event (in the store's event table too); `dead-letter` leaves the target alone and
   * dead-letters the mirror for an operator. Pluggable resolvers come in a later release.
   * @default 'authority-wins'
   */
  readonly conflicts?: 'authority-wins' | 'dead-letter' | undefined;
  /**
   * How the inline mirror and authority writes retry transient failures within one call.
   * @default { retries: 5, minTimeoutMs: 100, maxTimeoutMs: 5000, factor: 2, maxRateLimitWaitMs: 60000 }
   */
  readonly retry?: RetryOptions | undefined;
  /**
   * The background drainer that applies pending mirrors (`writer.start()`).
   * @default { concurrency: 4, batchSize: 16, leaseMs: 30000, maxAttempts: 30, backoff: { minMs: 500, maxMs: 300000 } }
   */
  readonly drainer?: DrainerOptions | undefined;
  /**
   * Most links kept in the in-process cache in front of the store.
   * @default 10000
   */
  readonly linkCacheSize?: number | undefined;
  /**
   * Receives a typed event for every mirror and retry. Events carry ids, types and statuses,
   * never field values. Exceptions it throws are ignored.
   * @default undefined
   */
  readonly onEvent?: ((event: DualWriteEvent) => void) | undefined;
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

/**
 * Checks a writer's options at construction, so a misconfiguration fails at start-up with the
 * option's name rather than on the first write. Options arrive from JavaScript callers and
 * configuration files too, so each is checked as an unknown value.
 *
 * @param options - The options given to the constructor.
 * @throws {@link ConfigurationError} naming the first invalid option.
 */
export function validateDualWriterOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null)
    throw new ConfigurationError('options', options, 'must be an options object');
  const given = options as Record<string, unknown>;
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
    if (typeof resourceType !== 'string' || !/^[A-Z][A-Za-z]+$/.test(resourceType)) {
      throw new ConfigurationError(
        `mappings[${i}].resourceType`,
        resourceType,
        'must be a FHIR resource type such as "Patient"',
      );
    }
    if (typeof mapping?.identifierSystem !== 'string' || mapping.identifierSystem === '') {
      throw new ConfigurationError(
        `mappings[${i}].identifierSystem`,
        mapping?.identifierSystem,
        'must be a non-empty URI',
      );
    }
    if (seen.has(resourceType))
      throw new ConfigurationError(`mappings[${i}].resourceType`, resourceType, 'is mapped twice');
    seen.add(resourceType);
  });
  const cacheSize = given.linkCacheSize;
  if (
    cacheSize !== undefined &&
    (typeof cacheSize !== 'number' || !Number.isInteger(cacheSize) || cacheSize < 1)
  ) {
    throw new ConfigurationError('linkCacheSize', cacheSize, 'must be a positive integer');
  }
  if (
    given.conflicts !== undefined &&
    given.conflicts !== 'authority-wins' &&
    given.conflicts !== 'dead-letter'
  ) {
    throw new ConfigurationError('conflicts', given.conflicts, "must be 'authority-wins' or 'dead-letter'");
  }
  if (given.mirror !== undefined && given.mirror !== 'sync' && given.mirror !== 'async') {
    throw new ConfigurationError('mirror', given.mirror, "must be 'sync' or 'async'");
  }
  for (const key of ['syncBudgetMs', 'intentHoldMs']) {
    const value = given[key];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
      throw new ConfigurationError(key, value, 'must be a positive number of milliseconds');
    }
  }
  if (given.onEvent !== undefined && typeof given.onEvent !== 'function') {
    throw new ConfigurationError('onEvent', given.onEvent, 'must be a function');
  }
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
